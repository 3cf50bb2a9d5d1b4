package tasker

import (
	"runtime"
	"testing"
)

// TestQueueStaysSmallWhenNeverEmpty: a ready queue that always holds work
// (pushes keep pace with takes, as under sustained load) keeps its backing
// array to a multiple of the work it holds, instead of growing with every
// item ever pushed.
func TestQueueStaysSmallWhenNeverEmpty(t *testing.T) {
	s := &scheduler{}
	s.cond.L = &s.mu
	const live = 10
	for range live {
		s.push(work{step: 1})
	}
	for i := range 100_000 {
		s.push(work{step: i})
		if _, ok := s.next(); !ok {
			t.Fatal("next reported stopping")
		}
		if q := s.queued(); q != live {
			t.Fatalf("after %d rounds %d items queued, want %d", i, q, live)
		}
	}
	if c := cap(s.queue); c > 4*minCompact {
		t.Errorf("the queue's backing array holds %d items after 100,000 rounds of %d live, want at most %d",
			c, live, 4*minCompact)
	}
}

// TestQueueKeepsOrderAcrossCompaction: moving the live items down keeps
// them first in, first out.
func TestQueueKeepsOrderAcrossCompaction(t *testing.T) {
	s := &scheduler{}
	s.cond.L = &s.mu
	next, want := 0, 0
	for range 5000 {
		for range 3 {
			s.push(work{step: next})
			next++
		}
		for range 2 {
			w, _ := s.next()
			if w.step != want {
				t.Fatalf("took step %d, want %d", w.step, want)
			}
			want++
		}
	}
}

// TestSpareCountsIdleWorkersLessQueuedWork: the steps a turn may claim
// ahead are the idle workers not already due to take queued work.
func TestSpareCountsIdleWorkersLessQueuedWork(t *testing.T) {
	s := &scheduler{}
	s.cond.L = &s.mu
	for _, tc := range []struct{ idle, queued, want int }{{0, 0, 0}, {5, 0, 5}, {5, 2, 3}, {1, 3, 0}} {
		s.queue, s.head = s.queue[:0], 0
		for range tc.queued {
			s.push(work{step: 1})
		}
		s.idle.Store(int32(tc.idle))
		if got := s.spare(); got != tc.want {
			t.Errorf("%d idle, %d queued: spare %d, want %d", tc.idle, tc.queued, got, tc.want)
		}
	}
}

// TestIdleCountsWaitingWorkers: a worker waiting in next counts as idle
// until work arrives for it.
func TestIdleCountsWaitingWorkers(t *testing.T) {
	s := &scheduler{}
	s.cond.L = &s.mu
	got := make(chan work)
	go func() {
		w, _ := s.next()
		got <- w
	}()
	for s.idle.Load() != 1 { // the worker reaches its wait
		runtime.Gosched()
	}
	s.push(work{step: 7})
	if w := <-got; w.step != 7 {
		t.Fatalf("the worker took step %d, want 7", w.step)
	}
	if n := s.idle.Load(); n != 0 {
		t.Errorf("%d idle once the worker took its work, want 0", n)
	}
}
