package sqlite

import (
	"fmt"
	"path/filepath"

	"github.com/gotasker/tasker/store"
)

// lockSuffix names the lock file of a database: the database's path with
// this suffix. Close leaves the file in place: removing it could let a new
// Store lock a fresh file while an older one still holds the removed one.
const lockSuffix = ".lock"

// lockPath returns the lock file of the database at path. Like SQLite,
// which keeps a database's -wal and -shm files beside the file a symbolic
// link points to, it follows links, so that a database opened through a
// link and through its target has one lock.
func lockPath(path string) string {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return path + lockSuffix
}

// errHeld is the error for a lock file that another Store holds.
func errHeld(lock string) error {
	return fmt.Errorf("lock file %s is held by another Store, in this process or another "+
		"(one writer per SQLite file): %w", lock, store.ErrLocked)
}
