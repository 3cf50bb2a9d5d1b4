package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gotasker/tasker/store"
)

// TestAwaitSiblings: the writer waits for more requests only with a delay,
// after a transaction of at least minSiblings requests, and while the
// batch holds fewer than it did.
func TestAwaitSiblings(t *testing.T) {
	for _, tt := range []struct {
		delay     time.Duration
		last, n   int
		wantAwait bool
	}{
		{0, 10, 1, false},                                   // no delay
		{time.Millisecond, 1, 1, false},                     // a lone writer
		{time.Millisecond, minSiblings - 1, 1, false},       // too few siblings
		{time.Millisecond, minSiblings, 1, true},            // siblings to come
		{time.Millisecond, minSiblings, minSiblings, false}, // they came
		{time.Millisecond, 10, 11, false},
	} {
		w := &writer{delay: tt.delay, last: tt.last}
		if got := w.awaitSiblings(tt.n); got != tt.wantAwait {
			t.Errorf("delay %s, last transaction of %d, batch of %d: await = %t, want %t",
				tt.delay, tt.last, tt.n, got, tt.wantAwait)
		}
	}
}

// TestCommitDelayGathersSiblings: a lone request, after a transaction of
// one, is committed without waiting for siblings; after a transaction of
// several requests, requests that come once the writer has taken the
// first of them share its transaction, the writer waiting for them.
// (Without the wait the later requests would never be sent, and synctest
// would report the deadlock.)
func TestCommitDelayGathersSiblings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = minSiblings + 1
		s, err := Open(filepath.Join(t.TempDir(), "tasker.db"), &Options{CommitDelay: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		waits := 0
		more := make(chan struct{})
		s.w.waited = func() {
			if waits++; waits == 1 {
				close(more)
			}
		}
		ctx := context.Background()
		steps := make([]store.Step, 2*n)
		for i := range steps {
			steps[i] = store.Step{Name: fmt.Sprint("s", i), Position: i, State: "pending"}
		}
		if _, _, err := s.CreateTask(ctx, store.Task{ID: "t1"}, steps); err != nil {
			t.Fatal(err)
		}
		checkNil(t, s.w.do(ctx, func(*writeStmts) error { return nil }))
		if waits != 0 {
			t.Errorf("lone requests waited for siblings %d times", waits)
		}
		claim := func(i int) error {
			return s.Apply(ctx, []store.Change{{TaskID: "t1", Step: fmt.Sprint("s", i), From: "pending",
				To: "in_progress", Attempt: 1}})
		}

		// A transaction of n requests, queued behind a held writer.
		var wg sync.WaitGroup
		release := blockWriter(s, &wg)
		for i := range n {
			wg.Go(func() { checkNil(t, claim(i)) })
		}
		synctest.Wait()
		close(release)
		wg.Wait()

		// A request, and n-1 more once the writer waits for them.
		commits := s.w.commits.Load()
		wg.Go(func() { checkNil(t, claim(n)) })
		for i := 1; i < n; i++ {
			wg.Go(func() { <-more; checkNil(t, claim(n+i)) })
		}
		wg.Wait()
		if c := s.w.commits.Load() - commits; c != 1 {
			t.Errorf("%d requests after a transaction of as many: %d transactions, want 1", n, c)
		}
	})
}

func checkNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Error(err)
	}
}

// TestCommitDelayMustNotBeNegative: Open rejects a negative delay.
func TestCommitDelayMustNotBeNegative(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "tasker.db"), &Options{CommitDelay: -time.Microsecond})
	if err == nil {
		s.Close()
		t.Fatal("Open with a negative CommitDelay succeeded")
	}
}
