package store

import (
	"context"
	"time"
)

// Purger is an optional ability of a Store: deleting tasks that are done
// with, so that a long-running process, or its database, stays small. The
// engine's retention (tasker.Config.Retention) calls it, on a timer, for
// tasks in its finished states only; a Store that is not a Purger keeps
// every task.
type Purger interface {
	// PurgeTasks deletes the tasks f selects and returns how many it
	// deleted. Each task goes whole, atomically: with it go its steps, its
	// audit trail, its dead-letter entries and its idempotency key (a new
	// task may take the key, and the ID, again). A task is selected when
	//
	//   - its state is one of f.States, as stored at the moment of its
	//     deletion;
	//   - its UpdatedAt is before f.UpdatedBefore, unless that is zero (a
	//     task whose UpdatedAt is zero, not set, has no age: an age limit
	//     never selects it);
	//   - it is not one of the f.KeepNewest newest tasks (in creation order)
	//     whose state is one of f.States, whatever their age and outbox;
	//   - it has no pending outbox entry (see Outboxer): a message not yet
	//     delivered keeps its task, which a later call purges once the
	//     entry is acknowledged.
	//
	// The selected tasks are deleted oldest first, the least recently
	// updated (by UpdatedAt, then in creation order) before the others, at
	// most f.Limit of them when it is positive: for a finished task,
	// UpdatedAt is when it finished. A backend deletes in one or a few
	// short transactions, not one long one, so that other writes go on
	// between them: a call that deletes many tasks is not atomic as a
	// whole, and a failed call may have deleted some (the count says how
	// many). An empty f.States is an error, and so is a done ctx, each
	// deleting nothing.
	PurgeTasks(ctx context.Context, f PurgeFilter) (int, error)
}

// PurgeFilter selects the tasks PurgeTasks deletes: see Purger.
type PurgeFilter struct {
	// States is required: only tasks in one of these states are deleted,
	// and counted by KeepNewest.
	States []string
	// UpdatedBefore, when not zero, keeps every task whose UpdatedAt is at
	// or after it; zero means no age limit.
	UpdatedBefore time.Time
	// KeepNewest keeps the newest KeepNewest tasks in States, in creation
	// order, whatever their age; 0 (or less) keeps none.
	KeepNewest int
	// Limit bounds how many tasks one call deletes, the least recently
	// updated first; 0 (or less) means no limit.
	Limit int
}

// Volatile is an optional ability of a Store: saying that it keeps its
// records in the process's memory (store/memory), so that every task it
// keeps costs the process RAM, and none outlives it. The engine's retention
// keeps fewer finished tasks in a volatile store by default, so that a
// long-running process stays small.
type Volatile interface {
	// Volatile reports whether the store's records live in the process's
	// memory.
	Volatile() bool
}
