package sqlite_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/sqlite"
)

func TestOpenReadOnlyReadsWhileTheWriterHoldsTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tasks.db")
	w, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, _, err := w.CreateTask(ctx, store.Task{ID: "t1", State: "pending"}, []store.Step{{Name: "a", State: "pending"}}); err != nil {
		t.Fatal(err)
	}
	r, err := sqlite.OpenReadOnly(path) // no ErrLocked: a reader takes no lock
	if err != nil {
		t.Fatalf("OpenReadOnly while a writer holds the file: %v", err)
	}
	defer r.Close()
	if _, _, err := w.CreateTask(ctx, store.Task{ID: "t2", State: "pending"}, nil); err != nil {
		t.Fatal(err)
	}
	tasks, err := r.ListTasks(ctx, store.Filter{})
	if err != nil || len(tasks) != 2 {
		t.Fatalf("ListTasks = %d tasks, %v; want both, the later one committed after the open", len(tasks), err)
	}
	if steps, err := r.Steps(ctx, "t1"); err != nil || len(steps) != 1 {
		t.Errorf("Steps = %v, %v; want one", steps, err)
	}
	_, _, err = r.CreateTask(ctx, store.Task{ID: "t3", State: "pending"}, nil)
	if !errors.Is(err, sqlite.ErrReadOnly) {
		t.Errorf("CreateTask on a read-only store: %v, want ErrReadOnly", err)
	}
	err = r.Apply(ctx, []store.Change{{TaskID: "t1", From: "pending", To: "running"}})
	if !errors.Is(err, sqlite.ErrReadOnly) {
		t.Errorf("Apply on a read-only store: %v, want ErrReadOnly", err)
	}
	if got := getIDs(t, w); !slices.Equal(got, []string{"t1", "t2"}) {
		t.Errorf("after refused writes the file holds %v", got)
	}
}

func TestOpenReadOnlyRefusesAMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.db")
	if _, err := sqlite.OpenReadOnly(path); err == nil || !strings.Contains(err.Error(), "none.db") {
		t.Fatalf("OpenReadOnly(missing) = %v, want an error naming the file", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after OpenReadOnly(missing), Stat = %v: the file was created", err)
	}
}

func TestOpenReadOnlyAfterTheWriterClosed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tasks.db")
	w, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.CreateTask(ctx, store.Task{ID: "t1", State: "pending"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := sqlite.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := getIDs(t, r); !slices.Equal(got, []string{"t1"}) {
		t.Errorf("ListTasks = %v, want [t1]", got)
	}
	w2, err := sqlite.Open(path, nil) // the reader holds no lock
	if err != nil {
		t.Fatalf("Open beside a read-only store: %v", err)
	}
	w2.Close()
}

func getIDs(t *testing.T, s store.Store) []string {
	t.Helper()
	tasks, err := s.ListTasks(context.Background(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, task := range tasks {
		ids = append(ids, task.ID)
	}
	return ids
}
