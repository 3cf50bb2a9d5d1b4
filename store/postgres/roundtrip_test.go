package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/postgres/pgtest"
)

// counter counts what a pool sends: single queries, and batches (one
// round trip each, whatever they hold).
type counter struct{ queries, batches atomic.Int64 }

func (c *counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	return ctx
}
func (c *counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *counter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.batches.Add(1)
	return ctx
}
func (c *counter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *counter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// take returns the counts since the last take.
func (c *counter) take() (queries, batches int64) { return c.queries.Swap(0), c.batches.Swap(0) }

// Every call is one query or one batch, however many changes or steps it
// carries: an Apply of k changes is one round trip, not k.
func TestOneRoundTripPerCall(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	var c counter
	cfg.ConnConfig.Tracer = &c
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	defer pool.Close()
	s := open(t, pool)
	ctx := context.Background()
	steps := make([]store.Step, 8)
	var claims, completions []store.Change
	for i := range steps {
		name := fmt.Sprint("s", i)
		steps[i] = store.Step{Name: name, Position: i, State: "pending"}
		claims = append(claims, store.Change{TaskID: "t1", Step: name, From: "pending", To: "in_progress", Attempt: 1, Lease: 1})
		completions = append(completions, store.Change{TaskID: "t1", Step: name, From: "in_progress", FromAttempt: 1,
			To: "completed", Attempt: 1, Result: []byte(`{}`), Outbox: []store.OutboxEntry{{Data: []byte(`1`)}}})
	}
	c.take()
	for _, call := range []struct {
		name             string
		run              func() error
		queries, batches int64
	}{
		{"CreateLeased of 8 steps", func() error {
			_, _, _, err := s.CreateLeased(ctx, store.Task{ID: "t1", State: "pending"}, steps, "a", time.Hour)
			return err
		}, 1, 0},
		{"Apply of 8 fenced claims", func() error { return s.Apply(ctx, claims) }, 0, 1},
		{"Apply of 8 completions with outbox entries", func() error { return s.Apply(ctx, completions) }, 0, 1},
		{"Snapshot", func() error { _, err := s.Snapshot(ctx, "t1"); return err }, 0, 1},
		{"Task", func() error { _, err := s.Task(ctx, "t1"); return err }, 1, 0},
		{"AcquireTasks", func() error { _, err := s.AcquireTasks(ctx, "b", []string{"pending"}, 10, time.Hour); return err }, 1, 0},
	} {
		if err := call.run(); err != nil {
			t.Fatalf("%s: %v", call.name, err)
		}
		if q, b := c.take(); q != call.queries || b != call.batches {
			t.Errorf("%s sent %d queries and %d batches, want %d and %d", call.name, q, b, call.queries, call.batches)
		}
	}
}
