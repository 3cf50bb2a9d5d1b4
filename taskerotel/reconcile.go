package taskerotel

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/gotasker/tasker"
)

// The defaults of Options.ReconcileInterval and Options.ReconcileBatch.
const (
	// DefaultReconcileInterval is how often the open task spans are
	// checked against the engines when Options.ReconcileInterval is 0.
	DefaultReconcileInterval = 10 * time.Second
	// DefaultReconcileBatch is how many open task spans a check looks at,
	// at most, when Options.ReconcileBatch is not positive.
	DefaultReconcileBatch = 256
)

// observed is an engine t observes, while its subscription is open.
type observed struct {
	eng *tasker.Engine
	sub *tasker.Subscription
	// seen is sub.Lost() at the last reconciliation pass; the reconciler's.
	seen uint64
	// counted is how many of sub's lost events tasker.telemetry.events_lost
	// counts.
	counted atomic.Uint64
}

// countLost counts in tasker.telemetry.events_lost the events o's
// subscription lost that it does not count yet. Its callers (the event
// loop, told of a loss by an event or as the subscription ends, and the
// reconciler at each pass, told of losses no later event tells of) may
// race: each counts what it saw beyond the largest total counted.
func (t *Telemetry) countLost(o *observed) {
	n := o.sub.Lost()
	for {
		c := o.counted.Load()
		if n <= c {
			return
		}
		if o.counted.CompareAndSwap(c, n) {
			t.inst.eventsLost.Add(context.Background(), int64(n-c))
			return
		}
	}
}

// startReconciler starts the reconciler, unless it runs or is disabled;
// t.mu is held.
func (t *Telemetry) startReconciler() {
	if t.every <= 0 || t.stopRec != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.stopRec = cancel
	t.wg.Add(1)
	go t.reconcile(ctx)
}

// stopReconciler stops the reconciler, if it runs; t.mu is held. The
// reconciler is done once t.wg says so.
func (t *Telemetry) stopReconciler() {
	if t.stopRec != nil {
		t.stopRec()
		t.stopRec = nil
	}
}

// reconcile runs a reconciliation pass every t.every until ctx ends (or
// at every tick of t.ticks, when set).
func (t *Telemetry) reconcile(ctx context.Context) {
	defer t.wg.Done()
	ticks := t.ticks
	if ticks == nil {
		tick := time.NewTicker(t.every)
		defer tick.Stop()
		ticks = tick.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			t.pass(ctx)
		}
	}
}

// pass asks the observed engines about at most t.batch open task spans,
// going on from where the last pass stopped: those open for an interval
// at least, and any when the subscriptions lost events since the last
// pass. It ends the spans of the tasks that ended, with their end, and of
// those no engine knows any more. A pass that a slow store makes longer
// than an interval delays the next: ticks do not pile up.
func (t *Telemetry) pass(ctx context.Context) {
	now := time.Now()
	t.mu.Lock()
	engines := make([]*tasker.Engine, len(t.observed))
	for i, o := range t.observed {
		engines[i] = o.eng
		t.countLost(o)
		if n := o.sub.Lost(); n != o.seen {
			o.seen = n
			t.tasks.lost()
		}
	}
	due := t.tasks.due(t.batch, now.Add(-t.every))
	t.mu.Unlock()
	for _, s := range due {
		end, known := ask(ctx, engines, s.id)
		if ctx.Err() != nil {
			return // stopped; the answer may be the ctx's
		}
		if !known {
			continue
		}
		t.mu.Lock()
		ours := t.tasks.take(s)
		t.mu.Unlock()
		switch {
		case !ours: // its end event came meanwhile
		case end.gone:
			t.endUnobserved(s, UnobservedNotFound, time.Now())
		default:
			t.endReconciled(s, end)
		}
	}
}

// endReconciled ends s, which t no longer holds, with end, as an engine
// told it: its task's end event was not observed.
func (t *Telemetry) endReconciled(s *openSpan, end taskEnd) {
	t.countUnobserved(s, UnobservedReconciled, AttrState.String(string(end.state)))
	s.span.SetAttributes(AttrUnobserved.String(UnobservedReconciled))
	endSpan(s.span, string(end.state), end.reason, end.at)
}

// taskEnd is what the engines know of a task's end.
type taskEnd struct {
	gone   bool // no engine knows the task
	state  tasker.TaskState
	at     time.Time
	reason string
}

// ask returns what engines know of task id's end, and true when they know
// that it ended (with what end) or that none of them knows the task; false
// when it has not ended, or when the engines that could know cannot say
// (a store error).
func ask(ctx context.Context, engines []*tasker.Engine, id string) (taskEnd, bool) {
	gone := len(engines) > 0
	for _, eng := range engines {
		task, err := eng.Get(ctx, id)
		switch {
		case err == nil && task.State.Ended():
			return endOf(task), true
		case err == nil:
			return taskEnd{}, false
		case !errors.Is(err, tasker.ErrTaskNotFound):
			gone = false
		}
	}
	return taskEnd{gone: gone}, gone
}

// endOf returns the end of task, which ended: its state, and when and why
// it moved to it, from its audit trail (now when the trail does not say).
func endOf(task *tasker.Task) taskEnd {
	end := taskEnd{state: task.State, at: task.FinishedAt}
	for i := len(task.Transitions) - 1; i >= 0; i-- {
		if tr := task.Transitions[i]; tasker.TaskState(tr.To) == task.State {
			end.reason = tr.Reason
			if end.at.IsZero() {
				end.at = tr.At
			}
			break
		}
	}
	if end.at.IsZero() {
		end.at = time.Now()
	}
	return end
}
