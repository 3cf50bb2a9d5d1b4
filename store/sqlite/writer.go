package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/gotasker/tasker/store"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// maxBatch bounds how many requests share one transaction.
const maxBatch = 256

// minSiblings is the fewest requests the last transaction must have held
// for the writer to wait for more (see gather): PostgreSQL's
// commit_siblings.
const minSiblings = 3

// maxYields bounds gather's yields too, should the clock not move while it
// spins (as in a testing/synctest bubble, where time passes only once every
// goroutine is blocked). A yield takes a tenth of a microsecond or more, so
// with a clock that moves the delay ends the wait first.
const maxYields = 1_000_000

// request is one caller's write, run by the writer inside a transaction it
// shares with other requests.
type request struct {
	ctx  context.Context
	fn   func(*writeStmts) error // may run twice: see commit
	done chan error              // buffered: the writer never blocks answering
	// alongside reports that fn may run while the transitions of the
	// requests before it in the transaction are pending (writeStmts.flush):
	// it reads no transitions and deletes no task.
	alongside bool
}

// writer owns the write connection. Its goroutine, run, commits requests in
// groups; do hands it one and waits for the answer.
type writer struct {
	conn  *sql.Conn
	reqs  chan *request // unbuffered: a request is either taken or not sent
	quit  chan struct{}
	done  chan struct{} // closed when run returns
	stmts *writeStmts   // prepared and used by run
	err   error         // why run returned, for close

	// commits and requests count transactions and the requests they held;
	// benchmarks report their ratio. statements counts the statements run
	// on the write connection, transaction control included, for tests.
	commits, requests, statements atomic.Int64
	// frames counts the WAL frames (pages) the transactions wrote.
	frames atomic.Int64
	// onCommit is Options.OnCommit; nil when not set.
	onCommit func(requests int, took time.Duration)
	// waiting counts callers waiting for the writer to take their request.
	waiting atomic.Int64
	// delay is Options.CommitDelay; last is how many requests the last
	// transaction held; waited, when not nil, is called when gather begins
	// to wait, for tests. All are the run goroutine's.
	delay  time.Duration
	last   int
	waited func()
	// wal accounts for the frames the writer writes, for the checkpoints;
	// status reads them from the connection. Both are the run goroutine's.
	wal    walFrames
	status msqlite.DBStatus
}

// newWriter starts the writer goroutine on conn, once it has prepared its
// statements; close stops it.
func newWriter(conn *sql.Conn, o Options, c *checkpointer) (*writer, error) {
	w := &writer{
		conn:     conn,
		wal:      newWALFrames(c),
		onCommit: o.OnCommit,
		delay:    o.CommitDelay,
		reqs:     make(chan *request),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	started := make(chan error, 1)
	go w.run(started)
	if err := <-started; err != nil {
		<-w.done
		return nil, err
	}
	return w, nil
}

// close stops the writer goroutine, after it answers the requests it has
// taken, and closes the write connection.
func (w *writer) close() error {
	close(w.quit)
	<-w.done
	return errors.Join(w.err, w.conn.Close())
}

// do runs fn in the writer's next transaction and returns its error, or
// the commit's. ctx bounds only the wait for the writer to take the
// request: if ctx is done first, fn never runs and do returns ctx's error.
// Once taken, the request is answered whatever ctx does (a commit takes
// milliseconds), so that an error always means nothing was written.
func (w *writer) do(ctx context.Context, fn func(*writeStmts) error) error {
	return w.send(&request{ctx: ctx, fn: fn})
}

// doAlongside is do for a request that may run while earlier requests'
// transitions are pending: see request.alongside.
func (w *writer) doAlongside(ctx context.Context, fn func(*writeStmts) error) error {
	return w.send(&request{ctx: ctx, fn: fn, alongside: true})
}

// send hands r to the writer and waits for its answer: see do.
func (w *writer) send(r *request) error {
	ctx := r.ctx
	if err := ctx.Err(); err != nil {
		return err
	}
	r.done = make(chan error, 1)
	w.waiting.Add(1)
	select {
	case w.reqs <- r:
		w.waiting.Add(-1)
	case <-w.quit:
		w.waiting.Add(-1)
		return store.ErrClosed
	case <-ctx.Done():
		w.waiting.Add(-1)
		return ctx.Err()
	}
	return <-r.done
}

// run prepares the write statements, reports on started, and then serves
// requests until close. It holds the write connection as the driver's own
// throughout (see stmt).
func (w *writer) run(started chan<- error) {
	defer close(w.done)
	prepared := false
	w.err = w.conn.Raw(func(dc any) error {
		ws, err := prepareWrites(dc.(driver.Conn), &w.statements)
		if err != nil {
			return err
		}
		if w.status, _ = dc.(msqlite.DBStatus); w.status == nil {
			return errors.Join(fmt.Errorf("driver connection %T reads no status", dc), ws.close())
		}
		w.stmts, prepared = ws, true
		started <- nil
		w.serve()
		w.wal.finish()
		return ws.close()
	})
	if !prepared {
		started <- w.err
	}
}

// serve commits requests in groups until close: it takes one request,
// drains whatever else is waiting, commits them together and answers them.
func (w *writer) serve() {
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case r := <-w.reqs:
			w.serveBatch(w.gather(append(batch[:0], r)))
			// The callers just answered are runnable, most of them on this
			// goroutine's P, where the runtime would run the first caller
			// to send again and this goroutine in turn ahead of all the
			// others, a batch of one at a time. Yielding lets them run and
			// queue their next writes for the next batch; with no one else
			// to run, it returns at once.
			runtime.Gosched()
		case <-w.quit:
			return
		}
	}
}

// serveBatch commits batch, answers its requests, and then keeps the WAL
// short.
func (w *writer) serveBatch(batch []*request) {
	var began time.Time
	if w.onCommit != nil {
		began = time.Now()
	}
	errs := w.commit(batch)
	w.commits.Add(1)
	w.requests.Add(int64(len(batch)))
	w.last = len(batch)
	if w.onCommit != nil {
		w.onCommit(len(batch), time.Since(began))
	}
	for i, r := range batch {
		r.done <- errs[i]
		batch[i] = nil
	}
	w.checkpoint()
}

// checkpoint accounts for the WAL frames the last transaction wrote and,
// once the checkpointer's pass is over, copies into the database file the
// frames written since it began (see checkpointer).
func (w *writer) checkpoint() {
	n, _, err := w.status.Status(msqlite.DBStatusCacheWrite, true)
	w.frames.Add(int64(n))
	if err != nil || !w.wal.wrote(n) {
		return
	}
	var row [3]driver.Value
	_, _ = w.stmts.checkpoint.queryRow(row[:]) // failures as the checkpointer's
	w.wal.copied()
}

// gather adds to batch the requests already waiting and then, if it
// should wait for siblings (awaitSiblings), more, for up to w.delay: until
// the batch holds as many requests as the last transaction did. Those
// callers were answered just now and are running; committing without them
// would make each wait for a whole transaction more.
//
// It waits by yielding the processor to the callers, not by sleeping: a
// timer of microseconds fires late, by up to a millisecond, when every
// processor is idle.
func (w *writer) gather(batch []*request) []*request {
	batch = w.drain(batch)
	if !w.awaitSiblings(len(batch)) {
		return batch
	}
	if w.waited != nil {
		w.waited()
	}
	deadline := time.Now().Add(w.delay)
	for yields := 0; len(batch) < w.last && yields < maxYields && time.Now().Before(deadline); yields++ {
		runtime.Gosched()
		batch = w.drain(batch)
	}
	return batch
}

// awaitSiblings reports whether gather should wait for more requests to
// join a batch of n: when there is a delay, the last transaction held at
// least minSiblings requests, and the batch holds fewer. A lone writer,
// whose transactions hold one request, never waits.
func (w *writer) awaitSiblings(n int) bool {
	return w.delay > 0 && w.last >= minSiblings && n < w.last
}

// drain adds the requests already waiting to batch, up to maxBatch.
func (w *writer) drain(batch []*request) []*request {
	for len(batch) < maxBatch {
		select {
		case r := <-w.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit runs batch in one transaction and returns each request's error.
// A request that fails is rolled back alone; a failure of the transaction
// itself fails every request.
//
// Requests rarely fail, so commit first runs them all back to back, with
// no savepoints, and inserts their transitions together after the last.
// If one fails (or that insert does), its partial writes are in the
// transaction with the others': commit rolls the transaction back and runs
// the batch again, each request in a savepoint of its own with its own
// transitions. A request's fn may therefore run twice, the first time
// rolled back.
func (w *writer) commit(batch []*request) []error {
	errs := make([]error, len(batch))
	if err := w.begin(batch); err != nil {
		return fill(errs, fmt.Errorf("begin: %w", err))
	}
	// A request whose ctx is done by now is dropped, from both runs.
	for i, r := range batch {
		errs[i] = r.ctx.Err()
	}
	if !w.runAll(batch, errs) {
		w.stmts.discard()
		w.exec(w.stmts.rollback)
		if err := w.begin(batch); err != nil {
			return fill(errs, fmt.Errorf("begin: %w", err))
		}
		if err := w.runEach(batch, errs); err != nil {
			w.exec(w.stmts.rollback)
			return fill(errs, err)
		}
	}
	if err := w.exec(w.stmts.commit); err != nil {
		w.exec(w.stmts.rollback)
		return fill(errs, fmt.Errorf("commit: %w", err))
	}
	return errs
}

// runAll runs the requests of batch that errs leaves live, without
// savepoints, then inserts their transitions, and reports whether all of
// it succeeded; it stops at the first failure. A request that may not run
// alongside pending transitions has those before it inserted first.
func (w *writer) runAll(batch []*request, errs []error) bool {
	for i, r := range batch {
		if errs[i] != nil {
			continue
		}
		if !r.alongside && w.stmts.flush() != nil {
			return false
		}
		if r.fn(w.stmts) != nil {
			return false
		}
	}
	return w.stmts.flush() == nil
}

// runEach runs the requests of batch that errs leaves live, each in a
// savepoint, and sets their errors in errs. An error means the transaction
// itself is lost.
func (w *writer) runEach(batch []*request, errs []error) error {
	for i, r := range batch {
		if errs[i] != nil {
			continue
		}
		var txErr error
		if errs[i], txErr = w.runOne(r); txErr != nil {
			return txErr
		}
	}
	return nil
}

// begin starts a write transaction. Another process holding the write lock
// makes BEGIN IMMEDIATE wait up to busyTimeoutMS and then fail with
// SQLITE_BUSY; begin tries again while some request still waits for it.
func (w *writer) begin(batch []*request) error {
	for {
		err := w.exec(w.stmts.begin)
		if err == nil || !isBusy(err) || w.stopping() || allDone(batch) {
			return err
		}
	}
}

// runOne runs r in a savepoint. reqErr is r's own failure, rolled back to
// the savepoint; txErr means the transaction itself is lost.
func (w *writer) runOne(r *request) (reqErr, txErr error) {
	if err := w.exec(w.stmts.savepoint); err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	if reqErr = r.fn(w.stmts); reqErr == nil {
		reqErr = w.stmts.flush()
	}
	if reqErr != nil {
		w.stmts.discard()
		if err := w.exec(w.stmts.rollbackToSP); err != nil {
			return reqErr, fmt.Errorf("rollback to savepoint: %w (after %w)", err, reqErr)
		}
	}
	if err := w.exec(w.stmts.release); err != nil {
		return reqErr, fmt.Errorf("release savepoint: %w", err)
	}
	return reqErr, nil
}

// exec runs one of the transaction statements.
func (w *writer) exec(st *stmt) error {
	_, err := st.run()
	return err
}

func (w *writer) stopping() bool {
	select {
	case <-w.quit:
		return true
	default:
		return false
	}
}

func allDone(batch []*request) bool {
	for _, r := range batch {
		if r.ctx.Err() == nil {
			return false
		}
	}
	return true
}

// fill sets every nil error of errs to err.
func fill(errs []error, err error) []error {
	for i := range errs {
		if errs[i] == nil {
			errs[i] = err
		}
	}
	return errs
}

// isBusy reports SQLITE_BUSY, in any of its extended forms.
func isBusy(err error) bool {
	var e interface{ Code() int }
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}
