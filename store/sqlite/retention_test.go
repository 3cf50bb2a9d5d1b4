package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gotasker/tasker/store"
)

// pragma reads an integer PRAGMA of the database at path through a
// connection of its own.
func pragma(t *testing.T, path, name string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path, Options{Synchronous: "NORMAL"}, true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int64
	if err := db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestOpenTurnsIncrementalAutoVacuumOn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := pragma(t, path, "auto_vacuum"); got != autoVacuumIncremental {
		t.Errorf("a new file's auto_vacuum = %d, want %d (incremental)", got, autoVacuumIncremental)
	}
}

func TestOpenVacuumsAnOlderFileOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	createVersion1(t, path) // as that release made it: no auto-vacuum
	if got := pragma(t, path, "auto_vacuum"); got != 0 {
		t.Fatalf("the version 1 file's auto_vacuum = %d, want 0", got)
	}
	for i := range 2 {
		s, err := Open(path, nil)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		task, err := s.Task(ctx, "t1")
		if err != nil || task.IdempotencyKey != "order-42" {
			t.Errorf("Open #%d: task t1 = %+v, %v; want it kept", i+1, task, err)
		}
		s.Close()
		if got := pragma(t, path, "auto_vacuum"); got != autoVacuumIncremental {
			t.Errorf("after Open #%d auto_vacuum = %d, want %d", i+1, got, autoVacuumIncremental)
		}
	}
}

// fillTasks stores n complete tasks with a 32 KiB input each.
func fillTasks(t *testing.T, s store.Store, n int) {
	t.Helper()
	input, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 32<<10)})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("t%05d", i)
			task := store.Task{ID: id, Namespace: "ns", Name: "big", Version: "1", State: "pending", Context: input}
			if _, _, err := s.CreateTask(context.Background(), task, []store.Step{{Name: "a", State: "pending"}}); err != nil {
				errs[i] = err
				return
			}
			errs[i] = s.Apply(context.Background(), []store.Change{{TaskID: id, From: "pending", To: "complete"}})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func TestPurgeGivesPagesBack(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "big.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fillTasks(t, s, 300) // about 10 MiB of inputs, in overflow pages
	before := pragma(t, path, "page_count")
	if before < vacuumSlackMin+200 {
		t.Fatalf("page_count = %d after filling, want above the slack of %d", before, vacuumSlackMin)
	}
	n, err := s.PurgeTasks(ctx, store.PurgeFilter{States: []string{"complete"}, KeepNewest: 20})
	if err != nil || n != 280 {
		t.Fatalf("PurgeTasks = %d, %v; want 280, nil", n, err)
	}
	// PurgeTasks kept the slack of free pages for the tasks to come.
	pages, free := pragma(t, path, "page_count"), pragma(t, path, "freelist_count")
	if free > vacuumSlackMin || pages > before-200 {
		t.Errorf("after the purge: %d pages (from %d), %d free; want at most the slack of %d free",
			pages, before, free, vacuumSlackMin)
	}
	// Without a slack, only an eighth of the file stays free: the 20 tasks
	// left need about 200 pages.
	if err := s.vacuum(ctx, 0); err != nil {
		t.Fatal(err)
	}
	pages, free = pragma(t, path, "page_count"), pragma(t, path, "freelist_count")
	if free > pages/8 || pages > 400 {
		t.Errorf("after vacuum without slack: %d pages, %d free; want at most 400 pages, an eighth free", pages, free)
	}
	// The file itself shrinks once the WAL is checkpointed into it.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if size := fi.Size(); size > 400*4096 {
		t.Errorf("file size after Close = %d bytes, want at most 400 pages of 4 KiB", size)
	}
}
