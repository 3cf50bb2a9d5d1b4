// Package storetest is the conformance suite for store.Store backends: the
// executable form of the contract documented in package store. Every backend
// runs it from a test of a few lines:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
//	}
//
// Durable backends also run RunDurable, which closes a store and reopens it
// from the same path.
//
// Beyond what package store states, the suite pins down the choices a backend
// could otherwise make differently:
//
//   - Times round-trip exactly, to the nanosecond, and come back in UTC
//     without a monotonic reading; the zero time stays zero. Non-zero times
//     outside the years 1678–2262 (no int64 Unix-nanosecond form) are
//     rejected by CreateTask and Apply.
//   - A nil and an empty Tags, Context, Result or Checkpoint are the same;
//     JSON values come back byte for byte as given, never re-encoded.
//   - A step change whose Checkpoint is empty but not nil keeps the stored
//     checkpoint, as nil does; a step created by a change from "" gets the
//     change's Checkpoint. Nothing clears a checkpoint once set.
//   - CreateTask fills an empty Task.ID with a unique one, sets every step's
//     TaskID, rejects steps without a name or with a duplicate name, and
//     wraps store.ErrConflict when the ID is taken (by a task with a
//     different idempotency key, or none).
//   - Steps with equal Positions are listed by Name.
//   - A step change sets the step's UpdatedAt to the change's At; a task
//     change sets the task's UpdatedAt. A zero At is stamped with the time of
//     the Apply. A task change ignores FromAttempt and records Attempt 0.
//   - Transitions of an unknown task wraps store.ErrNotFound, like Steps.
//   - ListTasks orders by creation (insertion) order, not by CreatedAt.
//   - A task change's DeadLetter is stored with the change's TaskID, Status
//     store.DeadLetterPending, CreatedAt the change's (stamped) At, and no
//     resolution: the TaskID, Status, CreatedAt and resolution fields given
//     are not kept. A DeadLetter ID already taken, or given twice in one
//     batch, wraps store.ErrConflict and the batch is not applied.
//   - Within one change, ResolveDeadLetters resolves the entries pending
//     before it: the change's own DeadLetter stays pending. A change sees the
//     entries the earlier changes of its batch added.
//   - A step change with a DeadLetter or ResolveDeadLetters is rejected with
//     an error, and nothing of its batch is applied.
//   - DeadLetters orders by insertion, not by CreatedAt; a TaskID no task
//     has matches no entry (it is not store.ErrNotFound).
//   - A backend that is a store.Outboxer keeps a change's Outbox entries with
//     the change's TaskID and (stamped) At as CreatedAt, filling empty IDs;
//     PendingOutbox lists them in insertion order across tasks, an after
//     naming no pending entry matches nothing, and AckOutbox of IDs not
//     pending is a no-op. Backends that are not are skipped by those cases.
//   - A backend that is a store.Leaser (backends that are not are skipped by
//     those cases): CreateLeased stores the task as CreateTask does, leased
//     to its owner with token 1; CreateTask ignores a Task.Owner given.
//     Task, ListTasks and Snapshot show the holder as Task.Owner until the
//     task is released or taken over, even once the lease has expired; a
//     released task's Owner is "". A task is free when no one leased it,
//     it was released, or its lease's Expires is not after the store's
//     now; a held lease is not acquired by anyone, its holder included.
//     AcquireTasks with a limit of 0 or less, or with no states, leases
//     nothing. An empty owner is an error for CreateLeased, AcquireTasks
//     and RenewLeases. Lease.Expires is in UTC.
//   - A change with Lease not 0 is checked against the task's token before
//     anything else: a mismatch wraps store.ErrLeaseLost even when the
//     change's state is stale too, and nothing of the batch applies; a
//     conflict on a change whose token matches wraps store.ErrConflict but
//     not ErrLeaseLost. Lease 0 is not fenced, on a leased task too.
//   - ReleaseTasks leaves the token as it is: until the task is acquired
//     again, a change fenced with the released token still applies.
//     Releasing an unknown task, or with a stale token, is a no-op.
//   - Wake's signals may be coalesced and spurious, and a backend that
//     listens for them may miss the changes made before it listens (the
//     suite waits for a first signal before it expects one).
//   - A backend that is a store.Purger deletes a task whole (steps,
//     transitions, dead-letter entries, idempotency key; the key and the ID
//     are free again) and never one with a pending outbox entry; KeepNewest
//     counts the newest tasks in States, outbox or age aside; UpdatedBefore
//     is strict and never selects a zero UpdatedAt; Limit takes the least
//     recently updated first, ties in creation order. A purge racing a
//     change that moves a task out of its States either deletes the task
//     (the change then wraps store.ErrConflict, an unknown task) or lets the
//     change apply and keeps it. Backends that are not are skipped.
//   - A call whose context is already done returns the context's error and
//     writes nothing.
//   - Close is idempotent; a second Close returns nil. Calls racing Close
//     return, either succeeding or wrapping store.ErrClosed.
package storetest

import (
	"path/filepath"
	"testing"

	"github.com/gotasker/tasker/store"
)

// testCase is one contract, named by what it checks.
type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// Run runs the conformance suite: one subtest per contract, each named by
// the contract it checks. Subtests run in parallel, so newStore must be safe
// to call concurrently; each call must return a new, empty store. Run closes
// every store at the end of its subtest (Close must be idempotent, so
// newStore may also register a Close of its own).
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	for _, tc := range allCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			t.Cleanup(func() { closeStore(t, s) })
			tc.run(t, s)
		})
	}
}

// durableCase is one durability contract; reopen closes the store it was
// given and returns a new one opened on the same path.
type durableCase struct {
	name string
	run  func(t *testing.T, s store.Store, reopen func(store.Store) store.Store)
}

// RunDurable runs the durability suite, for backends whose data outlives a
// store: each subtest writes through a store opened by open, closes it,
// opens the same path again and checks that everything is there. open must
// return a working store for path, creating the data there when path does
// not exist yet; the suite closes every store it opens. Subtests run in
// parallel, each with its own path.
func RunDurable(t *testing.T, open func(t *testing.T, path string) store.Store) {
	t.Helper()
	for _, tc := range durableCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "store")
			s := open(t, path)
			t.Cleanup(func() { closeStore(t, s) })
			reopen := func(old store.Store) store.Store {
				t.Helper()
				if err := old.Close(); err != nil {
					t.Fatalf("Close before reopening: %v", err)
				}
				s = open(t, path)
				return s
			}
			tc.run(t, s, reopen)
		})
	}
}

func allCases() []testCase {
	var all []testCase
	for _, group := range [][]testCase{createCases, applyCases, addStepCases, listCases, queryCases, snapshotCases, concurrencyCases,
		lifecycleCases, deadLetterCases, checkpointCases, outboxCases, leaseCases,
		retentionCases} {
		all = append(all, group...)
	}
	return all
}

func closeStore(t *testing.T, s store.Store) {
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
