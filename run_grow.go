package tasker

import (
	"fmt"
	"slices"
	"time"

	"github.com/gotasker/tasker/store"
)

// The parts of a run's state machine that grow its task at run time: the
// steps a decision creates, the workers of a batch, and their admission.
// Each is called with the run's lock held, from the event methods in
// run.go; none takes the lock itself.

// nextClaim returns the first dependent of step i, from position k of its
// dependents on, that only i's completion holds up, its other
// dependencies stored as settled, for i's turn to claim in the same write,
// and the position after it; -1 when there is none. Called with mu held.
func (r *run) nextClaim(i, k int) (d, next int) {
	deps := r.spec(i).dependents
	for ; k < len(deps); k++ {
		d := deps[k]
		if st := r.steps[d]; st.presence == created && st.state == StepPending && st.waiting == 1 && r.spec(d).of == nil {
			return d, k + 1
		}
	}
	return -1, k
}

// growth is what a decision's or a batchable step's outcome adds to its
// task: the presence every template step will have, and the batch workers
// to create.
type growth struct {
	p       []presence
	workers []*StepSpec
}

// planGrowth works out what decision or batchable step i's result creates,
// before its completion rec is applied. A result that is no valid decision
// or batch list turns rec into a non-retryable failure (DECISION_INVALID,
// BATCH_INVALID), and there is no growth. Called with mu held.
func (r *run) planGrowth(i int, rec store.Change) (*growth, store.Change) {
	spec := r.spec(i)
	g, code, err := &growth{}, CodeDecisionInvalid, error(nil)
	if spec.Type == StepBatchable {
		code = CodeBatchInvalid
		var cs []BatchCursor
		if cs, err = r.tmpl.cursors(spec, rec.Result); err == nil {
			g.workers, err = r.workersOf(spec, cs)
		}
		if err == nil {
			g.p, err = r.plan(i, nil)
		}
	} else {
		var chosen []int
		if chosen, err = r.tmpl.chosen(spec, rec.Result); err == nil {
			g.p, err = r.plan(i, chosen)
		}
	}
	if err != nil {
		rec.To, rec.Result = string(StepFailed), nil
		rec.Error = &store.Failure{Message: err.Error(), Type: string(ErrorHandler), Code: code, Attempt: rec.Attempt}
		return nil, rec
	}
	return g, rec
}

// workersOf returns the batch worker instances of batchable step b for
// cursors cs, at the indexes after the task's steps. Called with mu held.
func (r *run) workersOf(b *StepSpec, cs []BatchCursor) ([]*StepSpec, error) {
	w := r.tmpl.Step(b.BatchConfig.WorkerTemplate)
	out := make([]*StepSpec, len(cs))
	for k, c := range cs {
		out[k] = instance(w, c, len(r.specList())+k)
		if _, taken := r.lookup(out[k].Name); taken {
			return nil, fmt.Errorf("batchable step %q: batch worker %q would have the name of another step", b.Name, out[k].Name)
		}
	}
	return out, nil
}

// plan returns the presence of every step once decision d, done, chose
// chosen: its chosen dependents are picked, the others are never created,
// and every undecided step downstream is settled in turn. It is an error
// when that creates more than MaxStepsPerDecision steps. Called with mu held.
func (r *run) plan(d int, chosen []int) ([]presence, error) {
	p := make([]presence, len(r.steps))
	for i := range r.steps {
		p[i] = r.steps[i].presence
	}
	picked := func(i int) bool { return r.steps[i].picked || slices.Contains(chosen, i) }
	made := 0
	for _, i := range r.tmpl.topo {
		if p[i] == undecided {
			if p[i] = r.evaluate(i, d, p, picked); p[i] == created {
				made++
			}
		}
	}
	if made > MaxStepsPerDecision {
		return nil, fmt.Errorf("decision step %q would create %d steps, over %d", r.spec(d).Name, made, MaxStepsPerDecision)
	}
	for _, c := range chosen {
		if p[c] != created {
			return nil, fmt.Errorf("decision step %q chose %q, which cannot run: a step it depends on is never created (%s)",
				r.spec(d).Name, r.spec(c).Name, r.tmpl.stepNames(r.spec(c).deps))
		}
	}
	for _, c := range chosen {
		r.steps[c].picked = true // chosen is valid: keep the choice for recovery's replay
	}
	return p, nil
}

// evaluate returns the presence undecided step i has given the presences
// p of the steps before it, with step d done: it waits while its decision
// has not run or an upstream step is undecided; a standard step exists
// when all its dependencies do, a deferred convergence when any of them
// does. Called with mu held.
func (r *run) evaluate(i, d int, p []presence, picked func(int) bool) presence {
	s := r.spec(i)
	if j := s.decisionParent; j >= 0 {
		switch {
		case j != d && !r.steps[j].state.Done():
			return undecided
		case s.Type == StepBatchWorker:
			return instanced
		case !picked(i):
			return never
		}
	}
	var yes, no, maybe int
	for _, dep := range s.deps {
		switch p[dep] {
		case created, instanced:
			yes++
		case never:
			no++
		default:
			maybe++
		}
	}
	switch {
	case maybe > 0:
		return undecided
	case s.Type == StepDeferredConvergence && yes > 0, s.Type != StepDeferredConvergence && no == 0:
		return created
	}
	return never
}

// grow carries out g, what a decision's or batch's outcome decided: the
// batch workers are added to the run, the steps it creates are appended
// to writes as changes that create them, and those whose dependencies are
// done are returned as ready work, for the caller to count in flight.
// Called with mu held, after the outcome's completion was applied.
func (r *run) grow(g *growth, now time.Time, writes []store.Change) ([]store.Change, []work) {
	var ready []work
	for _, w := range g.workers {
		r.addWorker(w)
		writes = append(writes, store.Change{TaskID: r.id, Step: w.Name, To: string(StepPending), Position: w.index, At: now})
		ready = r.admit(w.index, ready)
	}
	for _, i := range r.tmpl.topo {
		st := &r.steps[i]
		switch {
		case st.presence != undecided || g.p[i] == undecided:
			continue
		case g.p[i] != created:
			st.presence = g.p[i]
			r.left--
			continue
		}
		st.presence, st.waiting, st.since = created, r.unfinished(i), now
		writes = append(writes, store.Change{TaskID: r.id, Step: r.spec(i).Name, To: string(StepPending),
			Position: i, At: now})
		if st.waiting == 0 && !r.halted() {
			ready = append(ready, work{r: r, step: i})
		}
	}
	return writes, ready
}

// batchGroup is the state of one worker template's instances: how many
// may run at once, how many hold a place, and those waiting for one.
type batchGroup struct {
	limit, running int
	waiting        []int
	strategy       string // the batchable step's failure_strategy
	instances      []int
}

// addWorker adds batch worker instance w to the run, pending, its
// batchable step done. Called with mu held.
func (r *run) addWorker(w *StepSpec) {
	if r.index == nil {
		r.index = make(map[string]int)
		r.batches = make(map[*StepSpec]*batchGroup)
	}
	g := r.batches[w.of]
	if g == nil {
		bc := r.spec(w.of.decisionParent).BatchConfig
		g = &batchGroup{limit: bc.Parallelism, strategy: bc.FailureStrategy}
		r.batches[w.of] = g
	}
	g.instances = append(g.instances, w.index)
	specs := append(slices.Clip(r.specList()), w) // a new slice: readers keep theirs
	r.specs.Store(&specs)
	r.steps = append(r.steps, stepRun{state: StepPending})
	r.index[w.Name] = w.index
	r.left++
}

// admit returns ready with step i, ready to run, appended as work unless i
// is a batch worker whose group is at its parallelism: it then waits for a
// place. Called with mu held.
func (r *run) admit(i int, ready []work) []work {
	if r.halted() {
		return ready
	}
	if w := r.spec(i).of; w != nil {
		g := r.batches[w]
		if g.running >= g.limit {
			g.waiting = append(g.waiting, i)
			return ready
		}
		g.running++
		r.steps[i].slot = true
	}
	return append(ready, work{r: r, step: i})
}

// vacate frees the place batch worker i held, now that it has ended, and
// returns ready with the next waiting worker, if any. Called with mu held.
func (r *run) vacate(i int, ready []work) []work {
	st := &r.steps[i]
	if !st.slot {
		return ready
	}
	st.slot = false
	g := r.batches[r.spec(i).of]
	g.running--
	if len(g.waiting) == 0 {
		return ready
	}
	next := g.waiting[0]
	g.waiting = g.waiting[1:]
	return r.admit(next, ready)
}

// lookup returns the index of the step named name, a template step or a
// batch worker. Called with mu held.
func (r *run) lookup(name string) (int, bool) {
	if s := r.tmpl.Step(name); s != nil {
		return s.index, true
	}
	i, ok := r.index[name]
	return i, ok
}

// unfinished counts the dependencies of step i that it waits for: those
// that exist and are not done. Called with mu held.
func (r *run) unfinished(i int) int {
	n := 0
	for _, d := range r.spec(i).deps {
		switch st := r.steps[d]; st.presence {
		case created:
			if !st.durable {
				n++
			}
		case instanced:
			for _, k := range r.batches[r.spec(d)].instancesOrNil() {
				if !r.steps[k].durable {
					n++
				}
			}
		}
	}
	return n
}

// isolated reports whether step i is a batch worker whose failure does not
// stop its task: its batch's strategy is continue_on_failure or isolate.
// Called with mu held.
func (r *run) isolated(i int) bool {
	w := r.spec(i).of
	return w != nil && r.batches[w].strategy != batchFailFast
}

func (g *batchGroup) instancesOrNil() []int {
	if g == nil {
		return nil
	}
	return g.instances
}
