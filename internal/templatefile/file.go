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
