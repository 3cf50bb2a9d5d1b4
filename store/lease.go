package store

import (
	"context"
	"time"
)

// ErrLeaseLost reports that a change carried a fencing token (Change.Lease)
// that is no longer the task's: another engine has taken the task over, so
// the batch was not applied. It wraps ErrConflict, so code that gives a task
// up on a conflict gives it up on a lost lease too.
var ErrLeaseLost = leaseLostError{}

type leaseLostError struct{}

func (leaseLostError) Error() string        { return "store: lease lost" }
func (leaseLostError) Is(target error) bool { return target == ErrConflict }

// Lease is an engine's hold on a task in a store that many engines share.
// A task that is not finished is run by the engine holding its lease, and
// by no other.
type Lease struct {
	TaskID string
	Owner  string // the holding engine's Config.Owner
	// Token is the fencing token: it grows each time the task changes hands
	// (it is 1 for the first holder), so a change stamped with an older
	// token is refused even if the old holder still believes it holds it.
	Token   int64
	Expires time.Time // by the store's clock
}

// Leaser is an optional ability of a Store that many engines, in one process
// or many, share: every unfinished task is owned under a lease that its
// owner renews, and a task whose lease expired (its owner died or was cut
// off) is taken over by another engine. A Store that is not a Leaser belongs
// to one engine, which owns every task in it.
//
// Leases are kept by the store's clock (a database server's now()), so
// engines on machines whose clocks differ agree on when one expired.
type Leaser interface {
	// CreateLeased is CreateTask for a task that owner runs at once: when
	// it creates the task, the task is leased to owner, token 1, until ttl
	// from now, and the lease is returned. When the idempotency key found
	// an existing task it stores nothing and returns created false and a
	// zero Lease (the existing task's lease, if any, is unchanged).
	CreateLeased(ctx context.Context, task Task, steps []Step, owner string, ttl time.Duration) (id string, created bool, l Lease, err error)

	// AcquireTasks leases to owner, until ttl from now, at most limit tasks
	// whose state is one of states and that no engine holds: never leased,
	// released, or whose lease expired. Each acquisition increments the
	// task's token. It takes the tasks oldest first (in creation order),
	// skips tasks that a concurrent AcquireTasks is taking, and never hands
	// one task to two callers; it returns the leases it granted, in no
	// particular order, possibly none.
	AcquireTasks(ctx context.Context, owner string, states []string, limit int, ttl time.Duration) ([]Lease, error)

	// RenewLeases extends until ttl from now every lease that owner holds
	// on a task whose state is one of states (expired or not: a lease
	// nobody took over is still its holder's), and returns them. A task
	// that another engine acquired is no longer owner's, so it is not
	// returned: its former owner must stop running it. Leases on tasks in
	// other states (finished ones) are left to expire; they are never
	// acquired while their task is in none of the states acquirers ask for.
	RenewLeases(ctx context.Context, owner string, states []string, ttl time.Duration) ([]Lease, error)

	// ReleaseTasks gives up the given leases, so that any engine may
	// acquire those tasks at once. A lease whose token is no longer the
	// task's is ignored.
	ReleaseTasks(ctx context.Context, leases []Lease) error
}

// Waker is an optional ability of a Leaser: a signal that there may be
// tasks to acquire (one was created without being leased to its creator,
// or was released), so idle engines need not poll often. Signals may be
// coalesced and may be spurious; engines still poll, rarely, for leases that
// expired.
type Waker interface {
	// Wake returns a channel that receives a value when tasks may have
	// become free to acquire. The same channel is returned on every call;
	// it is never closed.
	Wake() <-chan struct{}
}
