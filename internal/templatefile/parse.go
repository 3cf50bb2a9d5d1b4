package templatefile

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// The fields each mapping of a template may hold, Tasker's legacy ones
// included (see legacyFields).
var (
	templateFields = []string{"name", "namespace_name", "version", "description", "metadata",
		"system_dependencies", "domain_events", "input_schema", "steps", "environments", "lifecycle",
		"identity_strategy"}
	stepFields = []string{"name", "description", "type", "step_type", "handler", "system_dependency",
		"dependencies", "depends_on", "retry", "timeout_seconds", "publishes_events", "batch_config",
		"result_schema", "composition", "lifecycle"}
	handlerFields = []string{"callable", "method", "resolver", "initialization"}
	retryFields   = []string{"retryable", "max_attempts", "backoff", "backoff_base_ms", "max_backoff_ms",
		"limit", "initial_delay", "max_delay"}
)

// legacyFields maps, per kind of mapping, the fields Tasker accepts and
// ignores to the field it actually reads.
var legacyFields = map[string]map[string]string{
	"step":  {"lifecycle": "the template-level lifecycle"},
	"retry": {"limit": "max_attempts", "initial_delay": "backoff_base_ms", "max_delay": "max_backoff_ms"},
}

// decimalPattern matches a plain decimal integer of any length.
var decimalPattern = regexp.MustCompile(`^[-+]?[0-9]+$`)

// stepSource keeps what linking a step needs from its YAML: where it is.
type stepSource struct {
	node   *yaml.Node   // the step's mapping
	fields *yamlMapping // its fields; nil when it is not a mapping
	name   *yaml.Node   // its name value; nil when absent
	worker *yaml.Node   // its batch_config.worker_template value; nil when absent
	deps   []depRef
}

// depRef is one entry of a step's dependencies list.
type depRef struct {
	name  string
	node  *yaml.Node
	field string // such as "steps[1].dependencies[0]"
}

// parse walks the YAML of one template; every problem is recorded in p.
func (p *parser) parse(data []byte) *File {
	root := p.document(data)
	if root == nil {
		return nil
	}
	m := p.mapping(root, "", templateFields)
	if m == nil {
		return nil
	}
	t := &File{Source: p.file}
	t.Name, _ = p.name(m, "name")
	t.Namespace = p.namespace(m)
	t.Version = p.version(m)
	t.Description, _ = p.str(m, "description", false)
	t.Metadata = p.metadata(m)
	t.SystemDependencies = p.systemDependencies(m)
	t.DomainEvents = p.domainEvents(m)
	t.InputSchema, t.Schema = p.schema(m, "input_schema")
	t.Lifecycle = p.lifecycle(m)
	t.IdentityStrategy = p.enum(m, "identity_strategy", "always_unique", "strict", "caller_provided", "always_unique")
	var srcs []stepSource
	t.Steps, srcs = p.steps(m, t.DomainEvents)
	p.link(t, srcs)
	t.Environments = p.environments(m, t.ByName)
	slices.SortStableFunc(p.warns, func(a, b *Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), strings.Compare(a.Field, b.Field))
	})
	t.Warnings = p.warns
	return t
}

// document decodes the single YAML document of a template file and returns
// its root node, or nil after reporting why there is none.
func (p *parser) document(data []byte) *yaml.Node {
	if len(data) > MaxBytes {
		p.errorf(nil, "", "file too large: more than %d bytes", MaxBytes)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(nil, "", "empty file: want a template mapping")
		} else {
			p.yamlError(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		p.errorf(&extra, "", "more than one YAML document: a template file holds exactly one")
	case !errors.Is(err, io.EOF):
		p.yamlError(err)
	}
	if len(doc.Content) != 1 {
		p.errorf(&doc, "", "empty document: want a template mapping")
		return nil
	}
	return doc.Content[0]
}

// mapping reads the mapping n at path, reporting keys not in allowed. It
// returns nil, having reported it, when n is not a mapping.
func (p *parser) mapping(n *yaml.Node, path string, allowed []string) *yamlMapping {
	if n.Kind != yaml.MappingNode {
		what := "must be"
		if path == "" {
			what = "a template must be"
		}
		p.errorf(n, path, "%s a mapping, got %s", what, describeNode(n))
		return nil
	}
	m := &yamlMapping{node: n, path: path, vals: make(map[string]*yaml.Node, len(n.Content)/2),
		keys: make(map[string]*yaml.Node, len(n.Content)/2)}
	for _, kv := range p.pairs(n, path) {
		if !slices.Contains(allowed, kv.key.Value) {
			p.unknownField(kv.key, m.field(kv.key.Value), allowed)
			continue
		}
		m.vals[kv.key.Value] = kv.val
		m.keys[kv.key.Value] = kv.key
	}
	return m
}

// value returns the value at key, or nil when it is absent or null.
func (m *yamlMapping) value(key string) *yaml.Node {
	if n := m.vals[key]; n != nil && !isNullNode(n) {
		return n
	}
	return nil
}

// required returns the value at key, reporting its absence.
func (p *parser) required(m *yamlMapping, key string) *yaml.Node {
	n := m.value(key)
	if n == nil {
		at := m.vals[key]
		if at == nil {
			at = m.node
		}
		p.errorf(at, m.field(key), "is required")
	}
	return n
}

// str returns the string at key and its node; the node is nil when the value
// is absent or not a string. A required string must not be blank.
func (p *parser) str(m *yamlMapping, key string, required bool) (string, *yaml.Node) {
	n := m.value(key)
	if required {
		n = p.required(m, key)
	}
	switch {
	case n == nil:
		return "", nil
	case n.Kind == yaml.ScalarNode && n.ShortTag() != "!!str":
		p.errorf(n, m.field(key), "must be a string, got %s %s (quote it)", describeNode(n), n.Value)
		return "", nil
	case n.Kind != yaml.ScalarNode:
		p.errorf(n, m.field(key), "must be a string, got %s", describeNode(n))
		return "", nil
	case required && strings.TrimSpace(n.Value) == "":
		p.errorf(n, m.field(key), "must not be empty")
		return "", nil
	}
	return n.Value, n
}

// name returns the required name at key, which must match namePattern.
func (p *parser) name(m *yamlMapping, key string) (string, *yaml.Node) {
	s, n := p.str(m, key, true)
	if n != nil && !NamePattern.MatchString(s) {
		p.errorf(n, m.field(key), "%q must match %s", s, NamePattern)
	}
	return s, n
}

func (p *parser) namespace(m *yamlMapping) string {
	s, n := p.name(m, "namespace_name")
	if l := utf8.RuneCountInString(s); l > MaxNamespaceLen {
		p.errorf(n, m.field("namespace_name"), "%q is %d characters long, the limit is %d", s, l, MaxNamespaceLen)
	}
	return s
}

func (p *parser) version(m *yamlMapping) string {
	s, n := p.str(m, "version", true)
	if n != nil && !VersionPattern.MatchString(s) {
		p.errorf(n, m.field("version"), "%q is not MAJOR.MINOR.PATCH (digits only, such as \"1.0.0\")", s)
	}
	return s
}

// integer returns the integer at key; ok is false when it is absent or
// reported as malformed.
func (p *parser) integer(m *yamlMapping, key string) (v int64, ok bool) {
	n := m.value(key)
	if n == nil {
		return 0, false
	}
	if n.ShortTag() == "!!float" && decimalPattern.MatchString(n.Value) {
		// YAML resolves an integer too long for 64 bits as a float.
		p.errorf(n, m.field(key), "%s is out of range", n.Value)
		return 0, false
	}
	if n.ShortTag() != "!!int" {
		p.errorf(n, m.field(key), "must be an integer, got %s", describeNode(n))
		return 0, false
	}
	if err := n.Decode(&v); err != nil {
		p.errorf(n, m.field(key), "%s is out of range", n.Value)
		return 0, false
	}
	return v, true
}

// duration returns the integer at key in the given unit; ok is false when it
// is absent or malformed. It reports values that overflow a time.Duration.
func (p *parser) duration(m *yamlMapping, key string, unit time.Duration) (d time.Duration, ok bool) {
	v, ok := p.integer(m, key)
	if limit := int64(math.MaxInt64 / unit); ok && (v > limit || v < -limit) {
		p.errorf(m.vals[key], m.field(key), "%d is out of range", v)
		return 0, false
	}
	return time.Duration(v) * unit, ok
}

// boolean returns the boolean at key; ok is false when it is absent or
// malformed.
func (p *parser) boolean(m *yamlMapping, key string) (v, ok bool) {
	n := m.value(key)
	if n == nil {
		return false, false
	}
	if n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		p.errorf(n, m.field(key), "must be true or false, got %s", describeNode(n))
		return false, false
	}
	return v, true
}

// steps reads the steps list; it returns one Step per entry, even a
// malformed one, so that indexes match the file.
func (p *parser) steps(m *yamlMapping, events []DomainEvent) ([]*Step, []stepSource) {
	n := p.required(m, "steps")
	if n == nil {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "steps", "must be a list of steps, got %s", describeNode(n))
		return nil, nil
	}
	items := p.items(n)
	if len(items) == 0 && !p.exhausted {
		p.errorf(n, "steps", "must list at least one step")
	}
	specs := make([]*Step, len(items))
	srcs := make([]stepSource, len(items))
	for i, item := range items {
		specs[i], srcs[i] = p.step(item, fmt.Sprintf("steps[%d]", i), events)
		specs[i].Index = i
	}
	return specs, srcs
}

// step reads one step at path.
func (p *parser) step(n *yaml.Node, path string, events []DomainEvent) (*Step, stepSource) {
	s := &Step{Retry: DefaultRetry(), Initialization: json.RawMessage("{}"), Type: StepStandard, Method: "call"}
	src := stepSource{node: n}
	m := p.mapping(n, path, stepFields)
	if m == nil {
		return s, src
	}
	src.fields = m
	s.Name, src.name = p.name(m, "name")
	s.Description, _ = p.str(m, "description", false)
	s.Type = p.enum(m, p.alias(m, "type", "step_type"), StepStandard, stepTypes...)
	s.SystemDependency, _ = p.str(m, "system_dependency", false)
	s.Callable, s.Method, s.Initialization = p.handler(m)
	src.deps = p.dependencies(m, p.alias(m, "dependencies", "depends_on"))
	for _, d := range src.deps {
		s.Dependencies = append(s.Dependencies, d.name)
	}
	s.Retry = p.retry(m)
	s.Timeout, _ = p.timeout(m)
	s.PublishesEvents = p.publishesEvents(m, events)
	s.BatchConfig, src.worker = p.batchConfig(m)
	s.ResultSchema, s.ResultCompiled = p.schema(m, "result_schema")
	if n := m.keys["composition"]; n != nil {
		p.errorf(n, m.field("composition"), "is not supported: list the composed template's steps in this template")
	}
	p.warnLegacy(m, "step")
	return s, src
}

// timeout reads timeout_seconds; ok is false when it is absent or malformed.
func (p *parser) timeout(m *yamlMapping) (d time.Duration, ok bool) {
	d, ok = p.duration(m, "timeout_seconds", time.Second)
	if ok && d < 0 {
		p.errorf(m.vals["timeout_seconds"], m.field("timeout_seconds"), "must not be negative, got %d", d/time.Second)
	}
	return max(d, 0), ok
}

// handler reads a step's handler block: its callable, method and
// initialization.
func (p *parser) handler(step *yamlMapping) (callable, method string, init json.RawMessage) {
	init, method = json.RawMessage("{}"), "call"
	n := p.required(step, "handler")
	if n == nil {
		return "", method, init
	}
	h := p.mapping(n, step.field("handler"), handlerFields)
	if h == nil {
		return "", method, init
	}
	callable, _ = p.str(h, "callable", true)
	if s, n := p.str(h, "method", false); n != nil {
		if strings.TrimSpace(s) == "" {
			p.errorf(n, h.field("method"), "must not be empty")
		} else {
			method = s
		}
	}
	if s, n := p.str(h, "resolver", false); n != nil && s != "explicit_mapping" {
		p.errorf(n, h.field("resolver"), "resolver %q is not supported: handlers are registered by callable (explicit_mapping)", s)
	}
	if raw := p.initialization(h); raw != nil {
		init = raw
	}
	return callable, method, init
}

// initialization reads handler.initialization, a mapping, as a JSON object;
// nil when absent or malformed.
func (p *parser) initialization(h *yamlMapping) json.RawMessage {
	n := h.value("initialization")
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, h.field("initialization"), "must be a mapping, got %s", describeNode(n))
		return nil
	}
	raw, _ := p.toJSON(n, h.field("initialization"))
	return raw
}

// dependencies reads a step's dependencies list; malformed entries are
// reported and left out.
func (p *parser) dependencies(step *yamlMapping, key string) []depRef {
	n := step.value(key)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, step.field(key), "must be a list of step names, got %s", describeNode(n))
		return nil
	}
	var deps []depRef
	for j, item := range p.items(n) {
		field := fmt.Sprintf("%s[%d]", step.field(key), j)
		if item.ShortTag() != "!!str" || item.Value == "" {
			p.errorf(item, field, "must be a step name, got %s", describeNodeValue(item))
			continue
		}
		deps = append(deps, depRef{name: item.Value, node: item, field: field})
	}
	return deps
}

// retry reads a step's retry block; every field it omits keeps its default.
func (p *parser) retry(step *yamlMapping) Retry {
	pol := DefaultRetry()
	n := step.value("retry")
	if n == nil {
		return pol
	}
	r := p.mapping(n, step.field("retry"), retryFields)
	if r == nil {
		return pol
	}
	if v, ok := p.boolean(r, "retryable"); ok {
		pol.Retryable = v
	}
	if v, ok := p.integer(r, "max_attempts"); ok {
		pol.MaxAttempts = int(v)
		if int64(pol.MaxAttempts) != v {
			p.errorf(r.vals["max_attempts"], r.field("max_attempts"), "%d is out of range", v)
		}
	}
	if s, n := p.str(r, "backoff", false); n != nil {
		pol.Backoff = s
	}
	if d, ok := p.duration(r, "backoff_base_ms", time.Millisecond); ok {
		pol.BaseDelay = d
	}
	if d, ok := p.duration(r, "max_backoff_ms", time.Millisecond); ok {
		pol.MaxDelay = d
	}
	p.checkRetry(r, &pol)
	p.warnLegacy(r, "retry")
	return pol
}

// checkRetry reports every field of pol that Retry.Check refuses,
// resetting each to its default to find the next.
func (p *parser) checkRetry(r *yamlMapping, pol *Retry) {
	def := DefaultRetry()
	for range retryFields {
		field, err := pol.Check()
		if err == nil {
			return
		}
		at := r.vals[field]
		if at == nil {
			at = r.node
		}
		p.errorf(at, r.field(field), "%v", err)
		switch field {
		case "max_attempts":
			pol.MaxAttempts = def.MaxAttempts
		case "backoff_base_ms":
			pol.BaseDelay = def.BaseDelay
		case "max_backoff_ms":
			pol.MaxDelay = def.MaxDelay
		default:
			pol.Backoff = def.Backoff
		}
	}
}
