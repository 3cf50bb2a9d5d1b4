package taskerotel

import (
	"fmt"
	"time"
)

// OpenTaskSpans returns how many task spans t holds open, and an error
// when its table is inconsistent: its list, oldest first, and its map
// disagree.
func (t *Telemetry) OpenTaskSpans() (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	var prev *openSpan
	for s := t.tasks.head; s != nil; prev, s = s, s.next {
		if s.prev != prev || t.tasks.byID[s.id] != s || prev != nil && (prev.seq >= s.seq || s.opened.Before(prev.opened)) {
			return 0, fmt.Errorf("span %d of the list (task %s) is out of place", n, s.id)
		}
		n++
	}
	if prev != t.tasks.tail || n != len(t.tasks.byID) {
		return 0, fmt.Errorf("the list holds %d spans, the map %d", n, len(t.tasks.byID))
	}
	return n, nil
}

// ReconcileOn makes t's reconciler, once Observe starts it, run a pass at
// each tick of ticks instead of every Options.ReconcileInterval. Call it
// before Observe.
func (t *Telemetry) ReconcileOn(ticks <-chan time.Time) { t.ticks = ticks }
