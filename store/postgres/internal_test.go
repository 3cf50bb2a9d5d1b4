package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/postgres/pgtest"
)

// A migration that fails (here: it cannot take the schema's advisory lock
// before its context ends) fails the call that ran it, and the next call
// migrates.
func TestLazyMigrationIsRetried(t *testing.T) {
	pool := pgtest.Pool(t)
	schema := pgtest.NewSchema(t)
	ctx := context.Background()
	holder, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer holder.Close(ctx)
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, migrationLock, schema); err != nil {
		t.Fatalf("lock: %v", err)
	}
	s := New(pool, &Options{Schema: schema})
	defer s.Close()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = s.Task(short, "t1")
	if err == nil || errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("Task while another holds the migration lock: %v, want a migration error", err)
	}
	if got := s.Schema(); got != "" {
		t.Errorf("Schema() before a migration succeeded = %q, want \"\"", got)
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, migrationLock, schema); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if _, err := s.Task(ctx, "t1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Task once the lock is free: %v, want ErrNotFound (the migration retried)", err)
	}
	if got := s.Schema(); got != schema {
		t.Errorf("Schema() = %q, want %q", got, schema)
	}
}

func TestChannelNames(t *testing.T) {
	long := strings.Repeat("s", maxIdentifier)
	for schema, want := range map[string]string{
		"public":   "tasker_wake",
		"tasker":   "tasker.tasker_wake",
		"My Tasks": "My Tasks.tasker_wake",
	} {
		if got := channelFor(schema); got != want {
			t.Errorf("channelFor(%q) = %q, want %q", schema, got, want)
		}
	}
	if got := channelFor(long); len(got) > maxIdentifier || got == channelFor(long+"x") {
		t.Errorf("channelFor of a long schema = %q: want at most %d bytes, unlike another's", got, maxIdentifier)
	}
}
