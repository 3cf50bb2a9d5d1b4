package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrReadOnly reports a write to a Store opened with OpenReadOnly.
var ErrReadOnly = errors.New("sqlite: store opened read-only")

// OpenReadOnly opens the existing SQLite database file at path for reading
// only, as a tool inspecting an engine's tasks does: it takes no lock (the
// engine holding the file goes on writing, and the reads see its commits),
// starts no writer and migrates nothing. CreateTask and Apply return an error
// wrapping ErrReadOnly. A file that does not exist, or whose schema is not
// this package's version (open it once with Open to migrate it), is an
// error.
func OpenReadOnly(path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open read-only: path %q: want a file path", path)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sqlite: open read-only: %w", err)
	}
	s := &Store{}
	if err := s.openReads(path); err != nil {
		s.release()
		return nil, fmt.Errorf("sqlite: open read-only %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) openReads(path string) error {
	o, err := (*Options)(nil).withDefaults()
	if err != nil {
		return err
	}
	if s.rdb, err = sql.Open("sqlite", dsn(path, o, true)); err != nil {
		return err
	}
	ctx := context.Background()
	ms, err := migrations()
	if err != nil {
		return err
	}
	var version int
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version != len(ms) {
		return fmt.Errorf("database schema version %d, not this program's %d: open it for writing once to migrate it",
			version, len(ms))
	}
	s.reads, err = prepareReads(ctx, s.rdb)
	return err
}

// writable returns an error wrapping ErrReadOnly for a Store opened with
// OpenReadOnly.
func (s *Store) writable() error {
	if s.w == nil {
		return ErrReadOnly
	}
	return nil
}
