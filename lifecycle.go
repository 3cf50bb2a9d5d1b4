package tasker

import (
	"context"
	"fmt"
	"time"

	"github.com/gotasker/tasker/store"
	"go.uber.org/zap"
)

// DefaultStalenessInterval is how often the engine checks its tasks against
// their templates' lifecycle thresholds when Config.StalenessInterval is
// zero.
const DefaultStalenessInterval = 5 * time.Second

// The reasons of a dead-letter entry.
const (
	// DeadLetterStaleness: the task passed one of its template's lifecycle
	// thresholds, with staleness_action dlq (or auto_dlq_on_timeout).
	DeadLetterStaleness = "staleness"
	// DeadLetterRetriesExhausted: the task ended in error because a step
	// failed for good after retryable failures, out of attempts.
	DeadLetterRetriesExhausted = "retries_exhausted"
)

// DeadLetter is an entry of the dead-letter list: a task that ended in error
// and waits for an operator, and why. An entry is pending until an operator
// acts on its task (Retry, or Resolve of its last failed step), which
// resolves it with who and why.
type DeadLetter struct {
	ID         string    `json:"id"`
	TaskID     string    `json:"task_id"`
	Reason     string    `json:"reason"`  // DeadLetterStaleness or DeadLetterRetriesExhausted
	Message    string    `json:"message"` // what happened
	Status     string    `json:"status"`  // "pending" or "resolved"
	CreatedAt  time.Time `json:"created_at"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`  // zero while pending
	ResolvedBy string    `json:"resolved_by,omitempty"` // the resolving action's By
	Resolution string    `json:"resolution,omitempty"`  // the resolving action's Reason
}

// DeadLetterFilter selects entries for Engine.DeadLetters. Empty fields
// match every entry.
type DeadLetterFilter struct {
	TaskID string
	Status string // "pending" or "resolved"
	Limit  int    // 0 means no limit
}

// DeadLetters lists the dead-letter entries that match f, oldest first.
func (e *Engine) DeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error) {
	recs, err := e.st.DeadLetters(ctx, store.DeadLetterFilter(f))
	if err != nil {
		return nil, fmt.Errorf("tasker: list dead letters: %w", err)
	}
	out := make([]DeadLetter, len(recs))
	for i, d := range recs {
		out[i] = DeadLetter(d)
	}
	return out, nil
}

// The staleness actions of a template's lifecycle.
const (
	staleDLQ   = "dlq"
	staleError = "error"
	staleNone  = "none"
)

// action returns what the engine does with a task of lc that went stale:
// past max_duration (a timeout), auto_dlq_on_timeout and then
// auto_fail_on_timeout decide before staleness_action; past any other
// threshold, staleness_action does.
func (lc *Lifecycle) action(timeout bool) string {
	switch {
	case timeout && lc.AutoDLQOnTimeout:
		return staleDLQ
	case timeout && lc.AutoFailOnTimeout:
		return staleError
	case lc.StalenessAction == "":
		return staleDLQ
	}
	return lc.StalenessAction
}

// staleCutoff is the cutoff of a task that went stale for why: its steps
// that did not run end in error with code STALE; with dlq, its end adds a
// dead-letter entry.
func staleCutoff(why, action string) *cutoff {
	c := &cutoff{code: CodeStale, message: "the task went stale before the step ran: " + why,
		reason: CodeStale + ": " + why, cause: ErrTaskStale}
	if action == staleDLQ {
		c.deadLetter = &store.DeadLetter{Reason: DeadLetterStaleness, Message: why}
	}
	return c
}

// checkStaleness acts on every driven task whose template's lifecycle it
// has passed at now: it ends it in error (error, dlq) or logs it once
// (none).
func (s *scheduler) checkStaleness(now time.Time) {
	for _, r := range s.driven() {
		lc := r.tmpl.Lifecycle
		if lc == nil {
			continue
		}
		why, timeout := r.staleness(now, lc)
		if why == "" {
			continue
		}
		act := lc.action(timeout)
		if act == staleNone {
			if r.reportOnce() {
				s.log.Warn("tasker: task is stale", zap.String("task", r.id), zap.String("why", why))
			}
			continue
		}
		s.log.Warn("tasker: ending stale task", zap.String("task", r.id), zap.String("why", why), zap.String("action", act))
		s.carry(r, r.cutShort(now, staleCutoff(why, act)))
	}
}

// watchStaleness checks the driven tasks' staleness every interval, reading
// the time from clock, until the scheduler stops.
func (s *scheduler) watchStaleness(interval time.Duration, clock func() time.Time) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stopped:
			return
		case <-t.C:
			s.checkStaleness(clock())
		}
	}
}
