package memory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/internal/record"
)

var (
	_ store.Leaser = (*Shared)(nil)
	_ store.Waker  = (*Shared)(nil)
)

// Shared is a memory Store that many engines of one process share: a
// store.Leaser and store.Waker, so that each engine runs the tasks it
// holds leases on and takes over those of an engine that stopped or was
// cut off, as engines on a PostgreSQL store do across processes. It is for
// tests and demonstrations of several engines; one engine runs faster on
// a plain Store, which leases nothing.
type Shared struct {
	*Store
}

// NewShared returns an empty Shared store.
func NewShared() *Shared { return &Shared{New()} }

// leaseState is a task's lease, guarded by its entry's lock; the holder is
// the entry's task.Owner, "" when the task is free.
type leaseState struct {
	token   int64     // 0 until the task is first leased; grows on every acquisition
	expires time.Time // by time.Now, with its monotonic reading
}

var errNoOwner = errors.New("an empty owner cannot hold a lease")

// free reports whether e may be acquired at now. Called with e.mu held.
func (e *entry) free(now time.Time) bool {
	return e.task.Owner == "" || !e.lease.expires.After(now)
}

// leaseOf returns e's lease. Called with e.mu held.
func (e *entry) leaseOf() store.Lease {
	return store.Lease{TaskID: e.task.ID, Owner: e.task.Owner, Token: e.lease.token, Expires: record.UTC(e.lease.expires)}
}

// CreateLeased implements store.Leaser: CreateTask, and when it creates the
// task, leased to owner with token 1 until ttl from now. It does not signal
// Wake.
func (s *Shared) CreateLeased(ctx context.Context, task store.Task, steps []store.Step, owner string,
	ttl time.Duration) (string, bool, store.Lease, error) {
	if owner == "" {
		return "", false, store.Lease{}, fmt.Errorf("memory: create leased task: %w", errNoOwner)
	}
	expires := time.Now().Add(ttl)
	id, created, err := s.create(ctx, task, steps, owner, expires)
	if err != nil || !created {
		return id, created, store.Lease{}, err
	}
	return id, true, store.Lease{TaskID: id, Owner: owner, Token: 1, Expires: record.UTC(expires)}, nil
}

// AcquireTasks implements store.Leaser. It looks at every task, oldest
// first, under each task's lock: one task is never handed to two callers.
func (s *Shared) AcquireTasks(ctx context.Context, owner string, states []string, limit int,
	ttl time.Duration) ([]store.Lease, error) {
	if owner == "" {
		return nil, fmt.Errorf("memory: acquire tasks: %w", errNoOwner)
	}
	var out []store.Lease
	err := s.readLocked(ctx, func() error {
		now := time.Now()
		for _, e := range s.snapshot() {
			if len(out) >= limit || len(states) == 0 {
				break
			}
			e.mu.Lock()
			if !e.gone && slices.Contains(states, e.task.State) && e.free(now) {
				e.task.Owner = owner
				e.lease = leaseState{token: e.lease.token + 1, expires: now.Add(ttl)}
				out = append(out, e.leaseOf())
			}
			e.mu.Unlock()
		}
		return nil
	})
	return out, err
}

// RenewLeases implements store.Leaser.
func (s *Shared) RenewLeases(ctx context.Context, owner string, states []string, ttl time.Duration) ([]store.Lease, error) {
	if owner == "" {
		return nil, fmt.Errorf("memory: renew leases: %w", errNoOwner)
	}
	var out []store.Lease
	err := s.readLocked(ctx, func() error {
		now := time.Now()
		for _, e := range s.snapshot() {
			e.mu.Lock()
			if !e.gone && e.task.Owner == owner && slices.Contains(states, e.task.State) {
				e.lease.expires = now.Add(ttl)
				out = append(out, e.leaseOf())
			}
			e.mu.Unlock()
		}
		return nil
	})
	return out, err
}

// ReleaseTasks implements store.Leaser. Wake signals when it released a
// task.
func (s *Shared) ReleaseTasks(ctx context.Context, leases []store.Lease) error {
	released := false
	err := s.readLocked(ctx, func() error {
		for _, l := range leases {
			e := s.entry(l.TaskID)
			if e == nil {
				continue
			}
			e.mu.Lock()
			if !e.gone && e.task.Owner != "" && e.lease.token == l.Token {
				e.task.Owner, e.lease.expires = "", time.Time{}
				released = true
			}
			e.mu.Unlock()
		}
		return nil
	})
	if released {
		s.signal()
	}
	return err
}

// Wake implements store.Waker: a signal follows every CreateTask that
// created a task and every ReleaseTasks that released one.
func (s *Shared) Wake() <-chan struct{} { return s.wake }

// signal tells Wake's receiver, without waiting for it.
func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
