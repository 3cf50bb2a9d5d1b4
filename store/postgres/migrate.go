package postgres

import (
	"github.com/gotasker/tasker/store/internal/migfiles"

	"context"
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles holds the schema, one file per version: NNNN_what.sql,
// numbered from 0001 without gaps. A released file is never edited; a
// schema change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the first key of the advisory lock that migrations hold,
// the second being a hash of the schema's name: processes migrating one
// schema take turns, and different schemas do not wait for each other.
const migrationLock = 0x7461736b // "task"

// migrations returns the SQL of every migration, version i+1 at index i.
func migrations() ([]string, error) { return migfiles.Read(migrationFiles) }

// migrate brings schema (the connection's current schema when "") up to
// the version len(ms), in one transaction that holds the schema's advisory
// lock, creating the schema if it does not exist; it returns the schema's
// name. The table tasker_migrations records the versions applied; a schema
// at a later version than len(ms) is an error.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, ms []string) (string, error) {
	if len(schema) > maxIdentifier || strings.ContainsRune(schema, 0) {
		return "", fmt.Errorf("invalid schema name %q: want at most %d bytes and no NUL", schema, maxIdentifier)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op once committed
	if schema == "" {
		if schema, err = currentSchema(ctx, tx); err != nil {
			return "", err
		}
	}
	if err := migrateTx(ctx, tx, schema, ms); err != nil {
		return "", err
	}
	return schema, tx.Commit(ctx)
}

// currentSchema returns the first schema of the connection's search_path
// that exists.
func currentSchema(ctx context.Context, tx pgx.Tx) (string, error) {
	var schema *string
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", err
	}
	if schema == nil {
		return "", errors.New("no schema of the connection's search_path exists: set Options.Schema")
	}
	return *schema, nil
}

// migrateTx is migrate's work inside its transaction.
func migrateTx(ctx context.Context, tx pgx.Tx, schema string, ms []string) error {
	quoted := pgx.Identifier{schema}.Sanitize()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, migrationLock, schema); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	// CREATE SCHEMA IF NOT EXISTS would need the right to create schemas
	// even when this one exists.
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+quoted); err != nil {
			return err
		}
	}
	for _, stmt := range []string{
		`SET LOCAL search_path TO ` + quoted,
		`CREATE TABLE IF NOT EXISTS tasker_migrations (
			version    integer     PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`,
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	var version int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM tasker_migrations`).Scan(&version); err != nil {
		return err
	}
	if version > len(ms) {
		return fmt.Errorf("schema %s is at version %d, newer than this program's %d", schema, version, len(ms))
	}
	for v := version; v < len(ms); v++ {
		// Without arguments Exec uses the simple protocol, which runs a
		// file of several statements.
		if _, err := tx.Exec(ctx, ms[v]); err != nil {
			return fmt.Errorf("version %d: %w", v+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tasker_migrations (version) VALUES ($1)`, v+1); err != nil {
			return fmt.Errorf("version %d: %w", v+1, err)
		}
	}
	return nil
}
