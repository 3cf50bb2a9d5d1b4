package tasker

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gotasker/tasker/internal/templatefile"
	"github.com/xeipuuv/gojsonschema"
)

// Template is a loaded, validated task template: a named, versioned DAG of
// steps with an optional JSON Schema for task input. Get one from
// ParseTemplate, LoadTemplateFile, LoadTemplates or LoadTemplateDir.
//
// A Template is immutable once loaded and safe for concurrent use. Callers
// must not modify it, its steps or their slices.
type Template struct {
	Name        string // matches ^[a-z][a-z0-9_]*$
	Namespace   string // namespace_name: ^[a-z][a-z0-9_]*$, at most 29 characters
	Version     string // MAJOR.MINOR.PATCH, digits only, no leading zeros
	Description string // "" when absent

	// Steps holds every step, in file order; there is at least one.
	Steps []*StepSpec
	// InputSchema is input_schema converted to JSON; nil when absent.
	InputSchema json.RawMessage
	// Source is the file the template was loaded from, as given to
	// ParseTemplate or as found by a Load function.
	Source string

	// Metadata is the metadata block; zero when absent.
	Metadata Metadata
	// SystemDependencies is the system_dependencies block; Primary is
	// "default" when absent.
	SystemDependencies SystemDependencies
	// DomainEvents lists domain_events, in file order.
	DomainEvents []DomainEvent
	// Lifecycle is the lifecycle block; nil when absent.
	Lifecycle *Lifecycle
	// IdentityStrategy is identity_strategy: what identifies a task
	// submitted without an idempotency key (a key given always does):
	// IdentityAlwaysUnique (the default) makes it a new task,
	// IdentityStrict derives its key from the canonical input, and
	// IdentityCallerProvided refuses it. The default is not Tasker's strict:
	// two submissions of equal input are two orders more often than one
	// order sent twice, and a caller that means dedup says so with a key.
	IdentityStrategy IdentityStrategy
	// Warnings lists the fields that loaded but are ignored (Tasker's
	// legacy fields), in line order; nil when there are none.
	Warnings []TemplateWarning

	schema       *gojsonschema.Schema                   // compiled InputSchema; nil when absent
	byName       map[string]int                         // step name → index in Steps
	topo         []int                                  // step indexes, dependencies first
	dynamic      bool                                   // some step is created by a decision
	environments map[string][]templatefile.StepOverride // environments block, by name
}

// StepSpec is one step of a Template: what to call, what it waits for, and
// how it is retried. It is immutable and shared by every task of the
// template.
type StepSpec struct {
	Name        string // matches ^[a-z][a-z0-9_]*$, unique in its template
	Description string // "" when absent

	// Callable is handler.callable, the name a handler is registered under.
	Callable string
	// Initialization is handler.initialization as a JSON object; "{}" when
	// absent or empty.
	Initialization json.RawMessage
	// Dependencies names the steps that must complete before this one, in
	// file order; nil when there are none.
	Dependencies []string
	// Retry is the retry block; each omitted field has its default, as in
	// DefaultRetryPolicy.
	Retry RetryPolicy
	// Timeout is timeout_seconds; zero means no timeout.
	Timeout time.Duration

	// Type is type (or its alias step_type); StepStandard when absent.
	Type StepType
	// SystemDependency is system_dependency, the system the step talks
	// to; "" when absent.
	SystemDependency string
	// Method is handler.method, the handler's entry point in Tasker;
	// "call" when absent. StepContext.Method returns it, and a Methods
	// handler dispatches on it.
	Method string
	// PublishesEvents lists publishes_events, in file order.
	PublishesEvents []EventDeclaration
	// BatchConfig is batch_config, only on a batchable step; nil when
	// absent.
	BatchConfig *BatchConfig
	// ResultSchema is result_schema, a JSON Schema of the step's result
	// that compiled at load; nil when absent.
	ResultSchema json.RawMessage

	resultSchema *gojsonschema.Schema // compiled ResultSchema; nil when absent
	events       []eventSpec          // PublishesEvents, ready to publish; nil when none

	index      int   // position in Template.Steps
	deps       []int // indexes of Dependencies, in the same order
	dependents []int // indexes of the steps that depend on this one, ascending

	decisionParent int  // index of the decision or batchable step that creates this one; -1 when none
	atStart        bool // a new task has this step: it is not downstream of a decision or batch

	of     *StepSpec       // for a batch worker instance: its worker template; nil otherwise
	cursor json.RawMessage // for a batch worker instance: its BatchCursor
}

// ParseTemplate parses and validates one YAML task template. The file name is
// used only in errors and as the template's Source.
//
// Validation is strict: unknown fields, missing or malformed names, unknown,
// duplicate or self dependencies, dependency cycles, out-of-range retry
// values and an input_schema that does not compile are all errors. Every
// problem in the file is reported: the error joins (errors.Join) one
// *TemplateError per problem, each wrapping ErrInvalidTemplate.
func ParseTemplate(file string, data []byte) (*Template, error) {
	f, probs := templatefile.Parse(file, data)
	if len(probs) > 0 {
		errs := make([]error, len(probs))
		for i, p := range probs {
			errs[i] = (*TemplateError)(p)
		}
		return nil, errors.Join(errs...)
	}
	return newTemplate(f), nil
}

// newTemplate converts a parsed template file into a Template.
func newTemplate(f *templatefile.File) *Template {
	t := &Template{
		Name:               f.Name,
		Namespace:          f.Namespace,
		Version:            f.Version,
		Description:        f.Description,
		Steps:              make([]*StepSpec, len(f.Steps)),
		InputSchema:        f.InputSchema,
		Source:             f.Source,
		Metadata:           Metadata(f.Metadata),
		SystemDependencies: SystemDependencies(f.SystemDependencies),
		DomainEvents:       convertAll(f.DomainEvents, func(e templatefile.DomainEvent) DomainEvent { return DomainEvent(e) }),
		IdentityStrategy:   IdentityStrategy(f.IdentityStrategy),
		Warnings:           convertAll(f.Warnings, func(w *templatefile.Problem) TemplateWarning { return TemplateWarning(*w) }),
		schema:             f.Schema,
		byName:             f.ByName,
		environments:       f.Environments,
	}
	if f.Lifecycle != nil {
		lc := Lifecycle(*f.Lifecycle)
		t.Lifecycle = &lc
	}
	for i, s := range f.Steps {
		t.Steps[i] = newStepSpec(s)
	}
	t.prepareEvents()
	t.analyze()
	return t
}

// newStepSpec converts a parsed step into a StepSpec.
func newStepSpec(s *templatefile.Step) *StepSpec {
	spec := &StepSpec{
		Name:             s.Name,
		Description:      s.Description,
		Callable:         s.Callable,
		Initialization:   s.Initialization,
		Dependencies:     s.Dependencies,
		Retry:            newRetryPolicy(s.Retry),
		Timeout:          s.Timeout,
		Type:             StepType(s.Type),
		SystemDependency: s.SystemDependency,
		Method:           s.Method,
		PublishesEvents: convertAll(s.PublishesEvents, func(e templatefile.EventDeclaration) EventDeclaration {
			return EventDeclaration(e)
		}),
		ResultSchema: s.ResultSchema,
		resultSchema: s.ResultCompiled,
		index:        s.Index,
		deps:         s.Deps,
		dependents:   s.Dependents,
	}
	if s.BatchConfig != nil {
		bc := BatchConfig(*s.BatchConfig)
		spec.BatchConfig = &bc
	}
	return spec
}

// marshalJSON encodes v as JSON without escaping HTML characters, so that
// "<" is stored as "<", not "\u003c"; see templatefile.MarshalJSON.
func marshalJSON(v any) ([]byte, error) { return templatefile.MarshalJSON(v) }

// convertAll converts each element of xs; nil when xs is empty.
func convertAll[T, U any](xs []T, f func(T) U) []U {
	if len(xs) == 0 {
		return nil
	}
	out := make([]U, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// ForEnvironment returns t with the overrides of the named environment of
// its environments block applied, or t itself when name is "" or an
// environment t does not define. In the copy, each overridden step's
// handler initialization has the override's keys merged in (the override
// wins), its timeout_seconds and its whole retry block are replaced when the
// override gives them; an override named ALL applies to every step, and one
// naming the step is applied after it. t is not modified.
func (t *Template) ForEnvironment(name string) *Template {
	overrides, ok := t.environments[name]
	if name == "" || !ok {
		return t
	}
	c := *t
	c.Steps = make([]*StepSpec, len(t.Steps))
	for i, s := range t.Steps {
		cs := *s
		for _, all := range []bool{true, false} {
			for _, o := range overrides {
				if (o.Name == templatefile.AllSteps) == all && (all || o.Name == s.Name) {
					cs.override(o)
				}
			}
		}
		c.Steps[i] = &cs
	}
	return &c
}

// override applies one environment override to s.
func (s *StepSpec) override(o templatefile.StepOverride) {
	if o.Initialization != nil {
		s.Initialization = mergeObjects(s.Initialization, o.Initialization)
	}
	if o.HasTimeout {
		s.Timeout = o.Timeout
	}
	if o.Retry != nil {
		s.Retry = newRetryPolicy(*o.Retry)
	}
}

// mergeObjects returns the JSON object base with the keys of over set, over
// winning. Both are JSON objects, as loading checked.
func mergeObjects(base, over json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(base, &m); err != nil || m == nil {
		m = make(map[string]json.RawMessage)
	}
	var o map[string]json.RawMessage
	_ = json.Unmarshal(over, &o) // loading checked it is an object
	maps.Copy(m, o)
	out, err := toJSON("initialization", m)
	if err != nil {
		return base
	}
	return out
}

// LoadTemplateFile reads and parses the template in the file at path; see
// ParseTemplate.
func LoadTemplateFile(path string) (*Template, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tasker: load template: %w", err)
	}
	return readTemplate(f, path)
}

// LoadTemplates loads every *.yaml and *.yml file under fsys, in any
// directory, in path order, skipping hidden files and directories (names
// starting with ".", such as editor backups or .git). It is all or nothing: if any file is invalid, or
// two files define the same namespace, name and version (ErrDuplicateTemplate),
// it returns no templates and an error joining the problems of every file.
// A tree with no template files yields no templates and no error.
func LoadTemplates(fsys fs.FS) ([]*Template, error) {
	return loadTemplates(fsys, func(name string) string { return name })
}

// LoadTemplateDir is LoadTemplates(os.DirFS(dir)), except that file names in
// errors and in Template.Source include dir.
func LoadTemplateDir(dir string) ([]*Template, error) {
	return loadTemplates(os.DirFS(dir), func(name string) string {
		return filepath.Join(dir, filepath.FromSlash(name))
	})
}

// String returns "namespace/name@version".
func (t *Template) String() string {
	return t.Namespace + "/" + t.Name + "@" + t.Version
}

// Step returns the step with the given name, or nil if there is none.
func (t *Template) Step(name string) *StepSpec {
	i, ok := t.byName[name]
	if !ok {
		return nil
	}
	return t.Steps[i]
}

// loadTemplates loads the template files of fsys; display maps a path in
// fsys to the name used in errors and Source.
func loadTemplates(fsys fs.FS, display func(string) string) ([]*Template, error) {
	names, err := templateFiles(fsys)
	if err != nil {
		return nil, fmt.Errorf("tasker: load templates from %s: %w", display("."), err)
	}
	var (
		ts   []*Template
		errs []error
	)
	for _, name := range names {
		t, err := openTemplate(fsys, name, display(name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ts = append(ts, t)
	}
	errs = append(errs, duplicateTemplates(ts)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ts, nil
}

// templateFiles lists the *.yaml and *.yml files under fsys, sorted. Hidden
// files and directories, whose names start with ".", are skipped.
func templateFiles(fsys fs.FS) ([]string, error) {
	var names []string
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if ext := path.Ext(name); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			names = append(names, name)
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

func openTemplate(fsys fs.FS, name, display string) (*Template, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("tasker: load template %s: %w", display, err)
	}
	return readTemplate(f, display)
}

// readTemplate parses the template read from f, then closes f. It reads one
// byte more than the limit so that ParseTemplate reports an oversized file.
func readTemplate(f io.ReadCloser, display string) (*Template, error) {
	data, err := io.ReadAll(io.LimitReader(f, templatefile.MaxBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("tasker: load template %s: %w", display, err)
	}
	return ParseTemplate(display, data)
}

// duplicateTemplates reports templates with the same namespace, name and
// version as an earlier one.
func duplicateTemplates(ts []*Template) []error {
	var errs []error
	first := make(map[string]*Template, len(ts))
	for _, t := range ts {
		key := t.String()
		if f, ok := first[key]; ok {
			errs = append(errs, fmt.Errorf("%s: %w: %s, first defined in %s",
				t.Source, ErrDuplicateTemplate, key, f.Source))
			continue
		}
		first[key] = t
	}
	return errs
}

// compareVersions compares two MAJOR.MINOR.PATCH versions numerically and
// returns -1, 0 or +1. Components may be arbitrarily long. A malformed
// version sorts before every well-formed one; two malformed versions compare
// as strings.
func compareVersions(a, b string) int {
	va, okA := splitVersion(a)
	vb, okB := splitVersion(b)
	switch {
	case !okA && !okB:
		return strings.Compare(a, b)
	case !okA:
		return -1
	case !okB:
		return 1
	}
	for i := range va {
		if c := compareDigits(va[i], vb[i]); c != 0 {
			return c
		}
	}
	return 0
}

// splitVersion splits "1.22.333" into its three digit strings.
func splitVersion(v string) ([3]string, bool) {
	var out [3]string
	parts := strings.Split(v, ".")
	if len(parts) != len(out) {
		return out, false
	}
	for i, s := range parts {
		if s == "" || strings.Trim(s, "0123456789") != "" {
			return out, false
		}
		out[i] = s
	}
	return out, true
}

// compareDigits compares two non-negative decimal integers of any length.
func compareDigits(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}
