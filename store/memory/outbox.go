package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/internal/record"
)

var _ store.Outboxer = (*Store)(nil)

// outbox is the pending outbox, in insertion order. Apply holds only its
// own lock, after the tasks' locks, and only for a batch that adds entries.
type outbox struct {
	mu   sync.Mutex
	list []store.OutboxEntry
	ids  map[string]bool // the pending entries' IDs
}

// hasOutbox reports whether a change of cs adds outbox entries.
func hasOutbox(cs []store.Change) bool {
	return slices.ContainsFunc(cs, func(c store.Change) bool { return len(c.Outbox) > 0 })
}

// check returns a conflict if an entry of cs has an ID already pending or
// given twice. Called with mu held.
func (o *outbox) check(cs []store.Change) error {
	seen := make(map[string]bool)
	for i, c := range cs {
		for _, e := range c.Outbox {
			if o.ids[e.ID] || seen[e.ID] {
				return record.Conflict(i, c, "outbox ID %q is taken", e.ID)
			}
			seen[e.ID] = true
		}
	}
	return nil
}

// add appends the entries of c, prepared. Called with mu held.
func (o *outbox) add(c store.Change) {
	for _, e := range c.Outbox {
		o.list = append(o.list, e)
		o.ids[e.ID] = true
	}
}

// PendingOutbox implements store.Outboxer.
func (s *Store) PendingOutbox(ctx context.Context, after string, limit int) ([]store.OutboxEntry, error) {
	var out []store.OutboxEntry
	err := s.readLocked(ctx, func() error {
		s.out.mu.Lock()
		defer s.out.mu.Unlock()
		list := s.out.list
		if after != "" {
			i := slices.IndexFunc(list, func(e store.OutboxEntry) bool { return e.ID == after })
			list = list[i+1:] // i is -1 when unknown: nothing, below
			if i < 0 {
				list = nil
			}
		}
		if limit > 0 && len(list) > limit {
			list = list[:limit]
		}
		out = record.CloneOutbox(list)
		return nil
	})
	return out, err
}

// AckOutbox implements store.Outboxer.
func (s *Store) AckOutbox(ctx context.Context, ids []string) error {
	return s.readLocked(ctx, func() error {
		s.out.mu.Lock()
		defer s.out.mu.Unlock()
		acked := make(map[string]bool, len(ids))
		for _, id := range ids {
			if s.out.ids[id] {
				acked[id] = true
				delete(s.out.ids, id)
			}
		}
		if len(acked) > 0 {
			s.out.list = slices.DeleteFunc(s.out.list, func(e store.OutboxEntry) bool { return acked[e.ID] })
		}
		return nil
	})
}
