package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/postgres"
	"github.com/gotasker/tasker/store/postgres/pgtest"
)

// migrationCount is how many files store/postgres/migrations holds.
const migrationCount = 2

// Processes starting together on a new schema migrate it once, one after
// the other, and every one of them works.
func TestConcurrentOpen(t *testing.T) {
	const n = 8
	schema := pgtest.NewSchema(t)
	stores := make([]*postgres.Store, n)
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		pool := pgtest.Pool(t) // one pool each, as separate processes have
		go func() {
			<-start
			var err error
			stores[i], err = postgres.Open(context.Background(), pool, &postgres.Options{Schema: schema})
			errs <- err
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	if t.Failed() {
		return
	}
	for i, s := range stores {
		defer s.Close()
		task := store.Task{ID: fmt.Sprint("t", i), Namespace: "ns", Name: "n", State: "pending"}
		if _, _, err := s.CreateTask(context.Background(), task, nil); err != nil {
			t.Errorf("CreateTask through store %d: %v", i, err)
		}
	}
	var versions int
	query := `SELECT count(*) FROM ` + pgx.Identifier{schema, "tasker_migrations"}.Sanitize()
	if err := pgtest.Pool(t).QueryRow(context.Background(), query).Scan(&versions); err != nil {
		t.Fatalf("count versions: %v", err)
	}
	if versions != migrationCount {
		t.Errorf("tasker_migrations holds %d versions, want %d", versions, migrationCount)
	}
}

// A schema migrated by a newer program is refused.
func TestOpenNewerSchema(t *testing.T) {
	pool := pgtest.Pool(t)
	s := open(t, pool)
	insert := `INSERT INTO ` + pgx.Identifier{s.Schema(), "tasker_migrations"}.Sanitize() + ` (version) VALUES (99)`
	if _, err := pool.Exec(context.Background(), insert); err != nil {
		t.Fatalf("insert version: %v", err)
	}
	_, err := postgres.Open(context.Background(), pool, &postgres.Options{Schema: s.Schema()})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a schema at version 99: %v, want an error saying it is newer", err)
	}
}

func TestInvalidSchemaName(t *testing.T) {
	pool := pgtest.Pool(t)
	_, err := postgres.Open(context.Background(), pool, &postgres.Options{Schema: strings.Repeat("x", 64)})
	if err == nil || !strings.Contains(err.Error(), "schema name") {
		t.Errorf("Open with a 64-byte schema name: %v, want an error about the name", err)
	}
}

// poolWithSearchPath returns a pool whose connections have search_path
// set to path.
func poolWithSearchPath(t *testing.T, path string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = path
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Without Options.Schema the store uses the connection's current schema.
func TestDefaultSchemaIsTheConnections(t *testing.T) {
	schema := pgtest.NewSchema(t)
	if _, err := pgtest.Pool(t).Exec(context.Background(), `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	pool := poolWithSearchPath(t, pgx.Identifier{schema}.Sanitize())
	s := postgres.New(pool, nil)
	defer s.Close()
	if _, _, err := s.CreateTask(context.Background(), store.Task{ID: "t1", State: "pending"}, nil); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	if got := s.Schema(); got != schema {
		t.Errorf("Schema() = %q, want the search_path's %q", got, schema)
	}
	var table *string
	if err := pool.QueryRow(context.Background(), `SELECT to_regclass($1)::text`, schema+".tasks").Scan(&table); err != nil || table == nil {
		t.Errorf("table %s.tasks: %v, %v; want it created", schema, table, err)
	}

	missing := postgres.New(poolWithSearchPath(t, pgtest.SchemaName()), nil)
	defer missing.Close()
	if _, err := missing.Task(context.Background(), "t1"); err == nil || !strings.Contains(err.Error(), "search_path") {
		t.Errorf("Task with a search_path naming no schema: %v, want an error naming search_path", err)
	}
}
