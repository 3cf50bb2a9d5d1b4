package tasker_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/sqlite"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// smallDisk mounts a tmpfs of size bytes on a temporary directory, or skips
// the test when that is not allowed (it needs root).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("skipping: mounting a %s tmpfs needs root: %v", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes zeros to path until the disk is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}

// TestDiskFullThenFreed: while the disk is full, the outcomes of running
// steps cannot be written; they are retried, and once space is freed every
// accepted task completes, without a restart and with no attempt counted as
// failed or interrupted.
func TestDiskFullThenFreed(t *testing.T) {
	dir := smallDisk(t, "4m")
	st, err := sqlite.Open(filepath.Join(dir, "tasker.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gate := make(chan struct{})
	big := strings.Repeat("x", 16<<10) // each result needs new pages
	slowFirst := tasker.HandlerFunc(func(ctx context.Context, _ *tasker.StepContext) (any, error) {
		<-gate
		return big, nil
	})
	retried := make(chan struct{}, 1)
	discard := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.WarnLevel)
	logger := zap.New(discard, zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "tasker: store write failed; retrying" {
			select {
			case retried <- struct{}{}:
			default:
			}
		}
		return nil
	}))
	eng, err := tasker.New(st, &tasker.Config{Workers: 8, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	registerAll(t, eng, map[string]tasker.StepHandler{"test.first": slowFirst, "test.second": echoStep("second")})
	if err := eng.AddTemplates(mustParse(t, twoSteps)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		eng.Stop(stopCtx)
	}()
	ids := submitN(t, eng, 20, tasker.SubmitRequest{Namespace: "test", Name: "two_steps"})
	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	close(gate)
	select {
	case <-retried:
	case <-time.After(10 * time.Second):
		t.Fatal("no store write failed on a full disk within 10s")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitAllClean(t, eng, ids)
}
