// Package postgres is a store.Store kept in a PostgreSQL database, through
// pgx (github.com/jackc/pgx/v5) and a pool the caller owns. Many engines,
// in one process or many, may share one database: the Store is a
// store.Leaser, so each unfinished task is run by the engine holding its
// lease, and a store.Waker, so idle engines hear of new work at once.
//
//	pool, err := pgxpool.New(ctx, "postgres://tasker@db/tasker")
//	...
//	eng, err := tasker.New(postgres.New(pool, nil), cfg)
//
// # Schema
//
// The tables live in Options.Schema, or in the connection's current schema
// (the first of its search_path that exists, usually public) when that is
// empty; naming a schema of the store's own keeps its tables (tasks, steps,
// transitions, dead_letters, outbox) apart from an application's. The
// schema is embedded and migrated on first use (New) or at once (Open):
// the migrations in migrations/NNNN_*.sql run in one transaction holding
// an advisory lock on the schema's name, so processes starting together
// migrate it once, one after the other; tasker_migrations records the
// versions applied. A schema that does not exist is created.
//
// Times the engine gives are stored as Unix nanoseconds, exact and in UTC;
// JSON values as bytea, byte for byte. Leases are kept by the server's
// clock, now(), which every engine shares whatever its own clock says.
//
// # Writes
//
// Every write is one transaction, sent as one pipeline: an Apply of k
// changes is one round trip, each change a single statement that checks its
// compare-and-swap, records its transition, dead-letter operations and
// outbox entries, and raises when it matches nothing, which rolls the whole
// batch back. A change fenced by a lease (store.Change.Lease) first takes a
// shared lock on its task's row, so that no engine acquires the task until
// the batch commits; a change whose token is no longer the task's fails
// with an error wrapping store.ErrLeaseLost.
//
// A write whose call started is not cut short by its context: once the
// pipeline is sent, it runs to its end. Like any network database, though,
// the store cannot promise that an error means nothing was written: when
// the connection fails after the commit was sent, the commit may have
// happened without its acknowledgement arriving. Callers that retry after
// such an error can make CreateTask safe with an idempotency key; an Apply
// retried after it did apply fails with store.ErrConflict (the engine
// checks for both).
//
// # Waking
//
// CreateTask (of a task not leased to its creator) and ReleaseTasks send a
// notification (pg_notify) in their transaction, delivered when it
// commits. The first call of Wake starts a goroutine that holds a
// connection of its own, opened with the pool's configuration, LISTENing
// to the schema's channel (tasker_wake for public, "schema.tasker_wake"
// for another), and reconnects with backoff when it drops; each
// notification, and each time it starts listening, sends on Wake's
// channel without blocking. Close stops it.
//
// The caller owns the pool: Close releases the Store's own goroutine and
// connection, never the pool.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/gotasker/tasker/store"
)

// Options configures New and Open. A nil *Options and the zero Options both
// mean the defaults.
type Options struct {
	// Schema is the schema holding the store's tables, created if it does
	// not exist, and named in every statement. "", the default, is the
	// connection's current schema (the first of its search_path that
	// exists), as it is when the store is first used.
	Schema string
	// Logger receives what the store does in the background: the wake
	// listener's lost connections and reconnections. Nil means zap.NewNop().
	Logger *zap.Logger
}

// Store is a store.Store kept in a PostgreSQL database. Create one with New
// or Open and release it with Close. A Store is safe for concurrent use, and
// any number of Stores, in this process or others, may share a schema.
type Store struct {
	pool *pgxpool.Pool
	opts Options
	log  *zap.Logger

	mu sync.Mutex // held while migrating
	q  atomic.Pointer[queries]

	closed    atomic.Bool
	closeOnce sync.Once
	wake      waker
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Snapshotter = (*Store)(nil)
	_ store.Outboxer    = (*Store)(nil)
	_ store.Leaser      = (*Store)(nil)
	_ store.Waker       = (*Store)(nil)
)

// New returns a Store on pool that migrates its schema on first use: the
// first call that needs the database migrates it, and a failed migration
// is tried again by the next call, which returns its error. Use Open to
// migrate at once and see the error there.
func New(pool *pgxpool.Pool, opts *Options) *Store {
	s := &Store{pool: pool, log: zap.NewNop()}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Logger != nil {
		s.log = s.opts.Logger
	}
	s.wake.init()
	return s
}

// Open returns a Store on pool, its schema migrated; it fails if the
// migration does, or if the schema's version is newer than this package
// knows.
func Open(ctx context.Context, pool *pgxpool.Pool, opts *Options) (*Store, error) {
	s := New(pool, opts)
	if _, err := s.ready(ctx); err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return s, nil
}

// ready returns the store's statements, migrating the schema first if no
// call has yet. It fails once the store is closed, or when ctx is done.
func (s *Store) ready(ctx context.Context) (*queries, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q := s.q.Load(); q != nil {
		return q, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.q.Load(); q != nil {
		return q, nil
	}
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	schema, err := migrate(ctx, s.pool, s.opts.Schema, ms)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	q := queriesFor(schema)
	s.q.Store(q)
	return q, nil
}

// Schema returns the schema the store's tables are in, once a call has
// migrated it (Open, or any call after New); "" before.
func (s *Store) Schema() string {
	if q := s.q.Load(); q != nil {
		return q.schema
	}
	return ""
}

// Close stops the wake listener, if Wake started it, and waits for it to
// end. It does not close the pool, which the caller owns, nor wait for the
// calls in progress, which finish on it. Later calls return
// store.ErrClosed; Close itself is idempotent and always returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.wake.stop()
	})
	return nil
}

// fail wraps an error of operation op.
func fail(op string, err error) error {
	return fmt.Errorf("postgres: %s: %w", op, err)
}

var errNoOwner = errors.New("an empty owner cannot hold a lease")
