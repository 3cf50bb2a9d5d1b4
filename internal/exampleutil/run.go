package exampleutil

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/store/sqlite"
)

// options are the flags every example takes.
type options struct {
	store string // "memory" or "sqlite"
	db    string // the SQLite file; "" means a new temporary one
	fail  string // a step to fail for good; "" means none
}

// Run parses args, runs one task of the example's template on a new engine
// and prints its outcome to out (see Report), then each sub-task its steps
// started. It returns an *IncompleteError when the task ends in any state
// but complete, and a *UsageError for a bad command line.
func (ex *Example) Run(ctx context.Context, args []string, out io.Writer) (err error) {
	tmpls, err := ex.templates()
	if err != nil {
		return err
	}
	opts, input, err := ex.parse(args, out, tmpls[0])
	if err != nil {
		return err
	}
	in, err := input()
	if err != nil {
		return &UsageError{Err: err}
	}
	if ex.Setup != nil {
		teardown, err := ex.Setup()
		if err != nil {
			return err
		}
		defer teardown()
	}
	st, where, closeStore, err := opts.open()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeStore()) }()
	eng, err := ex.start(ctx, st, tmpls, opts.fail)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, eng.Stop(ctx)) }()
	task, err := submitAndWait(ctx, eng, tmpls[0], ex.Name, in)
	if err != nil {
		return err
	}
	if err := ex.report(ctx, out, eng, task, where); err != nil {
		return err
	}
	if task.State != tasker.TaskComplete {
		return &IncompleteError{TaskID: task.ID, State: task.State}
	}
	return nil
}

// templates parses the example's template, then its subtemplates.
func (ex *Example) templates() ([]*tasker.Template, error) {
	tmpl, err := tasker.ParseTemplate(ex.TemplateFile, ex.TemplateYAML)
	if err != nil {
		return nil, err
	}
	tmpls := []*tasker.Template{tmpl}
	for _, sub := range ex.Subtemplates {
		t, err := tasker.ParseTemplate(sub.File, sub.YAML)
		if err != nil {
			return nil, err
		}
		tmpls = append(tmpls, t)
	}
	return tmpls, nil
}

// report prints task (see Report), then, for each step that started a
// sub-task, that sub-task, then the example's summary.
func (ex *Example) report(ctx context.Context, out io.Writer, eng *tasker.Engine, task *tasker.Task, where string) error {
	Report(out, task, where)
	for _, s := range task.Steps {
		if s.Subtask == "" {
			continue
		}
		child, err := eng.Get(ctx, s.Subtask)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\nsub-task of step %s:\n", s.Name)
		Report(out, child, where)
	}
	if ex.Summary != nil {
		ex.Summary(out, task)
	}
	return nil
}

// parse parses args into the shared options and the example's own flags.
func (ex *Example) parse(args []string, out io.Writer, tmpl *tasker.Template) (options, func() (any, error), error) {
	fs := flag.NewFlagSet(ex.Name, flag.ContinueOnError)
	fs.SetOutput(out)
	var o options
	fs.StringVar(&o.store, "store", "sqlite", "where tasks are stored: memory or sqlite")
	fs.StringVar(&o.db, "db", "", "SQLite file to store tasks in (default: a new temporary file)")
	fs.StringVar(&o.fail, "fail", "", "make the named step fail for good (a permanent error), to see the task end in error; "+
		"a batch worker template's instances all fail")
	input := func() (any, error) { return nil, nil }
	if ex.Flags != nil {
		input = ex.Flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, nil, err
		}
		return o, nil, &UsageError{Err: err}
	}
	return o, input, o.check(fs, tmpl)
}

// check refuses option combinations that cannot mean what they say.
func (o options) check(fs *flag.FlagSet, tmpl *tasker.Template) error {
	switch {
	case fs.NArg() > 0:
		return &UsageError{Err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	case o.store != "memory" && o.store != "sqlite":
		return &UsageError{Err: fmt.Errorf("-store must be memory or sqlite, not %q", o.store)}
	case o.store == "memory" && o.db != "":
		return &UsageError{Err: errors.New("-db needs -store sqlite")}
	case o.fail != "" && tmpl.Step(o.fail) == nil:
		return &UsageError{Err: fmt.Errorf("-fail %q: the template has no such step", o.fail)}
	}
	return nil
}

// open opens the store the options name. It returns the store, a
// description of where tasks are kept, and the function that closes it (and
// removes the temporary file it made, if any).
func (o options) open() (store.Store, string, func() error, error) {
	if o.store == "memory" {
		st := memory.New()
		return st, "memory", st.Close, nil
	}
	path, cleanup := o.db, func() error { return nil }
	if path == "" {
		dir, err := os.MkdirTemp("", "tasker-example-")
		if err != nil {
			return nil, "", nil, err
		}
		path, cleanup = filepath.Join(dir, "tasker.db"), func() error { return os.RemoveAll(dir) }
	}
	st, err := sqlite.Open(path, nil)
	if err != nil {
		return nil, "", nil, errors.Join(err, cleanup())
	}
	where := "sqlite " + path
	if o.db == "" {
		where += ", a temporary file removed on exit"
	}
	return st, where, func() error { return errors.Join(st.Close(), cleanup()) }, nil
}

// start starts an engine on st with tmpls (the example's template, then
// its subtemplates) and the example's handlers; the step of the first
// template named fail, if any, fails for good instead of calling its
// handler.
func (ex *Example) start(ctx context.Context, st store.Store, tmpls []*tasker.Template, fail string) (*tasker.Engine, error) {
	eng, err := tasker.New(st, ex.Config)
	if err != nil {
		return nil, err
	}
	hs := make(map[string]tasker.StepHandler)
	for i := len(tmpls) - 1; i >= 0; i-- { // the task's own template last: -fail wraps its callables
		for callable, h := range ex.handlers(tmpls[i]) {
			if fail != "" && i == 0 {
				h = failing(h, fail, failsWith(tmpls[0], fail))
			}
			hs[callable] = h
		}
	}
	for callable, h := range hs {
		if err := eng.Register(callable, h); err != nil {
			return nil, err
		}
	}
	if err := eng.AddTemplates(tmpls...); err != nil {
		return nil, err
	}
	return eng, eng.Start(ctx)
}

// handlers returns the handler of every callable tmpl names: from
// ex.Handlers, else ex.Default.
func (ex *Example) handlers(tmpl *tasker.Template) map[string]tasker.StepHandler {
	hs := make(map[string]tasker.StepHandler, len(tmpl.Steps))
	for _, s := range tmpl.Steps {
		if h, ok := ex.Handlers[s.Callable]; ok {
			hs[s.Callable] = h
		} else if ex.Default != nil {
			hs[s.Callable] = ex.Default
		}
	}
	return hs
}

// failsWith returns whether a step, by name, is one -fail step names: the
// step itself or, when it is a batch worker template, each of its
// instances ("{step}_{batch_id}", not a step of tmpl).
func failsWith(tmpl *tasker.Template, step string) func(name string) bool {
	worker := tmpl.Step(step).Type == tasker.StepBatchWorker
	return func(name string) bool {
		return name == step || worker && tmpl.Step(name) == nil && strings.HasPrefix(name, step+"_")
	}
}

// failing wraps h so that each step fails reports true for fails for good,
// its error naming step, the -fail flag's value.
func failing(h tasker.StepHandler, step string, fails func(name string) bool) tasker.StepHandler {
	return tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		if fails(sc.StepName()) {
			return nil, &tasker.StepError{Message: "failed on purpose (-fail " + step + ")",
				Type: tasker.ErrorPermanent, Code: "FAILED_ON_PURPOSE"}
		}
		return h.Call(ctx, sc)
	})
}

// submitAndWait submits one task of tmpl with input in and waits for it.
func submitAndWait(ctx context.Context, eng *tasker.Engine, tmpl *tasker.Template, name string, in any) (*tasker.Task, error) {
	id, err := eng.Submit(ctx, tasker.SubmitRequest{
		Namespace: tmpl.Namespace, Name: tmpl.Name, Version: tmpl.Version,
		Context: in, Initiator: "example:" + name, SourceSystem: "cli",
		Reason: "go run ./examples/" + name,
	})
	if err != nil {
		return nil, err
	}
	return eng.Wait(ctx, id)
}

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
