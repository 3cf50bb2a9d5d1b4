// Package exampleutil is the scaffolding the runnable examples under
// examples/ share: the -store, -db and -fail flags, opening the store,
// starting an engine on the example's template (and the templates of the
// sub-tasks its steps start), submitting one task, printing its outcome
// (and its sub-tasks') and the process's exit status. An example supplies
// only its templates, its handlers and its input.
package exampleutil

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/gotasker/tasker"
)

// RunFunc is an example's entry point: it runs the example with the
// command-line arguments args (without the program name), printing to out.
type RunFunc func(ctx context.Context, args []string, out io.Writer) error

// Example is one runnable workflow.
type Example struct {
	// Name is the command's name, used for its flag set and messages.
	Name string
	// TemplateFile names TemplateYAML in errors.
	TemplateFile string
	// TemplateYAML is the task template, in Tasker's format.
	TemplateYAML []byte
	// Subtemplates are further templates the engine loads: those of the
	// sub-tasks the task's steps start (StepContext.Subtask). Their
	// callables get handlers as the task's do; -fail names a step of the
	// task's template only.
	Subtemplates []Subtemplate
	// Handlers maps callables the templates name to their handlers.
	Handlers map[string]tasker.StepHandler
	// Default, when set, is the handler of every callable of the templates
	// that Handlers does not list.
	Default tasker.StepHandler
	// Config, when set, configures the engine. It is read once the flags
	// are parsed, so Flags may set its fields (-workers).
	Config *tasker.Config
	// Flags, when set, declares the example's own flags on fs and returns
	// the function that builds the task input once fs is parsed.
	Flags func(fs *flag.FlagSet) (input func() (any, error))
	// Setup, when set, is called once the flags are parsed, before the
	// engine starts, to start what the handlers need (a simulated service);
	// teardown is called after the engine stops.
	Setup func() (teardown func(), err error)
	// Summary, when set, prints lines about the finished task after the
	// step table.
	Summary func(w io.Writer, t *tasker.Task)
}

// Subtemplate is a further template an example loads.
type Subtemplate struct {
	File string // names YAML in errors
	YAML []byte // the template, in Tasker's format
}

// IncompleteError is what Run returns when the task ended in a state other
// than complete: the outcome was printed, and the command exits non-zero.
type IncompleteError struct {
	TaskID string
	State  tasker.TaskState
}

// Error returns "task ID ended in STATE".
func (e *IncompleteError) Error() string {
	return fmt.Sprintf("task %s ended in %s", e.TaskID, e.State)
}

// UsageError is a bad command line; the command exits with status 2.
type UsageError struct{ Err error }

// Error returns the underlying error's text.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *UsageError) Unwrap() error { return e.Err }
