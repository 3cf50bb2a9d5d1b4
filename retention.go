package tasker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gotasker/tasker/store"
	"go.uber.org/zap"
)

// The defaults of Config.Retention.
const (
	// DefaultRetentionMaxAge is how long a finished task is kept when
	// Retention.MaxAge is zero: a week, so that an operator back from a
	// weekend still finds what ran while they were away.
	DefaultRetentionMaxAge = 7 * 24 * time.Hour
	// DefaultRetentionMaxTasks is how many finished tasks a store that
	// keeps them in the process's memory (store.Volatile, such as
	// store/memory) keeps when Retention.MaxTasks is zero: about 34 MB at
	// the 3.4 KB a task of five steps takes there. A durable store has no
	// count limit by default: its disk, not the process, holds the week.
	DefaultRetentionMaxTasks = 10_000
	// DefaultRetentionInterval is how often the engine deletes the tasks
	// past the limits when Retention.Interval is zero.
	DefaultRetentionInterval = 30 * time.Second
)

// DefaultRetentionStates returns the task states a finished task is deleted
// in when Retention.States is nil: complete and cancelled. A task that
// an operator resolved (Resolve) ends complete. A task in error is kept,
// with its dead-letter entries, so that an operator can look at it and
// Retry or Resolve it; name TaskFailed in Retention.States to delete those
// too.
func DefaultRetentionStates() []TaskState { return []TaskState{TaskComplete, TaskCancelled} }

// Retention decides which finished tasks the store keeps: a task is deleted,
// whole (its steps, audit trail, dead-letter entries and idempotency key
// go with it), once it is older than MaxAge or more than MaxTasks finished
// tasks are newer than it. The engine deletes them from a goroutine of its
// own every Interval, in batches, while it runs; a store that cannot delete
// tasks (one that is not a store.Purger) keeps them all. A task with domain
// events not yet delivered from the store's outbox is kept until they are.
//
// The zero value means the defaults: finished tasks are kept a week
// (DefaultRetentionMaxAge), and a store in the process's memory keeps at
// most DefaultRetentionMaxTasks of them, so that a long-running process
// does not grow without bound (at 10 tasks a second, a week of tasks in
// memory would take 20 GB); a durable store (SQLite) has no count limit.
type Retention struct {
	// Disabled turns retention off: the store keeps every task, for ever.
	Disabled bool
	// MaxAge is how long a finished task is kept after it finished (its
	// last change, as stored). Zero means DefaultRetentionMaxAge; negative
	// means no age limit.
	MaxAge time.Duration
	// MaxTasks is how many finished tasks are kept at most, the newest by
	// submission; older ones are deleted whatever their age, once they
	// have been finished for an Interval (so that a task that just
	// finished is there for whoever waits for it to read). Tasks in a
	// state not in States are not counted. Zero means the default: none
	// for a durable store, DefaultRetentionMaxTasks for one in memory
	// (store.Volatile); negative means no count limit.
	MaxTasks int
	// Interval is how often the engine deletes what is past the limits:
	// a store may hold MaxTasks and the tasks finished in the last two
	// Intervals. Zero means DefaultRetentionInterval; negative is an error.
	Interval time.Duration
	// States are the states a task is deleted in, each one a task ends in:
	// TaskComplete, TaskCancelled or TaskFailed. Nil means
	// DefaultRetentionStates(): a task in error is kept unless named here.
	States []TaskState
}

// withDefaults returns r with its zero fields but MaxTasks, whose default
// depends on the store, set to their defaults, after checking it.
func (r Retention) withDefaults() (Retention, error) {
	if r.Disabled {
		return r, nil
	}
	if r.Interval < 0 {
		return r, fmt.Errorf("tasker: Config.Retention.Interval must not be negative, got %s", r.Interval)
	}
	if r.Interval == 0 {
		r.Interval = DefaultRetentionInterval
	}
	if r.MaxAge == 0 {
		r.MaxAge = DefaultRetentionMaxAge
	}
	if r.States == nil {
		r.States = DefaultRetentionStates()
	}
	if len(r.States) == 0 {
		return r, fmt.Errorf("tasker: Config.Retention.States is empty: set Disabled to keep every task")
	}
	for _, s := range r.States {
		if !s.Ended() {
			return r, fmt.Errorf("tasker: Config.Retention.States: %q is not a state a task ends in (complete, cancelled, error)", s)
		}
	}
	r.States = slices.Clone(r.States)
	return r, nil
}

// retentionBatch is how many tasks one PurgeTasks call of the cleaner
// deletes at most; the store splits it into short transactions of its own.
const retentionBatch = 1000

// cleaner deletes the finished tasks past an engine's retention limits.
type cleaner struct {
	p        store.Purger
	states   []string
	maxAge   time.Duration // 0: no age limit
	maxTasks int           // 0: no count limit
	interval time.Duration
	clock    func() time.Time
	log      *zap.Logger
}

// newCleaner returns the cleaner of cfg.Retention for st, or nil when there
// is nothing to clean: retention is off, has no limit, or st cannot purge.
func newCleaner(st store.Store, cfg Config) *cleaner {
	r := cfg.Retention
	p, ok := st.(store.Purger)
	if r.Disabled || !ok {
		return nil
	}
	c := &cleaner{p: p, interval: r.Interval, clock: cfg.Clock, log: cfg.Logger,
		maxAge: max(r.MaxAge, 0), maxTasks: r.MaxTasks}
	if v, ok := st.(store.Volatile); c.maxTasks == 0 && ok && v.Volatile() {
		c.maxTasks = DefaultRetentionMaxTasks
	}
	c.maxTasks = max(c.maxTasks, 0)
	if c.maxAge == 0 && c.maxTasks == 0 {
		return nil
	}
	for _, s := range r.States {
		c.states = append(c.states, string(s))
	}
	return c
}

// startRetention starts the engine's cleaner, if it has one, on a
// goroutine the scheduler owns: Stop waits for it.
func (e *Engine) startRetention() {
	c := newCleaner(e.st, e.cfg)
	if c == nil {
		return
	}
	s := e.sched
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.run(s.stopped)
	}()
}

// run cleans at once, then every interval, reading the time from the
// clock, until stopped is closed; a purge in progress then ends early.
func (c *cleaner) run(stopped <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		select {
		case <-stopped:
			cancel()
		case <-ctx.Done():
		}
	})
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		c.clean(ctx, c.clock())
		select {
		case <-stopped:
			return
		case <-t.C:
		}
	}
}

// clean deletes the tasks past the limits at now: those finished before
// now less maxAge, and those older than the maxTasks newest, unless they
// finished within the last interval: a task that just finished stays for
// whoever waits for it, or was told of its end, to read it.
func (c *cleaner) clean(ctx context.Context, now time.Time) {
	if c.maxAge > 0 {
		c.purge(ctx, "max_age", store.PurgeFilter{States: c.states, UpdatedBefore: now.Add(-c.maxAge)})
	}
	if c.maxTasks > 0 {
		c.purge(ctx, "max_tasks", store.PurgeFilter{States: c.states, KeepNewest: c.maxTasks,
			UpdatedBefore: now.Add(-c.interval)})
	}
}

// purge deletes the tasks f selects, retentionBatch at a time, until none
// is left or ctx ends, and logs how many it deleted at debug level, and a
// failure as a warning.
func (c *cleaner) purge(ctx context.Context, limit string, f store.PurgeFilter) {
	f.Limit = retentionBatch
	total := 0
	for ctx.Err() == nil {
		n, err := c.p.PurgeTasks(ctx, f)
		total += n
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("tasker: retention: purging finished tasks failed", zap.String("limit", limit), zap.Error(err))
			}
			break
		}
		if n < f.Limit {
			break
		}
	}
	if ce := c.log.Check(zap.DebugLevel, "tasker: retention: finished tasks purged"); ce != nil {
		ce.Write(zap.String("limit", limit), zap.Int("tasks", total))
	}
}
