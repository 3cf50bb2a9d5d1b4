package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/postgres"
)

// The PostgreSQL store: -store postgres runs on the server
// TASKER_POSTGRES_URL names (a pgx connection string), in a schema of the
// run's own, created for it and dropped after it. Without pool_max_conns in
// the URL, each process's pool holds at most defaultPoolConns connections.
const (
	postgresURLEnv   = "TASKER_POSTGRES_URL"
	postgresStore    = "postgres"
	defaultPoolConns = 16
	schemaPrefix     = "taskerbench_"
	dropTimeout      = 30 * time.Second
)

// errNoPostgres reports -store postgres without a server to run on.
var errNoPostgres = errors.New("-store postgres needs " + postgresURLEnv + ", a connection string such as postgres://user@host/db")

// expandStores is expand for -store: the local stores for "all", and
// postgres besides them when named.
func expandStores(value string) ([]string, error) {
	if value == "all" {
		return storeNames, nil
	}
	return expand(value, append(storeNames[:len(storeNames):len(storeNames)], postgresStore), "store")
}

// postgresURL returns the server's connection string.
func postgresURL() (string, error) {
	url := os.Getenv(postgresURLEnv)
	if url == "" {
		return "", errNoPostgres
	}
	return url, nil
}

// newPool opens a pool on the server.
func newPool(ctx context.Context) (*pgxpool.Pool, error) {
	url, err := postgresURL()
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", postgresURLEnv, err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultPoolConns
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

// newSchemaName returns a schema name no run has used.
func newSchemaName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails
	return schemaPrefix + hex.EncodeToString(b)
}

// openPostgres opens a store on a fresh schema of the server and returns
// it with the function that closes it, drops the schema and closes the
// pool.
func openPostgres() (store.Store, func() error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
	defer cancel()
	pool, err := newPool(ctx)
	if err != nil {
		return nil, nil, err
	}
	schema := newSchemaName()
	st, err := postgres.Open(ctx, pool, &postgres.Options{Schema: schema})
	if err != nil {
		err = errors.Join(err, dropSchema(pool, schema))
		pool.Close()
		return nil, nil, err
	}
	return st, func() error {
		err := errors.Join(st.Close(), dropSchema(pool, schema))
		pool.Close()
		return err
	}, nil
}

// dropSchema drops schema, with everything in it.
func dropSchema(pool *pgxpool.Pool, schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
	defer cancel()
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop schema %s: %w", schema, err)
	}
	return nil
}
