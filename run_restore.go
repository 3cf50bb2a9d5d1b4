package tasker

import (
	"context"
	"time"

	"github.com/gotasker/tasker/store"
)

// Rebuilding a run from the store, for recovery and for the operator
// actions that resume a task. The run is not shared yet: nothing here takes
// its lock.

// restore rebuilds the run of stored task rec from its steps. An attempt
// that was in progress was cut short by a stop or a crash: it counts as a
// retryable failure, and restore returns the changes that record it, to be
// written before anything runs again. Steps that do not match t's are an
// error wrapping ErrTemplateMismatch.
func restore(parent context.Context, rec store.Task, steps []store.Step, t *Template, now time.Time) (*run, []store.Change, error) {
	if err := t.matches(steps); err != nil {
		return nil, nil, err
	}
	r := newRun(parent, &rec, t)
	r.state, r.progress = TaskState(rec.State), now
	// Its steps' links to sub-tasks are in its audit trail, read only when
	// a step calls Subtask (Engine.linkedChild).
	r.linksUnread = true
	for i := range r.steps { // a step the store lacks is undecided, until replayed
		r.steps[i] = stepRun{state: StepPending, presence: undecided}
	}
	stored := make(map[string]store.Step, len(steps))
	for _, s := range steps {
		stored[s.Name] = s
		if spec := t.Step(s.Name); spec != nil {
			r.load(spec.index, s)
		}
	}
	cut := r.replayBatches(stored, now)
	cut = append(cut, r.replayDecisions(now)...)
	for i := range r.steps {
		if r.steps[i].presence == created {
			r.steps[i].waiting = r.unfinished(i)
		}
	}
	for i, st := range r.steps {
		if st.state == StepInProgress {
			ch := r.interrupted(i, now)
			r.apply(i, ch)
			cut = append(cut, ch)
		}
	}
	return r, cut, nil
}

// load sets step i to its stored state s. Called while restoring.
func (r *run) load(i int, s store.Step) {
	st := &r.steps[i]
	*st = stepRun{state: StepState(s.State), attempts: s.Attempts, result: s.Result, fail: s.Error,
		nextAt: s.NextAttemptAt, since: s.UpdatedAt, checkpoint: s.Checkpoint}
	switch {
	case st.state.Done():
		r.left--
		st.durable = true
	case st.state == StepFailed && r.isolated(i):
		r.left--
		st.durable = true
		r.batchFailed = r.batchFailed || r.batches[r.spec(i).of].strategy == batchContinue
	case st.state == StepFailed:
		r.failed = true
	case r.spec(i).of != nil && (st.state == StepInProgress || st.state == StepWaitingForRetry):
		st.slot = true // a batch worker that was running holds its place
		r.batches[r.spec(i).of].running++
	}
}

// replayBatches adds the batch workers of the restored task's completed
// batchable steps, read back from their results, and loads those stored;
// it returns the changes that create the ones the store lacks (a batchable
// step an operator resolved). Called while restoring.
func (r *run) replayBatches(stored map[string]store.Step, now time.Time) []store.Change {
	var changes []store.Change
	for _, i := range r.tmpl.topo {
		spec, st := r.spec(i), r.steps[i]
		if spec.Type != StepBatchable || st.presence != created || !st.state.Done() {
			continue
		}
		cs, err := r.tmpl.cursors(spec, st.result)
		if err != nil {
			continue // resolved with a result that is no batch list: none
		}
		ws, err := r.workersOf(spec, cs)
		if err != nil {
			continue
		}
		for _, w := range ws {
			r.addWorker(w)
			if s, ok := stored[w.Name]; ok {
				r.load(w.index, s)
			} else {
				changes = append(changes, store.Change{TaskID: r.id, Step: w.Name, To: string(StepPending), Position: w.index, At: now})
			}
		}
	}
	return changes
}

// replayDecisions settles the presence of the steps a restored task lacks,
// reading the completed decisions' choices back from their results (one
// resolved by an operator with a result that is no decision chose none),
// and returns the changes that create the steps the choices call for but
// the store lacks: those of a decision an operator resolved.
func (r *run) replayDecisions(now time.Time) []store.Change {
	if !r.tmpl.dynamic {
		return nil
	}
	for _, i := range r.tmpl.topo {
		if st := r.steps[i]; r.spec(i).Type == StepDecision && st.presence == created && st.state.Done() {
			chosen, _ := r.tmpl.chosen(r.spec(i), st.result)
			for _, c := range chosen {
				r.steps[c].picked = true
			}
		}
	}
	p := make([]presence, len(r.steps))
	for i := range r.steps {
		p[i] = r.steps[i].presence
	}
	picked := func(i int) bool { return r.steps[i].picked }
	for _, i := range r.tmpl.topo {
		if p[i] == undecided {
			p[i] = r.evaluate(i, -1, p, picked)
		}
	}
	changes, _ := r.grow(&growth{p: p}, now, nil)
	return changes
}

// interrupted returns the change that ends an attempt cut short by a stop or
// a crash: a retryable failure, retried while the policy allows.
func (r *run) interrupted(i int, now time.Time) store.Change {
	st := r.steps[i]
	fail := &store.Failure{Message: "attempt interrupted: the engine stopped while it ran",
		Type: string(ErrorHandler), Code: CodeInterrupted, Retryable: true, Attempt: st.attempts}
	ch, _ := r.outcomeChange(i, st.attempts, st.fail, outcome{fail: fail}, now)
	return ch
}
