package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gotasker/tasker/store"
)

// walFrameBytes is the size of a WAL frame of the default 4096-byte page:
// the page and its 24-byte header.
const walFrameBytes = 4096 + 24

// TestCheckpointsKeepTheWALShort writes many times more frames than the
// writer lets the WAL hold, from one caller and from many, and checks that
// the checkpoints copied them into the database file and that the WAL
// started again from its beginning: its file, which SQLite overwrites in
// place and never shrinks, stays within the writer's bound. The thresholds
// are a tenth of the real ones, for speed.
func TestCheckpointsKeepTheWALShort(t *testing.T) {
	for _, writers := range []int{1, 8} {
		t.Run(fmt.Sprint("writers=", writers), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tasker.db")
			s, err := Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			f := &s.w.wal // set before the first write: the writer reads it only after one
			f.every, f.restart, f.catchUp = checkpointFrames/10, restartFrames/10, catchUpFrames/10
			bound := f.restart + f.every
			writeTasks(t, s, "", writers, 5*bound)
			info, err := os.Stat(path + "-wal")
			if err != nil {
				t.Fatal(err)
			}
			// One transaction of writeTasks holds at most 8 tasks of some
			// thirty frames; a WAL that never started again would hold all.
			if limit := int64(bound+8*40) * walFrameBytes; info.Size() > limit {
				t.Errorf("WAL of %d bytes (%d frames), want at most %d: it never started again",
					info.Size(), info.Size()/walFrameBytes, limit)
			}
			t.Logf("WAL of %d frames at most", info.Size()/walFrameBytes)
			db, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if db.Size() < int64(2*bound)*4096 {
				t.Errorf("database file of %d bytes: the WAL was not copied into it", db.Size())
			}
		})
	}
}

// writeTasks creates tasks, their IDs starting with prefix, from writers goroutines, about frames WAL
// frames' worth: each task holds twenty steps of a 2 KiB result, which
// with the indexes' pages and the pages splits leave half full come to
// some thirty frames.
func writeTasks(t *testing.T, s *Store, prefix string, writers, frames int) {
	t.Helper()
	result := json.RawMessage(`"` + strings.Repeat("x", 2048) + `"`)
	steps := make([]store.Step, 20)
	for i := range steps {
		steps[i] = store.Step{Name: fmt.Sprint("s", i), Position: i, State: "complete", Result: result}
	}
	per := frames / 30 / writers // tasks per writer, at some thirty frames a task
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				id := fmt.Sprintf("%sw%d-%06d", prefix, w, i)
				if _, _, err := s.CreateTask(context.Background(), store.Task{ID: id}, steps); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestWALShrinksAfterAReaderHeldIt: a reader holding a snapshot keeps the
// checkpoints from passing it, so the WAL grows past the writer's bound;
// once the reader is gone and the WAL starts again, its file is cut back
// to walSizeLimit instead of keeping the size it grew to.
func TestWALShrinksAfterAReaderHeldIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasker.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	writeTasks(t, s, "a", 1, 100) // something to read
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM tasks").Scan(&n); err != nil {
		t.Fatal(err)
	}
	grown := 2 * walSizeLimit / walFrameBytes
	writeTasks(t, s, "b", 4, grown)
	held, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if held.Size() <= walSizeLimit {
		t.Fatalf("WAL of %d bytes while the reader held it, want more than %d: the test grew it too little",
			held.Size(), walSizeLimit)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// Enough for the writer to copy the WAL in full and start it again.
	writeTasks(t, s, "c", 4, 2*(restartFrames+checkpointFrames))
	after, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("WAL of %d MiB while held, %d MiB after", held.Size()>>20, after.Size()>>20)
	if after.Size() > walSizeLimit {
		t.Errorf("WAL of %d bytes once the reader was gone, want at most %d", after.Size(), walSizeLimit)
	}
}
