package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// migrationFiles holds the schema, one file per version: NNNN_what.sql,
// numbered from 0001 without gaps. A released file is never edited; a
// schema change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the SQL of every migration, version i+1 at index i.
func migrations() ([]string, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations") // sorted by name
	if err != nil {
		return nil, err
	}
	out := make([]string, len(entries))
	for i, e := range entries {
		if want := fmt.Sprintf("%04d_", i+1); !strings.HasPrefix(e.Name(), want) {
			return nil, fmt.Errorf("migration %s: want a name starting %s", e.Name(), want)
		}
		b, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		out[i] = string(b)
	}
	return out, nil
}

// migrate brings the schema of the database on conn to the version
// len(ms), in one transaction: all the missing migrations apply or none.
// PRAGMA user_version holds the number of migrations applied; a database
// at a later version than len(ms) is an error.
func migrate(ctx context.Context, conn *sql.Conn, ms []string) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_, rbErr := conn.ExecContext(ctx, "ROLLBACK")
			err = errors.Join(err, rbErr)
		}
	}()
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this program's %d", version, len(ms))
	}
	for v := version; v < len(ms); v++ {
		if _, err := conn.ExecContext(ctx, ms[v]); err != nil {
			return fmt.Errorf("version %d: %w", v+1, err)
		}
	}
	// PRAGMA takes no parameters; len(ms) is an integer we produced.
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(ms))); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}
