//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package sqlite

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// lockFile creates the lock file path if needed and takes an exclusive
// flock(2) lock on it without waiting; another holder is an error wrapping
// store.ErrLocked. A flock lock belongs to an open file description, so two
// Stores in one process conflict as two processes do. Closing the returned
// file releases the lock, and so does the process ending, however it ends;
// the descriptor is close-on-exec, so child processes do not inherit it.
func lockFile(path string) (io.Closer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err // an *fs.PathError, naming path
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	switch {
	case errors.Is(err, syscall.EWOULDBLOCK):
		err = errHeld(path)
	case err != nil:
		err = fmt.Errorf("lock %s: %w", path, err)
	default:
		return f, nil
	}
	return nil, errors.Join(err, f.Close())
}
