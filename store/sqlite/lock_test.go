//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd || windows

package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/sqlite"
)

// wantLocked checks that opening path fails with store.ErrLocked and an
// error naming the file.
func wantLocked(t *testing.T, path string) {
	t.Helper()
	s, err := sqlite.Open(path, nil)
	if err == nil {
		s.Close()
		t.Fatalf("Open(%q) of a held file succeeded, want ErrLocked", path)
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Open(%q) of a held file = %v, want an error wrapping ErrLocked", path, err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("Open error %q does not name the file %q", err, path)
	}
}

func TestOpenOfAFileHeldInThisProcessFails(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tasker.db")
	first := open(t, path)
	defer first.Close()
	wantLocked(t, path)
	wantLocked(t, path) // a failed Open releases nothing of the holder's

	// The holder still writes and reads.
	id, created, err := first.CreateTask(ctx, store.Task{ID: "t1", State: "pending"}, nil)
	if err != nil || !created || id != "t1" {
		t.Fatalf("CreateTask on the holder after refused Opens = %q, %v, %v", id, created, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := open(t, path)
	defer second.Close()
	if task, err := second.Task(ctx, "t1"); err != nil || task.ID != "t1" {
		t.Errorf("Task(t1) after reopening = %+v, %v; want the holder's task", task, err)
	}
}

func TestOpenThroughASymlinkOfAHeldFileFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tasker.db")
	s := open(t, path)
	defer s.Close()
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(path, link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	wantLocked(t, link)
}

func TestOpenOfAFileHeldByAnotherProcessFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasker.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path, "GORACE=atexit_sleep_ms=0")
	stdin, err := cmd.StdinPipe() // closed by Wait, or by our exit: the child then exits
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var childErr strings.Builder
	cmd.Stderr = &childErr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != holdReady {
		t.Fatalf("child said %q, %v, want %q; stderr: %s", line, err, holdReady, childErr.String())
	}

	wantLocked(t, path)

	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	killed = true
	if err := cmd.Wait(); err == nil {
		t.Fatal("the killed child exited cleanly")
	}
	s := open(t, path) // the kernel released the dead child's lock
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
