package sqlite_test

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gotasker/tasker/store/sqlite"
)

// TestOpenOnReadOnlyFileSystem: a file that cannot be written is refused at
// Open with an error naming the path and why.
func TestOpenOnReadOnlyFileSystem(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_RDONLY, "size=1m"); err != nil {
		t.Skipf("skipping: mounting a read-only tmpfs needs root: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	path := filepath.Join(dir, "tasker.db")
	st, err := sqlite.Open(path, nil)
	if err == nil {
		st.Close()
		t.Fatal("Open on a read-only file system succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "read-only file system") {
		t.Errorf("Open = %q, want the path and the reason", msg)
	}
}
