// Package exampleutil is the scaffolding the runnable examples under
// examples/ share: the -store, -db and -fail flags, opening the store,
// starting an engine on one template, submitting one task, printing its
// outcome and the process's exit status. An example supplies only its
// template, its handlers and its input.
package exampleutil

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

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
	// Handlers maps each callable the template names to its handler.
	Handlers map[string]tasker.StepHandler
	// Flags, when set, declares the example's own flags on fs and returns
	// the function that builds the task input once fs is parsed.
	Flags func(fs *flag.FlagSet) (input func() (any, error))
	// Summary, when set, prints lines about the finished task after the
	// step table.
	Summary func(w io.Writer, t *tasker.Task)
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

// Main runs run with the process's arguments, cancelling its context on an
// interrupt, and exits with ExitCode's status.
func Main(name string, run RunFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(ExitCode(name, err, os.Stderr))
}

// ExitCode returns the exit status for run's error, after printing the
// error (if any) to stderr prefixed by name: 0 for nil and for -help, 2 for
// a *UsageError, 1 for anything else, an *IncompleteError included.
func ExitCode(name string, err error, stderr io.Writer) int {
	var usage *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}
