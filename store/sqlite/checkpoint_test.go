package sqlite

import (
	"context"
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

// TestCheckpointsKeepTheWALShort writes many times more frames than
// checkpointFrames, from one caller and from many, and checks that the
// checkpoints copied them into the database file and that the WAL started
// again from its beginning: its file, which SQLite overwrites in place and
// never shrinks, stays within the writer's bound.
func TestCheckpointsKeepTheWALShort(t *testing.T) {
	for _, writers := range []int{1, 8} {
		t.Run(fmt.Sprint("writers=", writers), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tasker.db")
			s, err := Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			writeTasks(t, s, writers, 5*checkpointFrames)
			info, err := os.Stat(path + "-wal")
			if err != nil {
				t.Fatal(err)
			}
			// The writer's bound, twice checkpointFrames and one
			// transaction's frames, is below three times checkpointFrames
			// here; a WAL that never started again would hold all five.
			if limit := int64(3*checkpointFrames) * walFrameBytes; info.Size() > limit {
				t.Errorf("WAL of %d bytes (%d frames), want at most %d: it never started again",
					info.Size(), info.Size()/walFrameBytes, limit)
			}
			db, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if db.Size() < int64(checkpointFrames)*4096 {
				t.Errorf("database file of %d bytes: the WAL was not copied into it", db.Size())
			}
		})
	}
}

// writeTasks creates tasks from writers goroutines, about frames WAL
// frames' worth: each task holds twenty steps of a 2 KiB result, which
// with the indexes' pages and the pages splits leave half full come to
// some thirty frames.
func writeTasks(t *testing.T, s *Store, writers, frames int) {
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
				id := fmt.Sprintf("w%d-%06d", w, i)
				if _, _, err := s.CreateTask(context.Background(), store.Task{ID: id}, steps); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
