// Package sqlite is a store.Store kept in one SQLite database file, through
// the pure-Go driver modernc.org/sqlite (no cgo).
//
// The database runs in WAL mode with foreign keys on. Its schema is embedded
// and migrated on Open: PRAGMA user_version counts the migrations applied,
// and Open applies the missing ones in one transaction.
//
// Writes (CreateTask, Apply) go to a single writer goroutine that owns the
// only write connection and commits in groups: it takes one request, drains
// whatever else is waiting (up to 256 requests), runs them all in one
// BEGIN IMMEDIATE transaction and commits once. A request that fails, such
// as an Apply whose changes conflict, is undone alone and gets its own
// error; the others commit. (Failures are rare, so the writer runs a batch
// without savepoints first; if a request fails, it rolls the transaction
// back and runs the batch again with a savepoint per request.) Callers
// therefore never see SQLITE_BUSY from each other, and many concurrent
// writers share one fsync. Reads (Task, Steps, Transitions, ListTasks,
// DeadLetters) use a separate pool of read-only connections and never wait
// for the writer. Nor does the writer copy the WAL into the database file
// (checkpoint) itself, as SQLite would have it do every thousand pages or
// so: a goroutine of the Store does, on a connection of its own, while the
// writer commits.
//
// A write is durable when its call returns, to the level Options.Synchronous
// states. The ctx of a write bounds the wait: if it is done before the
// writer starts the request, the request is dropped; once the request is in
// a transaction it runs to completion, so a write whose call returned a
// context error may still have been applied. Callers that retry after a
// timeout can make CreateTask safe with an idempotency key; an Apply retried
// after it did apply fails with store.ErrConflict.
//
// One writer per SQLite file: a Store holds its file for writing from Open
// to Close, through an advisory lock on a lock file beside it (the
// database's path plus ".lock", left in place on Close). Opening a file
// that another Store holds, in this process or another, fails at once with
// an error wrapping store.ErrLocked that names the file; when the holder
// closes, or its process ends, however it ends, the file can be opened
// again. Two engines on one file would run each other's steps twice; many
// engines sharing one database is the job of a server database's store
// (PostgreSQL), not this one. The lock is flock(2) on Unix systems and an
// unshared open on Windows; elsewhere (Plan 9, WebAssembly, ...) there is no
// lock and the rule is the caller's to keep. Tools such as the sqlite3
// shell do not look at the lock, and they may read the file at any time.
//
// The Store is a store.Purger: PurgeTasks deletes old tasks in short
// transactions through the writer and gives the pages freed back to the
// file system (incremental auto-vacuum, which Open turns on, rewriting a
// file created by an earlier version once with VACUUM).
//
// The Store never logs.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotasker/tasker/store"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// busyTimeoutMS is how long a connection waits for a lock SQLite's own
// locking reports held by another connection, such as a checkpoint or a
// tool outside this package reading the file, before failing.
const busyTimeoutMS = 5000

// Options configures Open. A nil *Options and the zero Options both mean
// the defaults.
type Options struct {
	// Synchronous is SQLite's synchronous setting, "NORMAL" (the default)
	// or "FULL"; case does not matter.
	//
	// With WAL, "NORMAL" makes a returned write survive a crash of the
	// process, SIGKILL included; on power loss or an operating system crash
	// the last transactions before it may roll back, but the database stays
	// consistent. "FULL" also survives power loss, at the cost of an fsync
	// on every commit (group commit shares it among concurrent writers).
	Synchronous string
	// OnCommit, when set, is called by the store's writer after each
	// transaction it commits (or fails to), with how many write requests
	// (CreateTask and Apply calls) the transaction held and how long it
	// took, for metrics of group commit such as package taskerotel's. It
	// runs on the writer goroutine: it must be quick and must not call the
	// store. Nil, the default, measures nothing.
	OnCommit func(requests int, took time.Duration)
	// CommitDelay, when positive, lets the writer wait up to that long,
	// once it has taken a request, for more to share its transaction, as
	// PostgreSQL's commit_delay does: only when the last transaction held
	// at least three requests (concurrent writers are active, and the
	// callers it answered are about to write again), and only until the
	// transaction holds as many as that one did. A lone writer never
	// waits. The wait precedes the transaction: a request is still
	// answered only once the transaction holding it has committed.
	//
	// Zero, the default, never waits: on two cores, with the engine's
	// closed loop of 1 to 10 tasks in flight, delays of 25 to 200 µs
	// gained nothing measurable, because the writer's transactions already
	// take long enough for the callers it answered to queue their next
	// writes meanwhile. A delay may pay where a commit is dear next to the
	// time the callers take between writes. Negative values are invalid.
	CommitDelay time.Duration
}

// withDefaults returns a copy of o with every zero field set to its
// default, after checking it.
func (o *Options) withDefaults() (Options, error) {
	var out Options
	if o != nil {
		out = *o
	}
	out.Synchronous = strings.ToUpper(out.Synchronous)
	switch out.Synchronous {
	case "":
		out.Synchronous = "NORMAL"
	case "NORMAL", "FULL":
	default:
		return Options{}, fmt.Errorf("sqlite: invalid Options.Synchronous %q: want NORMAL or FULL", o.Synchronous)
	}
	if out.CommitDelay < 0 {
		return Options{}, fmt.Errorf("sqlite: invalid Options.CommitDelay %s: want 0 or more", out.CommitDelay)
	}
	return out, nil
}

// Store is a store.Store kept in a SQLite database file. Create one with
// Open and release it with Close. A Store is safe for concurrent use. It
// holds its file for writing until Close: see the package comment.
type Store struct {
	lock      io.Closer // the lock file, held from Open to Close
	w         *writer
	ckpt      *checkpointer // copies the WAL into the file, when w asks
	wdb       *sql.DB       // one connection, owned by w
	rdb       *sql.DB       // the read pool
	reads     *readStmts
	closed    atomic.Bool
	closeOnce sync.Once
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Snapshotter = (*Store)(nil)
)

// Open opens the store in the SQLite database file at path, creating the
// file if needed and migrating its schema to this version. It fails if the
// file's schema is newer than this package knows, and with an error
// wrapping store.ErrLocked if another Store holds the file (see the package
// comment). path is a file system path, not a URI; opts may be nil.
func Open(path string, opts *Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open: path %q: want a file path", path)
	}
	s := &Store{}
	if err := s.open(path, o); err != nil {
		s.release()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) open(path string, o Options) error {
	var err error
	if s.lock, err = lockFile(lockPath(path)); err != nil {
		return err
	}
	ctx := context.Background()
	conn, err := s.openWriteConn(ctx, path, o)
	if err != nil {
		return err
	}
	cdb, err := sql.Open("sqlite", dsn(path, o, false))
	if err != nil {
		conn.Close()
		return err
	}
	s.ckpt = newCheckpointer(cdb)
	if s.w, err = newWriter(conn, o, s.ckpt); err != nil {
		conn.Close()
		return err
	}
	if s.rdb, err = sql.Open("sqlite", dsn(path, o, true)); err != nil {
		return err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.rdb.SetMaxOpenConns(n)
	s.rdb.SetMaxIdleConns(n)
	s.reads, err = prepareReads(ctx, s.rdb)
	return err
}

// openWriteConn opens the one write connection and brings the schema up to
// date through it.
func (s *Store) openWriteConn(ctx context.Context, path string, o Options) (*sql.Conn, error) {
	var err error
	if s.wdb, err = sql.Open("sqlite", dsn(path, o, false)); err != nil {
		return nil, err
	}
	s.wdb.SetMaxOpenConns(1)
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if err := setUp(ctx, conn); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// setUp checks that the database is in WAL mode, migrates it and turns
// incremental auto-vacuum on (see enableAutoVacuum).
func setUp(ctx context.Context, conn *sql.Conn) error {
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, not WAL: is the file on a file system without shared memory?", mode)
	}
	ms, err := migrations()
	if err != nil {
		return err
	}
	if err := migrate(ctx, conn, ms); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := enableAutoVacuum(ctx, conn); err != nil {
		return fmt.Errorf("auto-vacuum: %w", err)
	}
	return nil
}

// dsn returns the driver's data source name for path: a file: URI with the
// connection's pragmas.
func dsn(path string, o Options, readOnly bool) string {
	q := fmt.Sprintf("?_pragma=busy_timeout(%d)&_pragma=synchronous(%s)", busyTimeoutMS, o.Synchronous)
	if readOnly {
		q += "&_pragma=query_only(1)"
	} else {
		// The writer has the checkpointer copy the WAL: see checkpointer.
		q += "&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=wal_autocheckpoint(0)"
		// SQLite reuses the WAL file from its beginning and never shrinks
		// it: one that grew past the writer's bound (a reader held a
		// snapshot the checkpoints could not pass) would keep its size for
		// good. This truncates it to the bound when it starts again.
		q += fmt.Sprintf("&_pragma=journal_size_limit(%d)", walSizeLimit)
	}
	// In a URI, '?' and '#' end the path and '%' escapes.
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + q
}

// Close stops the writer, waiting for the writes in progress to commit,
// closes the database and releases the file for another Store. Later calls return store.ErrClosed; Close itself
// is idempotent and a second Close returns nil.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		err = s.release()
		if err != nil {
			err = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return err
}

// release stops and closes whatever open got to, and releases the lock
// last, once nothing of this Store can write.
func (s *Store) release() error {
	var errs []error
	if s.w != nil {
		errs = append(errs, s.w.close())
	}
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.close())
	}
	if s.reads != nil {
		errs = append(errs, s.reads.close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

// fail wraps an error of operation op. Once the store is closed, a failure
// that is not a verdict on the data (a conflict, a missing task) is
// reported as store.ErrClosed: the driver's own "database is closed" errors
// are not sentinels.
func (s *Store) fail(op string, err error) error {
	if s.closed.Load() && !errors.Is(err, store.ErrClosed) &&
		!errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
		err = store.ErrClosed
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// CommitStats returns how many transactions the store's writer has
// committed since Open and how many write requests (CreateTask and Apply
// calls) they held, for measuring group commit. A read-only store returns
// 0, 0.
func (s *Store) CommitStats() (commits, requests int64) {
	if s.w == nil {
		return 0, 0
	}
	return s.w.commits.Load(), s.w.requests.Load()
}
