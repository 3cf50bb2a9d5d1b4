// Package templatefile reads one YAML task template file: it walks the YAML,
// checks every field, links and checks the step graph and compiles the JSON
// schemas. It returns a plain description, a *File, and every problem found,
// each located by file, line and field. Package tasker turns the description
// into its public Template.
package templatefile

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/xeipuuv/gojsonschema"
)

// Limits that keep a hostile or mistaken template file from exhausting memory
// or time. Each is reported as a *Problem.
const (
	// MaxBytes is the largest template file accepted.
	MaxBytes = 32 << 20
	// MaxNodes bounds the YAML nodes visited in one file, aliases
	// expanded, so that an alias bomb is an error rather than an outage.
	MaxNodes = 4 << 20
	// MaxErrors bounds the problems reported for one file.
	MaxErrors = 100
	// MaxNamespaceLen is the longest namespace_name.
	MaxNamespaceLen = 29
)

// Read-only patterns of template and step names and of versions.
var (
	NamePattern    = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	VersionPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
)

// File is the description of one valid template file.
type File struct {
	Name        string
	Namespace   string
	Version     string
	Description string
	Source      string // the file name given to Parse

	// Steps holds every step, in file order.
	Steps []*Step
	// ByName maps each step name to its index in Steps.
	ByName map[string]int
	// InputSchema is input_schema as JSON; nil when absent.
	InputSchema json.RawMessage
	// Schema is InputSchema compiled; nil when absent.
	Schema *gojsonschema.Schema

	Metadata           Metadata
	SystemDependencies SystemDependencies
	DomainEvents       []DomainEvent
	// Environments holds the overrides of each environment, by name.
	Environments map[string][]StepOverride
	// Lifecycle is nil when absent.
	Lifecycle *Lifecycle
	// IdentityStrategy is strict, caller_provided or always_unique (the
	// default).
	IdentityStrategy string
	// Warnings lists the legacy fields that were read and ignored.
	Warnings []*Problem
}

// Metadata is a template's metadata block.
type Metadata struct {
	Author           string
	Tags             []string
	DocumentationURL string
	CreatedAt        time.Time // zero when absent
	UpdatedAt        time.Time // zero when absent
}

// SystemDependencies is a template's system_dependencies block.
type SystemDependencies struct {
	Primary   string // "default" when absent
	Secondary []string
}

// DomainEvent is one entry of domain_events.
type DomainEvent struct {
	Name        string
	Description string
	Schema      json.RawMessage // a JSON Schema that compiles; nil when absent
}

// EventDeclaration is one entry of a step's publishes_events.
type EventDeclaration struct {
	Name         string
	Description  string
	Schema       json.RawMessage // nil when absent: the domain event's schema applies
	Condition    string          // success (default), failure, retryable_failure, permanent_failure, always
	DeliveryMode string          // durable (default), fast, broadcast
	Publisher    string          // "" when absent
}

// BatchConfig is a batchable step's batch_config block.
type BatchConfig struct {
	BatchSize       int    // 1..100000, default 1000
	Parallelism     int    // 1..1000, default 10
	CursorField     string // default "id"
	WorkerTemplate  string // the batch_worker step
	FailureStrategy string // continue_on_failure (default), fail_fast, isolate
}

// Lifecycle is a template's lifecycle block; a zero duration is absent.
type Lifecycle struct {
	MaxDuration               time.Duration
	MaxWaitingForDependencies time.Duration
	MaxWaitingForRetry        time.Duration
	MaxStepsInProcess         time.Duration
	StalenessAction           string // dlq (default), error, none
	AutoFailOnTimeout         bool
	AutoDLQOnTimeout          bool
}

// StepOverride is one entry of an environment's steps: what it changes in
// the step it names, or in every step when Name is "ALL".
type StepOverride struct {
	Name           string
	Initialization json.RawMessage // keys merged into the step's; nil when absent
	Timeout        time.Duration
	HasTimeout     bool   // timeout_seconds was given
	Retry          *Retry // replaces the step's whole retry block; nil when absent
}

// Step is one step of a File.
type Step struct {
	Name           string
	Description    string
	Callable       string
	Initialization json.RawMessage // a JSON object; "{}" when absent
	Dependencies   []string        // in file order; nil when none
	Retry          Retry
	Timeout        time.Duration // zero means none

	Type             string // standard (default), decision, deferred_convergence, batchable, batch_worker
	SystemDependency string // "" when absent
	Method           string // handler.method; "call" when absent
	PublishesEvents  []EventDeclaration
	BatchConfig      *BatchConfig    // nil when absent
	ResultSchema     json.RawMessage // nil when absent
	ResultCompiled   *gojsonschema.Schema

	Index      int   // position in File.Steps
	Deps       []int // indexes of Dependencies, in the same order
	Dependents []int // indexes of the steps that depend on this one, ascending
}

// Problem is one problem in a template file, located by file, line (1-based,
// 0 when unknown) and field path ("" for the whole file).
type Problem struct {
	File  string
	Line  int
	Field string
	Msg   string
}

// Error formats the problem as "file:line: field: message".
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Parse reads one template file; file names it in problems and as Source.
// It returns the description, or nil and every problem found, sorted by
// line; at most MaxErrors problems and a last "too many errors".
func Parse(file string, data []byte) (*File, []*Problem) {
	p := newParser(file)
	f := p.parse(data)
	if probs := p.problems(); len(probs) > 0 {
		return nil, probs
	}
	return f, nil
}
