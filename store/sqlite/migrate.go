package sqlite

import (
	"github.com/gotasker/tasker/store/internal/migfiles"

	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
)

// migrationFiles holds the schema, one file per version: NNNN_what.sql,
// numbered from 0001 without gaps. A released file is never edited; a
// schema change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the SQL of every migration, version i+1 at index i.
func migrations() ([]string, error) { return migfiles.Read(migrationFiles) }

// migrate brings the schema of the database on conn to the version
// len(ms), in one transaction: all the missing migrations apply or none.
// PRAGMA user_version holds the number of migrations applied; a database
// at a later version than len(ms) is an error.
//
// Migrations run with foreign keys off, so that one may rebuild a table
// (create the new one, copy, drop the old, rename) without the drop
// cascading to the rows that reference it; the foreign keys are checked
// before the commit and turned back on after it.
func migrate(ctx context.Context, conn *sql.Conn, ms []string) error {
	return withoutForeignKeys(ctx, conn, func() error { return migrateTx(ctx, conn, ms) })
}

// withoutForeignKeys runs fn with foreign key enforcement off on conn and
// restores the setting after it. SQLite ignores the change inside a
// transaction, so fn must begin and end its own.
func withoutForeignKeys(ctx context.Context, conn *sql.Conn, fn func() error) (err error) {
	var on int
	if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&on); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return err
	}
	defer func() {
		// on is 0 or 1, read above.
		_, restoreErr := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA foreign_keys = %d", on))
		err = errors.Join(err, restoreErr)
	}()
	return fn()
}

// migrateTx is migrate's transaction.
func migrateTx(ctx context.Context, conn *sql.Conn, ms []string) (err error) {
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
	if err := checkForeignKeys(ctx, conn); err != nil {
		return err
	}
	// PRAGMA takes no parameters; len(ms) is an integer we produced.
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(ms))); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// checkForeignKeys returns an error naming the first row that references
// a missing one.
func checkForeignKeys(ctx context.Context, conn *sql.Conn) error {
	rows, err := conn.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		return rows.Err()
	}
	var table, parent string
	var rowid sql.NullInt64
	var fk int
	if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
		return err
	}
	return fmt.Errorf("foreign key check: a row of table %s (rowid %v) references a missing row of %s",
		table, rowid.Int64, parent)
}
