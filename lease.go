package tasker

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotasker/tasker/internal/uuid"
	"github.com/gotasker/tasker/store"
	"go.uber.org/zap"
)

// DefaultLeaseTTL is how long an engine's hold on a task lasts, on a store
// that many engines share, when Config.LeaseTTL is zero: a killed engine's
// tasks are taken over by another within about this long and a poll.
const DefaultLeaseTTL = 5 * time.Second

// shared is what an engine does on a store that many engines share (a
// store.Leaser): it runs only the tasks it holds leases on, renews them,
// takes over tasks no engine holds (new ones others had no room for, and
// those of engines that died), gives its tasks back when it stops, and
// stamps every write of a task it holds with the lease's fencing token, so
// that once another engine took a task over, nothing this one still does
// is recorded. The engine of any other store owns every task in it, and
// its shared is nil.
type shared struct {
	e     *Engine
	st    store.Leaser
	wake  <-chan struct{} // the store's wake-ups; nil when it sends none
	owner string
	ttl   time.Duration
	poll  time.Duration // how often to look for free tasks without a wake-up
	kick  chan struct{} // an acquisition round, now

	// backlog says that free tasks may be waiting: this engine stored one
	// free, or its last acquisition took all it had room for.
	backlog atomic.Bool

	mu    sync.Mutex
	held  map[string]heldLease // by task ID
	pause time.Time            // no acquisition before this: a task this engine cannot drive was given back
}

// heldLease is a lease this engine holds: its token, and when it was
// granted (a renewal that began earlier cannot know of it).
type heldLease struct {
	token int64
	at    time.Time
}

// newShared returns e's shared, or nil when e's store is not a Leaser.
func newShared(e *Engine) *shared {
	l, ok := e.st.(store.Leaser)
	if !ok {
		return nil
	}
	sh := &shared{e: e, st: l, owner: e.cfg.Owner, ttl: e.cfg.LeaseTTL,
		poll: min(time.Second, e.cfg.LeaseTTL/4), kick: make(chan struct{}, 1), held: make(map[string]heldLease)}
	if w, ok := e.st.(store.Waker); ok {
		sh.wake = w.Wake()
	}
	return sh
}

// defaultOwner names an engine uniquely: host, process and a random part.
func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil {
		host = "host"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewV7(time.Now())[28:])
}

// token returns the fencing token of this engine's lease on task id, or 0
// when it holds none (an operator's change of a task another engine runs).
func (sh *shared) token(id string) int64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.held[id].token
}

// holds reports whether this engine holds a lease on task id.
func (sh *shared) holds(id string) bool { return sh.token(id) != 0 }

func (sh *shared) hold(l store.Lease) {
	sh.mu.Lock()
	sh.held[l.TaskID] = heldLease{token: l.Token, at: time.Now()}
	sh.mu.Unlock()
}

// create stores a new task, on a started engine (started), leased to this
// engine when it has room for it or the task is a sub-task (sub), whose
// parent waits here; otherwise free, for an engine with room to acquire.
// It reports whether this engine holds the task, assuming so when the
// store's answer was an error, in case the task was stored (token 1).
func (sh *shared) create(ctx context.Context, task store.Task, steps []store.Step, sub, started bool) (string, bool, bool, error) {
	if !started || !sub && sh.e.sched.load() >= sh.e.cfg.Workers {
		id, created, err := sh.e.st.CreateTask(ctx, task, steps)
		sh.backlog.Store(true)
		return id, created, false, err
	}
	id, created, l, err := sh.st.CreateLeased(ctx, task, steps, sh.owner, sh.ttl)
	switch {
	case err != nil:
		sh.hold(store.Lease{TaskID: task.ID, Owner: sh.owner, Token: 1})
		return id, created, true, err
	case created:
		sh.hold(l)
	}
	return id, created, created, nil
}

// run acquires and renews until the engine stops. It is the only caller
// of acquire and renew, so rounds never overlap.
func (sh *shared) run(stopped <-chan struct{}) {
	ctx := sh.e.sched.handlerCtx
	renew := time.NewTicker(sh.ttl / 3)
	defer renew.Stop()
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		select {
		case <-stopped:
			return
		case <-renew.C:
			sh.renew(ctx)
			continue
		case <-sh.wake:
		case <-sh.kick:
		case <-poll.C:
			poll.Reset(jitter(sh.poll)) // engines polling one store spread out
		}
		sh.acquire(ctx)
	}
}

// acquire takes over as many free tasks as this engine has room for.
func (sh *shared) acquire(ctx context.Context) {
	sh.mu.Lock()
	paused := time.Now().Before(sh.pause)
	sh.mu.Unlock()
	room := sh.e.cfg.Workers - sh.e.sched.load()
	if paused || room <= 0 {
		return
	}
	leases, err := sh.st.AcquireTasks(ctx, sh.owner, unfinished, room, sh.ttl)
	if err != nil {
		sh.e.cfg.Logger.Warn("tasker: acquire tasks", zap.Error(err))
		return
	}
	sh.backlog.Store(len(leases) == room)
	for _, l := range leases {
		sh.take(ctx, l)
	}
}

// take drives the task of lease l, which this engine was just granted,
// as crash recovery does; a task it cannot drive is given back at once.
//
// A run of this engine that still drives the task under another token
// was built under an earlier lease of this engine's, which expired before
// a renewal reached the store (the engine lagged; another may have held
// the task since): its view of the task may be stale, and its writes carry
// the old token. It is let go, and the task driven afresh from the store
// under the new lease. A run under l itself (a renewal listed a lease that
// Submit had just been granted, before it recorded it) is kept.
func (sh *shared) take(ctx context.Context, l store.Lease) {
	if r := sh.e.sched.lookup(l.TaskID); r != nil && r.leaseToken() != l.Token {
		sh.e.sched.release(r, fmt.Errorf("tasker: task %s: its lease expired, and was granted again: %w", l.TaskID, store.ErrLeaseLost))
	}
	sh.hold(l)
	driven, err := sh.e.adopt(ctx, l.TaskID)
	if err == nil && driven {
		sh.e.cfg.Logger.Debug("tasker: task taken over", zap.String("task", l.TaskID), zap.Int64("token", l.Token))
		return
	}
	sh.e.cfg.Logger.Warn("tasker: giving back a task this engine cannot drive", zap.String("task", l.TaskID), zap.Error(err))
	sh.mu.Lock()
	delete(sh.held, l.TaskID)
	sh.pause = time.Now().Add(sh.poll)
	sh.mu.Unlock()
	if err := sh.st.ReleaseTasks(ctx, []store.Lease{l}); err != nil {
		sh.e.cfg.Logger.Warn("tasker: give back a task", zap.String("task", l.TaskID), zap.Error(err))
	}
}

// renew extends this engine's leases and squares what it drives with what
// the store says it holds: a task another engine took over is let go (its
// run abandoned, nothing more of it written), and an unfinished task the
// store says is this engine's but no run drives (an operator retried it)
// is driven.
func (sh *shared) renew(ctx context.Context) {
	began := time.Now()
	leases, err := sh.st.RenewLeases(ctx, sh.owner, unfinished, sh.ttl)
	if err != nil {
		sh.e.cfg.Logger.Warn("tasker: renew leases", zap.Error(err))
		return
	}
	lost, orphans := sh.square(leases, began)
	for _, id := range lost {
		if r := sh.e.sched.lookup(id); r != nil && !r.isEnded() {
			sh.e.cfg.Logger.Warn("tasker: lease lost: another engine runs the task now", zap.String("task", id))
			sh.e.sched.release(r, fmt.Errorf("tasker: task %s: %w", id, store.ErrLeaseLost))
		}
	}
	for _, l := range orphans {
		sh.take(ctx, l)
	}
}

// square returns the tasks this engine believed it held that leases, the
// store's answer to a renewal that began at began, does not list (ended
// ones among them), forgetting them, and the leases it lists that this
// engine did not know of.
func (sh *shared) square(leases []store.Lease, began time.Time) (lost []string, orphans []store.Lease) {
	in := make(map[string]int64, len(leases))
	for _, l := range leases {
		in[l.TaskID] = l.Token
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for id, h := range sh.held {
		if tok, ok := in[id]; (!ok || tok != h.token) && h.at.Before(began) {
			delete(sh.held, id)
			lost = append(lost, id)
		}
	}
	for _, l := range leases {
		if _, ok := sh.held[l.TaskID]; !ok {
			orphans = append(orphans, l)
		}
	}
	return lost, orphans
}

// releaseAll gives back every lease this engine holds, when it stops, so
// that other engines take its unfinished tasks over at once rather than
// once the leases expire.
func (sh *shared) releaseAll(ctx context.Context) {
	sh.mu.Lock()
	leases := make([]store.Lease, 0, len(sh.held))
	for id, h := range sh.held {
		leases = append(leases, store.Lease{TaskID: id, Owner: sh.owner, Token: h.token})
	}
	clear(sh.held)
	sh.mu.Unlock()
	if len(leases) == 0 {
		return
	}
	if err := sh.st.ReleaseTasks(ctx, leases); err != nil {
		sh.e.cfg.Logger.Warn("tasker: release leases at stop", zap.Error(err))
	}
}

// How often Wait reads a task that another engine runs: from remotePollMin,
// doubling to remotePollMax.
const (
	remotePollMin = 2 * time.Millisecond
	remotePollMax = 250 * time.Millisecond
)

// pause waits *d, then doubles it up to remotePollMax, unless ctx ends or
// the engine stops first.
func (s *scheduler) pause(ctx context.Context, d *time.Duration) error {
	t := time.NewTimer(*d)
	defer t.Stop()
	*d = min(2**d, remotePollMax)
	select {
	case <-t.C:
		return nil
	case <-s.stopped:
		return ErrEngineStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// freed is told that a run ended: with free tasks waiting, one can be
// taken in its place.
func (sh *shared) freed() {
	if sh.backlog.Load() {
		sh.poke()
	}
}

// poke asks for an acquisition round now.
func (sh *shared) poke() {
	select {
	case sh.kick <- struct{}{}:
	default:
	}
}
