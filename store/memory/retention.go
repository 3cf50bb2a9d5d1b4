package memory

import (
	"container/heap"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/gotasker/tasker/store"
)

var _ store.Purger = (*Store)(nil)

// purgeChunk bounds how many tasks PurgeTasks deletes under one hold of the
// store's lock, which creations wait for meanwhile (Apply and reads do not).
const purgeChunk = 1000

// PurgeTasks implements store.Purger. It deletes in chunks of at most
// purgeChunk tasks, each under the store's lock; a chunk costs time in
// proportion to the number of tasks stored.
func (s *Store) PurgeTasks(ctx context.Context, f store.PurgeFilter) (int, error) {
	if len(f.States) == 0 {
		return 0, errors.New("memory: purge tasks: no States given")
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		want := purgeChunk
		if f.Limit > 0 {
			want = min(want, f.Limit-total)
		}
		n, err := s.purgeChunk(f, want)
		total += n
		if err != nil || n < want || total == f.Limit {
			return total, err
		}
	}
}

// purgeChunk deletes at most limit of the tasks f selects, oldest first,
// and returns how many it deleted.
func (s *Store) purgeChunk(f store.PurgeFilter, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	// Holding s.mu, no task is created or purged meanwhile; but Apply goes
	// on, so each entry is read under its lock, and a victim is checked
	// again under it before it goes.
	victims := s.selectPurged(f, limit)
	if len(victims) == 0 {
		return 0, nil
	}
	victims = lockAll(victims)
	withOutbox := s.out.tasks() // after the entries' locks, as Apply takes them
	gone := make(map[string]bool, len(victims))
	for _, e := range victims {
		t := e.task
		if purgeable(f, t, withOutbox) {
			e.gone, gone[t.ID] = true, true
		}
		e.mu.Unlock()
		if !gone[t.ID] {
			continue
		}
		s.tasks.Delete(t.ID)
		key := idemKey{t.Namespace, t.Name, t.IdempotencyKey}
		if t.IdempotencyKey != "" && s.keys[key] == t.ID {
			delete(s.keys, key)
		}
	}
	if len(gone) == 0 {
		return 0, nil
	}
	// A new slice: snapshots taken before go on reading the old one.
	kept := make([]*entry, 0, len(s.order)-len(gone))
	for _, e := range s.order {
		if !gone[e.task.ID] {
			kept = append(kept, e)
		}
	}
	s.order = kept
	s.dead.mu.Lock()
	s.dead.forget(gone)
	s.dead.mu.Unlock()
	return len(gone), nil
}

// purgeable reports whether f selects task t, given the tasks with pending
// outbox entries, which are kept.
func purgeable(f store.PurgeFilter, t store.Task, withOutbox map[string]bool) bool {
	return slices.Contains(f.States, t.State) && !withOutbox[t.ID] &&
		(f.UpdatedBefore.IsZero() || !t.UpdatedAt.IsZero() && t.UpdatedAt.Before(f.UpdatedBefore))
}

// selectPurged returns at most limit entries that f selects, the least
// recently updated first. Called with s.mu held.
func (s *Store) selectPurged(f store.PurgeFilter, limit int) []*entry {
	withOutbox := s.out.tasks()
	oldest := oldestN{limit: limit}
	for i, e := range s.order[:s.keepBoundary(f)] {
		e.mu.Lock()
		t := e.task
		e.mu.Unlock()
		if purgeable(f, t, withOutbox) {
			oldest.offer(candidate{e, i, t.UpdatedAt})
		}
	}
	return oldest.sorted()
}

// candidate is an entry to purge, its index in the store's order and when
// its task was last updated.
type candidate struct {
	e       *entry
	pos     int
	updated time.Time
}

// before reports whether c goes before d: less recently updated, or as
// recently and created first.
func (c candidate) before(d candidate) bool {
	if k := c.updated.Compare(d.updated); k != 0 {
		return k < 0
	}
	return c.pos < d.pos
}

// oldestN keeps the limit candidates offered that go first, in a max-heap
// (the one going last on top), so that a store of n tasks costs
// O(n log limit), not a sort of them all.
type oldestN struct {
	limit int
	heap  []candidate
}

func (o *oldestN) offer(c candidate) {
	switch {
	case len(o.heap) < o.limit:
		o.heap = append(o.heap, c)
		heap.Fix(o, len(o.heap)-1)
	case c.before(o.heap[0]):
		o.heap[0] = c
		heap.Fix(o, 0)
	}
}

// sorted returns the entries kept, first first.
func (o *oldestN) sorted() []*entry {
	slices.SortFunc(o.heap, func(a, b candidate) int {
		if a.before(b) {
			return -1
		}
		return 1
	})
	out := make([]*entry, len(o.heap))
	for i, c := range o.heap {
		out[i] = c.e
	}
	return out
}

// The heap.Interface of oldestN: Push and Pop are never called, as offer
// keeps the heap's size itself.
func (o *oldestN) Len() int           { return len(o.heap) }
func (o *oldestN) Less(i, j int) bool { return o.heap[j].before(o.heap[i]) }
func (o *oldestN) Swap(i, j int)      { o.heap[i], o.heap[j] = o.heap[j], o.heap[i] }
func (o *oldestN) Push(any)           { panic("unused") }
func (o *oldestN) Pop() any           { panic("unused") }

// keepBoundary returns the index into s.order of the oldest of the
// f.KeepNewest newest tasks in f.States, which purging keeps with every
// later one: len(s.order) when it keeps none, 0 when fewer tasks are in
// f.States.
func (s *Store) keepBoundary(f store.PurgeFilter) int {
	if f.KeepNewest <= 0 {
		return len(s.order)
	}
	kept := 0
	for i, e := range slices.Backward(s.order) {
		e.mu.Lock()
		state := e.task.State
		e.mu.Unlock()
		if slices.Contains(f.States, state) {
			if kept++; kept == f.KeepNewest {
				return i
			}
		}
	}
	return 0
}

// tasks returns the set of the tasks with pending entries; nil when none.
func (o *outbox) tasks() map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.list) == 0 {
		return nil
	}
	set := make(map[string]bool)
	for _, e := range o.list {
		set[e.TaskID] = true
	}
	return set
}

// forget removes the entries of the tasks in gone and reindexes the rest.
// Called with d.mu held.
func (d *deadLetters) forget(gone map[string]bool) {
	has := false
	for id := range gone {
		if len(d.byTask[id]) > 0 {
			has = true
			break
		}
	}
	if !has {
		return
	}
	d.list = slices.DeleteFunc(d.list, func(e store.DeadLetter) bool {
		if gone[e.TaskID] {
			delete(d.ids, e.ID)
			return true
		}
		return false
	})
	clear(d.byTask)
	for i, e := range d.list {
		d.byTask[e.TaskID] = append(d.byTask[e.TaskID], i)
	}
}

var _ store.Volatile = (*Store)(nil)

// Volatile implements store.Volatile: a Store keeps everything in the
// process's memory.
func (s *Store) Volatile() bool { return true }
