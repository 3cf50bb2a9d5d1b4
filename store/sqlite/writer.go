package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/gotasker/tasker/store"
	sqlite3 "modernc.org/sqlite/lib"
)

// maxBatch bounds how many requests share one transaction.
const maxBatch = 256

// request is one caller's write, run by the writer inside its own
// savepoint.
type request struct {
	ctx  context.Context
	fn   func(*writeStmts) error
	done chan error // buffered: the writer never blocks answering
}

// writer owns the write connection. Its goroutine, run, commits requests in
// groups; do hands it one and waits for the answer.
type writer struct {
	conn  *sql.Conn
	stmts *writeStmts
	reqs  chan *request // unbuffered: a request is either taken or not sent
	quit  chan struct{}
	done  chan struct{} // closed when run returns

	// commits and requests count transactions and the requests they held;
	// benchmarks report their ratio.
	commits, requests atomic.Int64
}

// newWriter prepares the write statements on conn and starts the writer
// goroutine; close stops it.
func newWriter(ctx context.Context, conn *sql.Conn) (*writer, error) {
	st, err := prepareWrites(ctx, conn)
	if err != nil {
		return nil, err
	}
	w := &writer{
		conn: conn, stmts: st,
		reqs: make(chan *request),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go w.run()
	return w, nil
}

// close stops the writer goroutine, after it answers the requests it has
// taken, and closes the write connection.
func (w *writer) close() error {
	close(w.quit)
	<-w.done
	return errors.Join(w.stmts.close(), w.conn.Close())
}

// do runs fn in the writer's next transaction and returns its error, or
// the commit's. It returns ctx's error if ctx is done first: fn then either
// never runs, or runs and commits regardless.
func (w *writer) do(ctx context.Context, fn func(*writeStmts) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case w.reqs <- r:
	case <-w.quit:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		select {
		case err := <-r.done: // answered meanwhile: report what happened
			return err
		default:
			return ctx.Err()
		}
	}
}

func (w *writer) run() {
	defer close(w.done)
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case r := <-w.reqs:
			batch = w.drain(append(batch[:0], r))
			errs := w.commit(batch)
			w.commits.Add(1)
			w.requests.Add(int64(len(batch)))
			for i, r := range batch {
				r.done <- errs[i]
				batch[i] = nil
			}
		case <-w.quit:
			return
		}
	}
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
func (w *writer) commit(batch []*request) []error {
	errs := make([]error, len(batch))
	if err := w.begin(batch); err != nil {
		return fill(errs, fmt.Errorf("begin: %w", err))
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		var txErr error
		if errs[i], txErr = w.runOne(r); txErr != nil {
			w.exec("ROLLBACK")
			return fill(errs, txErr)
		}
	}
	if err := w.exec("COMMIT"); err != nil {
		w.exec("ROLLBACK")
		return fill(errs, fmt.Errorf("commit: %w", err))
	}
	return errs
}

// begin starts a write transaction. Another process holding the write lock
// makes BEGIN IMMEDIATE wait up to busyTimeoutMS and then fail with
// SQLITE_BUSY; begin tries again while some request still waits for it.
func (w *writer) begin(batch []*request) error {
	for {
		err := w.exec("BEGIN IMMEDIATE")
		if err == nil || !isBusy(err) || w.stopping() || allDone(batch) {
			return err
		}
	}
}

// runOne runs r in a savepoint. reqErr is r's own failure, rolled back to
// the savepoint; txErr means the transaction itself is lost.
func (w *writer) runOne(r *request) (reqErr, txErr error) {
	if err := w.exec("SAVEPOINT request"); err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	if reqErr = r.fn(w.stmts); reqErr != nil {
		if err := w.exec("ROLLBACK TO request"); err != nil {
			return reqErr, fmt.Errorf("rollback to savepoint: %w (after %w)", err, reqErr)
		}
	}
	if err := w.exec("RELEASE request"); err != nil {
		return reqErr, fmt.Errorf("release savepoint: %w", err)
	}
	return reqErr, nil
}

func (w *writer) exec(query string) error {
	_, err := w.conn.ExecContext(context.Background(), query)
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
