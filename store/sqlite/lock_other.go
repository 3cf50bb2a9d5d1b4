//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd || windows)

package sqlite

import "io"

// lockFile takes no lock on systems without flock(2) or Windows' sharing
// modes: there, keeping to one writer per file is up to the caller.
func lockFile(string) (io.Closer, error) { return noLock{}, nil }

// noLock is the lock lockFile does not take.
type noLock struct{}

func (noLock) Close() error { return nil }
