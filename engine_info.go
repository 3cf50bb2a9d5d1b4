package tasker

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gotasker/tasker/store"
)

// SubmitUnique is Submit, except that a submission whose IdempotencyKey an
// earlier task of the same namespace and name holds returns that task's ID
// with a *DuplicateTaskError (wrapping ErrDuplicateTask) instead of nil, so
// an API can answer "conflict". The earlier task is driven all the same, as
// Submit does.
func (e *Engine) SubmitUnique(ctx context.Context, req SubmitRequest) (string, error) {
	id, created, err := e.submit(ctx, req, false)
	if err == nil && !created {
		return id, &DuplicateTaskError{ID: id, IdempotencyKey: req.IdempotencyKey}
	}
	return id, err
}

// Templates returns every loaded template, ordered by namespace, name and
// then highest version first. The templates are shared: do not modify them.
func (e *Engine) Templates() []*Template {
	e.tmplMu.RLock()
	defer e.tmplMu.RUnlock()
	var out []*Template
	for _, vs := range e.templates {
		out = append(out, vs...)
	}
	slices.SortFunc(out, func(a, b *Template) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name),
			compareVersions(b.Version, a.Version))
	})
	return out
}

// Handlers returns the callable names that have a registered handler,
// sorted.
func (e *Engine) Handlers() []string {
	e.handlers.mu.RLock()
	defer e.handlers.mu.RUnlock()
	out := make([]string, 0, len(e.handlers.handlers))
	for name := range e.handlers.handlers {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Ready returns nil when the engine is started, not stopped, and its store
// answers a read; otherwise ErrNotStarted, ErrEngineStopped or the store's
// error. It is a readiness probe's question.
func (e *Engine) Ready(ctx context.Context) error {
	e.mu.RLock()
	state := e.state
	e.mu.RUnlock()
	switch state {
	case engineNew:
		return ErrNotStarted
	case engineStopped:
		return ErrEngineStopped
	}
	if _, err := e.st.ListTasks(ctx, store.Filter{Limit: 1}); err != nil {
		return fmt.Errorf("tasker: store not reachable: %w", err)
	}
	return nil
}

// QueueDepth returns how many items of work (a task to begin, a step to
// attempt) are ready and wait for a free worker, for a queue-depth gauge.
// Steps waiting for a retry's delay are not counted.
func (e *Engine) QueueDepth() int { return e.sched.queued() }
