package templatefile

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// The fields of the template's sections, and the values of its enums.
var (
	metadataFields  = []string{"author", "tags", "documentation_url", "created_at", "updated_at"}
	systemFields    = []string{"primary", "secondary"}
	eventFields     = []string{"name", "description", "schema"}
	lifecycleFields = []string{"max_duration_minutes", "max_waiting_for_dependencies_minutes",
		"max_waiting_for_retry_minutes", "max_steps_in_process_minutes", "staleness_action",
		"auto_fail_on_timeout", "auto_dlq_on_timeout"}
	environmentFields = []string{"steps"}
	overrideFields    = []string{"name", "handler", "timeout_seconds", "retry"}
	overrideHandler   = []string{"initialization"}
)

// AllSteps is the name of an environment override that applies to every step.
const AllSteps = "ALL"

// metadata reads the metadata block.
func (p *parser) metadata(m *yamlMapping) Metadata {
	var md Metadata
	b := p.block(m, "metadata", metadataFields)
	if b == nil {
		return md
	}
	md.Author, _ = p.str(b, "author", false)
	md.Tags = p.strList(b, "tags")
	md.DocumentationURL, _ = p.str(b, "documentation_url", false)
	md.CreatedAt = p.timestamp(b, "created_at")
	md.UpdatedAt = p.timestamp(b, "updated_at")
	return md
}

// systemDependencies reads the system_dependencies block.
func (p *parser) systemDependencies(m *yamlMapping) SystemDependencies {
	sd := SystemDependencies{Primary: "default"}
	b := p.block(m, "system_dependencies", systemFields)
	if b == nil {
		return sd
	}
	if s, n := p.str(b, "primary", false); n != nil {
		if s == "" {
			p.errorf(n, b.field("primary"), "must not be empty")
		} else {
			sd.Primary = s
		}
	}
	sd.Secondary = p.strList(b, "secondary")
	return sd
}

// domainEvents reads the domain_events list; each schema must compile.
func (p *parser) domainEvents(m *yamlMapping) []DomainEvent {
	var out []DomainEvent
	first := make(map[string]int)
	for i, item := range p.list(m, "domain_events", "events") {
		e := p.mapping(item, fmt.Sprintf("domain_events[%d]", i), eventFields)
		if e == nil {
			continue
		}
		name, n := p.str(e, "name", true)
		if n == nil {
			continue
		}
		if line, dup := first[name]; dup {
			p.errorf(n, e.field("name"), "duplicate domain event %q (first at line %d)", name, line)
			continue
		}
		first[name] = n.Line
		ev := DomainEvent{Name: name}
		ev.Description, _ = p.str(e, "description", false)
		ev.Schema, _ = p.schema(e, "schema")
		out = append(out, ev)
	}
	return out
}

// lifecycle reads the template's lifecycle block; nil when absent.
func (p *parser) lifecycle(m *yamlMapping) *Lifecycle {
	b := p.block(m, "lifecycle", lifecycleFields)
	if b == nil {
		return nil
	}
	lc := &Lifecycle{
		MaxDuration:               p.minutes(b, "max_duration_minutes"),
		MaxWaitingForDependencies: p.minutes(b, "max_waiting_for_dependencies_minutes"),
		MaxWaitingForRetry:        p.minutes(b, "max_waiting_for_retry_minutes"),
		MaxStepsInProcess:         p.minutes(b, "max_steps_in_process_minutes"),
		StalenessAction:           p.enum(b, "staleness_action", "dlq", "dlq", "error", "none"),
	}
	lc.AutoFailOnTimeout, _ = p.boolean(b, "auto_fail_on_timeout")
	lc.AutoDLQOnTimeout, _ = p.boolean(b, "auto_dlq_on_timeout")
	return lc
}

// environments reads the environments block: per environment, its step
// overrides, each naming a step of byName or ALL.
func (p *parser) environments(m *yamlMapping, byName map[string]int) map[string][]StepOverride {
	n := m.value("environments")
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "environments", "must be a mapping of environment names, got %s", describeNode(n))
		return nil
	}
	out := make(map[string][]StepOverride)
	for _, kv := range p.pairs(n, "environments") {
		path := joinField("environments", kv.key.Value)
		env := p.mapping(kv.val, path, environmentFields)
		if env == nil {
			continue
		}
		out[kv.key.Value] = []StepOverride{}
		for i, item := range p.list(env, "steps", "step overrides") {
			if o, ok := p.override(item, fmt.Sprintf("%s.steps[%d]", path, i), byName); ok {
				out[kv.key.Value] = append(out[kv.key.Value], o)
			}
		}
	}
	return out
}

// override reads one step override of an environment.
func (p *parser) override(n *yaml.Node, path string, byName map[string]int) (StepOverride, bool) {
	var o StepOverride
	m := p.mapping(n, path, overrideFields)
	if m == nil {
		return o, false
	}
	name, nn := p.str(m, "name", true)
	if nn == nil {
		return o, false
	}
	if _, known := byName[name]; !known && name != AllSteps {
		p.errorf(nn, m.field("name"), "unknown step %q (want a step of this template or %s)", name, AllSteps)
		return o, false
	}
	o.Name = name
	if h := p.block(m, "handler", overrideHandler); h != nil {
		o.Initialization = p.initialization(h)
	}
	o.Timeout, o.HasTimeout = p.timeout(m)
	if m.value("retry") != nil {
		r := p.retry(m)
		o.Retry = &r
	}
	return o, true
}
