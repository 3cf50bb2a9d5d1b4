// Package pgtest gives tests a PostgreSQL server to run against: the one
// the environment variable TASKER_POSTGRES_URL names (a pgx connection
// string, such as postgres://tasker@127.0.0.1:5432/tasker?sslmode=disable),
// and a fresh schema on it for each test.
//
// Without the variable a test is skipped, unless CI=true is set too: then
// it fails, so that a CI run cannot pass by skipping every PostgreSQL test.
// The repository's .ci/run starts a throwaway server and sets the variable.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvURL is the environment variable naming the server.
const EnvURL = "TASKER_POSTGRES_URL"

// cleanupTimeout bounds how long dropping a test's schema may take.
const cleanupTimeout = 30 * time.Second

// URL returns the server's connection string. Without one it skips t, or
// fails it when the environment variable CI is "true".
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(EnvURL)
	if url != "" {
		return url
	}
	const msg = "set " + EnvURL + " to a PostgreSQL server to run these; .ci/run starts one"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: the PostgreSQL tests may not be skipped)")
	}
	t.Skip(msg)
	return ""
}

// Pool returns a pool on the server, closed when t ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), URL(t))
	if err != nil {
		t.Fatalf("pgtest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// SchemaName returns a new, random schema name, unused on any server.
func SchemaName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails
	return "tasker_test_" + hex.EncodeToString(b)
}

// NewSchema returns the name of a schema no one uses yet, which the test
// owns: it is dropped, with everything in it, when t ends. The schema is
// not created: a store given it creates it.
func NewSchema(t testing.TB) string {
	t.Helper()
	url := URL(t)
	schema := SchemaName()
	t.Cleanup(func() { DropSchema(t, url, schema) })
	return schema
}

// DropSchema drops schema, with everything in it, from the server at url,
// failing t if it cannot.
func DropSchema(t testing.TB, url, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(url) // the URL may hold pool settings too
	if err != nil {
		t.Errorf("pgtest: drop schema %s: %v", schema, err)
		return
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		t.Errorf("pgtest: drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Errorf("pgtest: drop schema %s: %v", schema, err)
	}
}
