package tasker

import "testing"

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
