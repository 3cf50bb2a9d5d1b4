package templatefile

import (
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"
)

// The step types of Tasker's template model.
const (
	StepStandard            = "standard"
	StepDecision            = "decision"
	StepDeferredConvergence = "deferred_convergence"
	StepBatchable           = "batchable"
	StepBatchWorker         = "batch_worker"
)

var (
	stepTypes = []string{StepStandard, StepDecision, StepDeferredConvergence, StepBatchable, StepBatchWorker}

	publishFields = []string{"name", "description", "schema", "condition", "delivery_mode", "publisher"}
	conditions    = []string{"success", "failure", "retryable_failure", "permanent_failure", "always"}
	deliveryModes = []string{"durable", "fast", "broadcast"}

	batchFields       = []string{"batch_size", "parallelism", "cursor_field", "worker_template", "failure_strategy"}
	failureStrategies = []string{"continue_on_failure", "fail_fast", "isolate"}
)

// publishesEvents reads a step's publishes_events. A declared event must be
// one of the template's domain_events or carry its own schema.
func (p *parser) publishesEvents(step *yamlMapping, events []DomainEvent) []EventDeclaration {
	var out []EventDeclaration
	for i, item := range p.list(step, "publishes_events", "events") {
		e := p.mapping(item, fmt.Sprintf("%s[%d]", step.field("publishes_events"), i), publishFields)
		if e == nil {
			continue
		}
		name, n := p.str(e, "name", true)
		if n == nil {
			continue
		}
		d := EventDeclaration{Name: name}
		d.Description, _ = p.str(e, "description", false)
		d.Schema, _ = p.schema(e, "schema")
		d.Condition = p.enum(e, "condition", "success", conditions...)
		d.DeliveryMode = p.enum(e, "delivery_mode", "durable", deliveryModes...)
		d.Publisher, _ = p.str(e, "publisher", false)
		declared := slices.ContainsFunc(events, func(ev DomainEvent) bool { return ev.Name == name })
		if e.value("schema") == nil && !declared {
			p.errorf(n, e.field("name"), "event %q is not in domain_events and has no schema of its own", name)
		}
		out = append(out, d)
	}
	return out
}

// batchConfig reads a step's batch_config and returns it, nil when absent,
// and where its worker_template is.
func (p *parser) batchConfig(step *yamlMapping) (*BatchConfig, *yaml.Node) {
	b := p.block(step, "batch_config", batchFields)
	if b == nil {
		return nil, nil
	}
	bc := &BatchConfig{
		BatchSize:       p.intRange(b, "batch_size", 1000, 1, 100000),
		Parallelism:     p.intRange(b, "parallelism", 10, 1, 1000),
		CursorField:     "id",
		FailureStrategy: p.enum(b, "failure_strategy", "continue_on_failure", failureStrategies...),
	}
	if s, n := p.str(b, "cursor_field", false); n != nil {
		if s == "" {
			p.errorf(n, b.field("cursor_field"), "must not be empty")
		} else {
			bc.CursorField = s
		}
	}
	var at *yaml.Node
	bc.WorkerTemplate, at = p.str(b, "worker_template", true)
	return bc, at
}

// checkTypes checks Tasker's construction rules of the step types: a
// decision or a deferred convergence lists its (possible) dependencies; a
// batchable step's batch_config names a batch_worker step; a batch_worker is
// named so and depends on a batchable step; only a batchable step has a
// batch_config.
func (p *parser) checkTypes(f *File, srcs []stepSource) {
	named := make(map[string]bool)
	for i, s := range f.Steps {
		if srcs[i].fields != nil && s.Type == StepBatchable {
			p.checkBatchable(f, s, srcs[i])
			named[s.BatchConfig.worker()] = true
		}
	}
	for i, s := range f.Steps {
		m := srcs[i].fields
		if m == nil {
			continue
		}
		at, field := p.typeNode(m)
		switch {
		case s.BatchConfig != nil && s.Type != StepBatchable:
			p.errorf(m.keys["batch_config"], m.field("batch_config"), "only a batchable step has a batch_config, this one is %s", s.Type)
		case s.Type == StepDecision && len(s.Dependencies) == 0:
			p.errorf(at, field, "a decision step needs at least one dependency")
		case s.Type == StepDeferredConvergence && len(s.Dependencies) == 0:
			p.errorf(at, field, "a deferred_convergence step must list its possible dependencies")
		case s.Type == StepBatchWorker && !named[s.Name]:
			p.errorf(at, field, "batch_worker %q is not the worker_template of any batchable step's batch_config", s.Name)
		case s.Type == StepBatchWorker && !slices.ContainsFunc(s.Deps, func(d int) bool { return f.Steps[d].Type == StepBatchable }):
			p.errorf(at, field, "batch_worker %q must depend on a batchable step", s.Name)
		}
	}
}

// checkBatchable checks that the batchable step s has a batch_config whose
// worker_template is a batch_worker step.
func (p *parser) checkBatchable(f *File, s *Step, src stepSource) {
	if s.BatchConfig == nil {
		at, field := p.typeNode(src.fields)
		p.errorf(at, field, "a batchable step needs a batch_config naming its worker_template")
		return
	}
	w := s.BatchConfig.WorkerTemplate
	at, field := src.worker, src.fields.field("batch_config")+".worker_template"
	j, known := f.ByName[w]
	switch {
	case at == nil:
	case !known:
		p.errorf(at, field, "unknown step %q", w)
	case f.Steps[j].Type != StepBatchWorker:
		p.errorf(at, field, "step %q is %s, not a batch_worker", w, f.Steps[j].Type)
	}
}

// worker returns the worker_template of bc, or "" when bc is nil.
func (bc *BatchConfig) worker() string {
	if bc == nil {
		return ""
	}
	return bc.WorkerTemplate
}

// typeNode returns where a step's type is given, and its field path; the
// step itself when it is not.
func (p *parser) typeNode(m *yamlMapping) (*yaml.Node, string) {
	for _, key := range []string{"type", "step_type"} {
		if n := m.vals[key]; n != nil {
			return n, m.field(key)
		}
	}
	return m.node, m.field("type")
}
