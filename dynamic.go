package tasker

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Limits of decision points, as Tasker's.
const (
	// MaxDecisionDepth is how deeply decision steps may nest: a decision
	// downstream of a decision downstream of … at most this many.
	MaxDecisionDepth = 20
	// MaxStepsPerDecision is the most steps one decision's outcome may
	// create, its chosen steps and those downstream of them together.
	MaxStepsPerDecision = 100
)

// Decision is the result a decision step's handler returns: which of the
// steps that depend on it to create. It encodes as Tasker's decision point
// outcome, {"decision_point_outcome": {"type": "create_steps", "step_names":
// [...]}}; a handler that returns more data puts that object under the same
// key of its own result.
type Decision struct {
	Outcome DecisionOutcome `json:"decision_point_outcome"`
}

// DecisionOutcome is a decision point's outcome, as Tasker encodes it.
type DecisionOutcome struct {
	Type      string   `json:"type"` // "create_steps" or "no_branches"
	StepNames []string `json:"step_names,omitempty"`
}

// Decide returns the result of a decision that creates the named steps,
// each a step that depends on the decision, and every step downstream of
// them that can run.
func Decide(steps ...string) Decision {
	return Decision{DecisionOutcome{Type: "create_steps", StepNames: steps}}
}

// NoBranches returns the result of a decision that creates none of the
// steps that depend on it.
func NoBranches() Decision { return Decision{DecisionOutcome{Type: "no_branches"}} }

// presence says whether a step of a task exists in the store yet.
type presence uint8

const (
	created   presence = iota // stored: it runs once its dependencies are done
	undecided                 // downstream of a decision or batch that has not run yet
	never                     // its decision chose other steps: it is never created
	instanced                 // a batch worker template whose batchable step ran: its instances exist
)

// analyze works out, once per template, what decision points need: the
// steps in topological order, each step's decision parent, and which steps
// exist when a task starts.
func (t *Template) analyze() {
	t.topo = topoOrder(t.Steps)
	for _, s := range t.Steps {
		s.decisionParent = -1
		for _, d := range s.deps {
			if p := t.Steps[d].Type; p == StepDecision || p == StepBatchable && s.Type == StepBatchWorker {
				s.decisionParent = d
			}
		}
	}
	start := t.initialPresence()
	for i, s := range t.Steps {
		s.atStart = start[i] == created
		t.dynamic = t.dynamic || !s.atStart
	}
}

// topoOrder returns the indexes of steps, dependencies before dependents,
// in file order where the graph leaves a choice.
func topoOrder(steps []*StepSpec) []int {
	waiting := make([]int, len(steps))
	var order []int
	for i, s := range steps {
		if waiting[i] = len(s.deps); waiting[i] == 0 {
			order = append(order, i)
		}
	}
	for k := 0; k < len(order); k++ {
		for _, d := range steps[order[k]].dependents {
			if waiting[d]--; waiting[d] == 0 {
				order = append(order, d)
			}
		}
	}
	return order
}

// initialPresence returns which steps a new task has: every step but those
// downstream of a decision.
func (t *Template) initialPresence() []presence {
	p := make([]presence, len(t.Steps))
	for _, i := range t.topo {
		s := t.Steps[i]
		switch {
		case s.decisionParent >= 0:
			p[i] = undecided
		case slices.ContainsFunc(s.deps, func(d int) bool { return p[d] != created }):
			p[i] = undecided
		}
	}
	return p
}

// atStart counts the steps a new task of t has.
func (t *Template) atStart() int {
	n := 0
	for _, s := range t.Steps {
		if s.atStart {
			n++
		}
	}
	return n
}

// checkDecisions returns an error naming every decision-point rule of t the
// engine enforces beyond the loader's: a step depends on at most one
// decision, and decisions nest at most MaxDecisionDepth deep.
func (t *Template) checkDecisions() error {
	var errs []error
	depth := make([]int, len(t.Steps))
	for _, i := range t.topo {
		s := t.Steps[i]
		parents := 0
		for _, d := range s.deps {
			depth[i] = max(depth[i], depth[d])
			if t.Steps[d].Type == StepDecision {
				parents++
			}
		}
		if s.Type == StepDecision {
			depth[i]++
		}
		if parents > 1 {
			errs = append(errs, fmt.Errorf("%w: %s (%s): step %q depends on %d decision steps; a step may depend on one",
				ErrInvalidTemplate, t, t.Source, s.Name, parents))
		}
		if depth[i] > MaxDecisionDepth {
			errs = append(errs, fmt.Errorf("%w: %s (%s): step %q is nested %d decisions deep, over %d",
				ErrInvalidTemplate, t, t.Source, s.Name, depth[i], MaxDecisionDepth))
		}
	}
	return errors.Join(errs...)
}

// chosen parses the result of decision step spec and returns the indexes of
// the steps it chose, each a step that depends on it, or an error saying
// what is wrong.
func (t *Template) chosen(spec *StepSpec, result json.RawMessage) ([]int, error) {
	var d struct {
		Outcome *DecisionOutcome `json:"decision_point_outcome"`
	}
	if err := json.Unmarshal(result, &d); err != nil || d.Outcome == nil {
		return nil, fmt.Errorf("decision step %q returned no decision_point_outcome (use tasker.Decide or tasker.NoBranches)", spec.Name)
	}
	switch d.Outcome.Type {
	case "no_branches":
		return nil, nil
	case "create_steps":
	default:
		return nil, fmt.Errorf("decision step %q returned outcome type %q, want create_steps or no_branches", spec.Name, d.Outcome.Type)
	}
	var out []int
	for _, name := range d.Outcome.StepNames {
		c := t.Step(name)
		if c == nil || !slices.Contains(spec.dependents, c.index) {
			return nil, fmt.Errorf("decision step %q chose %q, which is not one of the steps that depend on it (%s)",
				spec.Name, name, t.stepNames(spec.dependents))
		}
		if !slices.Contains(out, c.index) {
			out = append(out, c.index)
		}
	}
	return out, nil
}

// stepNames lists the names of the steps at idx, for messages.
func (t *Template) stepNames(idx []int) string {
	names := make([]string, len(idx))
	for k, i := range idx {
		names[k] = t.Steps[i].Name
	}
	return fmt.Sprintf("%q", names)
}

// MaxBatches is the most batch workers one batchable step may create.
const MaxBatches = 10000

// Batches is the result a batchable step's handler returns: the cursors of
// the batches to process, one batch worker each. It encodes as Tasker's
// batch processing outcome, {"batch_processing_outcome": {"type":
// "create_batches", "cursor_configs": [...]}}; a handler that returns more
// data puts that object under the same key of its own result.
type Batches struct {
	Outcome BatchOutcome `json:"batch_processing_outcome"`
}

// BatchOutcome is a batchable step's outcome, as Tasker encodes it.
type BatchOutcome struct {
	Type               string        `json:"type"` // "create_batches" or "no_batches"
	WorkerTemplateName string        `json:"worker_template_name,omitempty"`
	CursorConfigs      []BatchCursor `json:"cursor_configs,omitempty"`
	TotalItems         int           `json:"total_items,omitempty"`
}

// BatchCursor is one batch: the items from StartCursor up to (not
// including) EndCursor. Its worker is the step named
// "{worker_template}_{batch_id}"; BatchID must be lower-case letters,
// digits and underscores.
type BatchCursor struct {
	BatchID     string `json:"batch_id"`
	StartCursor int    `json:"start_cursor"`
	EndCursor   int    `json:"end_cursor"`
	BatchSize   int    `json:"batch_size"`
}

// CreateBatches returns the result of a batchable step that creates one
// batch worker per cursor.
func CreateBatches(cursors []BatchCursor) Batches {
	total := 0
	for _, c := range cursors {
		total += c.EndCursor - c.StartCursor
	}
	return Batches{BatchOutcome{Type: "create_batches", CursorConfigs: cursors, TotalItems: total}}
}

// NoBatches returns the result of a batchable step with nothing to
// process: no worker is created, and the steps after the workers run.
func NoBatches() Batches { return Batches{BatchOutcome{Type: "no_batches"}} }

// CursorRanges splits items 0..totalItems-1 into batches of batchSize (the
// last may be smaller), with ids "001", "002", … zero-padded to at least
// three digits, as Tasker's create_cursor_configs does. It returns nil for
// no items; batchSize below 1 counts as 1.
func CursorRanges(totalItems, batchSize int) []BatchCursor {
	batchSize = max(batchSize, 1)
	n := (totalItems + batchSize - 1) / batchSize
	width := max(3, len(fmt.Sprint(n)))
	var out []BatchCursor
	for k, start := 0, 0; start < totalItems; k, start = k+1, start+batchSize {
		end := min(start+batchSize, totalItems)
		out = append(out, BatchCursor{BatchID: fmt.Sprintf("%0*d", width, k+1), StartCursor: start, EndCursor: end, BatchSize: end - start})
	}
	return out
}

// cursors parses the result of batchable step spec and returns its
// batches, or an error saying what is wrong.
func (t *Template) cursors(spec *StepSpec, result json.RawMessage) ([]BatchCursor, error) {
	var b struct {
		Outcome *BatchOutcome `json:"batch_processing_outcome"`
	}
	if err := json.Unmarshal(result, &b); err != nil || b.Outcome == nil {
		return nil, fmt.Errorf("batchable step %q returned no batch_processing_outcome (use tasker.CreateBatches or tasker.NoBatches)", spec.Name)
	}
	switch o := b.Outcome; {
	case o.Type == "no_batches":
		return nil, nil
	case o.Type != "create_batches":
		return nil, fmt.Errorf("batchable step %q returned outcome type %q, want create_batches or no_batches", spec.Name, o.Type)
	case len(o.CursorConfigs) > MaxBatches:
		return nil, fmt.Errorf("batchable step %q returned %d batches, over %d", spec.Name, len(o.CursorConfigs), MaxBatches)
	}
	seen := make(map[string]bool)
	for _, c := range b.Outcome.CursorConfigs {
		if !batchID.MatchString(c.BatchID) || seen[c.BatchID] {
			return nil, fmt.Errorf("batchable step %q returned batch id %q: want a unique id of lower-case letters, digits and _", spec.Name, c.BatchID)
		}
		seen[c.BatchID] = true
	}
	return b.Outcome.CursorConfigs, nil
}

var batchID = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)

// instance returns the spec of the batch worker of cursor c, the k-th
// batch of worker template w, at index i of its task's steps: w's handler
// and policy under its own name, depending on w's batchable step.
func instance(w *StepSpec, c BatchCursor, i int) *StepSpec {
	in := *w
	in.Name = w.Name + "_" + c.BatchID
	in.index, in.deps = i, []int{w.decisionParent}
	in.atStart, in.decisionParent, in.of = false, -1, w
	in.cursor, _ = json.Marshal(c)
	return &in
}

// isWorkerName reports whether name could be a batch worker instance of
// one of t's worker templates: "{worker_template}_{batch_id}".
func (t *Template) isWorkerName(name string) bool {
	for _, s := range t.Steps {
		if s.Type == StepBatchWorker && strings.HasPrefix(name, s.Name+"_") && batchID.MatchString(name[len(s.Name)+1:]) {
			return true
		}
	}
	return false
}
