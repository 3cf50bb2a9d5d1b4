// Package tasker is an embeddable engine for DAG workflows that run in your
// Go process.
//
// Register a StepHandler under each callable name your templates use, load
// YAML task templates (steps, dependencies, retry policy, JSON-Schema input),
// start an Engine on a store, and Submit tasks. The engine runs every step
// whose dependencies are complete, concurrently, retries failures with
// backoff, and records every state change in the store, where Get, Wait and
// List read it back.
package tasker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gotasker/tasker/internal/uuid"
	"github.com/gotasker/tasker/store"
	"go.uber.org/zap"
)

// DefaultWorkers is the number of steps an engine runs at once when
// Config.Workers is zero.
const DefaultWorkers = 64

// Config configures an Engine. The zero value, or a nil *Config, means the
// defaults below.
type Config struct {
	// Workers bounds how many step handlers run at once, across all tasks.
	// Zero means DefaultWorkers; negative is an error.
	Workers int
	// StepTimeout bounds every attempt of a step whose template sets no
	// timeout_seconds: the handler's context is cancelled then, and the
	// attempt fails as a retryable ErrorTimeout. Zero, the default, means no
	// limit; negative is an error.
	StepTimeout time.Duration
	// Logger receives the engine's background errors (a store write that
	// failed, a task that could not be resumed). Nil means zap.NewNop(): the
	// engine is silent by default.
	Logger *zap.Logger
	// Environment names the environment the engine runs in, such as
	// "production": AddTemplates applies each template's environments
	// overrides for it (Template.ForEnvironment). "", the default, applies
	// none.
	Environment string
	// StalenessInterval is how often the engine checks its running tasks
	// against their templates' lifecycle thresholds. Zero means
	// DefaultStalenessInterval; negative is an error.
	StalenessInterval time.Duration
	// Clock is the time the staleness check reads. Nil means time.Now;
	// tests pass a clock they move, so that thresholds of minutes pass at
	// once.
	Clock func() time.Time
	// RetryDelay, for tests, maps the delay before each retry of a step, as
	// the step's retry policy (or its handler's RetryAfter) computed it,
	// jitter included, to the delay the engine waits; a result of zero or
	// less requeues the step at once. The step's stored next_attempt_at
	// keeps the computed time. Nil waits the computed delay. Package
	// taskertest makes retries instant with it; it does not touch step
	// timeouts, task deadlines or the backoff of failed store writes.
	RetryDelay func(time.Duration) time.Duration
	// CaptureContext, when set, is called by Submit with its ctx, before
	// the task is stored; what it returns is stored with the task
	// (store.Task.Trace) and comes back in every attempt's
	// StepContext.Task().Trace, after a restart too. Package taskerotel
	// sets it to inject the submitter's trace context. Nil stores none.
	CaptureContext func(ctx context.Context) map[string]string
	// Attempt, when set, wraps every attempt of a step: it is called as the
	// attempt begins, on the worker's goroutine, with the context its
	// handler would get and the attempt's StepContext; the context it
	// returns is the one the handler gets (the step's timeout applies on
	// top of it), and end, when not nil, is called exactly once with what
	// the attempt came to, once the engine has classified it (a panic,
	// a timeout, a result that breaks its schema included), before it is
	// recorded. Package taskerotel sets it to start a span per attempt.
	// Nil, the default, costs the attempt nothing.
	Attempt func(ctx context.Context, step *StepContext) (handlerCtx context.Context, end func(AttemptEnd))

	// Owner names this engine to a store that many engines share (a
	// store.Leaser, such as store/postgres): the leases on the tasks it
	// runs are in its name. It must differ between engines that run at
	// once; "", the default, is a name unique to this engine (host, process
	// ID and a random part). Stores of one engine ignore it.
	Owner string
	// LeaseTTL is how long this engine's hold on a task lasts without a
	// renewal, on a store that many engines share: it renews every
	// LeaseTTL/3, and a task of an engine that died is taken over by
	// another about LeaseTTL (plus at most a second's poll) after its last
	// renewal. Zero means DefaultLeaseTTL; negative is an error.
	LeaseTTL time.Duration
	// Retention decides how long the store keeps finished tasks, and how
	// many, once the engine has started: see Retention. The zero value
	// means its defaults: a finished task is deleted a week after it
	// finished, a task in error is kept, and a store in memory keeps at
	// most DefaultRetentionMaxTasks finished tasks.
	Retention Retention
}

// AttemptEnd is what one attempt of a step came to, as the engine
// classified it, for a Config.Attempt hook.
type AttemptEnd struct {
	// Error is the attempt's failure, as it is recorded; nil when the
	// attempt succeeded, or when it records no failure (the flags below).
	Error *Failure
	// Interrupted reports that the engine stopped under the attempt: it
	// stays in progress in the store, for the next engine to resume.
	Interrupted bool
	// Cancelled reports that the attempt's task was cancelled under it.
	Cancelled bool
	// Parked reports that the attempt waits for the sub-task it started
	// (ErrSubtaskPending): the step completes when the sub-task ends.
	Parked bool
}

// attemptEnd is the AttemptEnd of outcome out.
func attemptEnd(out outcome) AttemptEnd {
	return AttemptEnd{Error: failureView(out.fail), Interrupted: out.interrupted, Cancelled: out.cancelled,
		Parked: out.parked}
}

func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Workers < 0 {
		return out, fmt.Errorf("tasker: Config.Workers must not be negative, got %d", out.Workers)
	}
	if out.StepTimeout < 0 {
		return out, fmt.Errorf("tasker: Config.StepTimeout must not be negative, got %s", out.StepTimeout)
	}
	if out.StalenessInterval < 0 {
		return out, fmt.Errorf("tasker: Config.StalenessInterval must not be negative, got %s", out.StalenessInterval)
	}
	if out.LeaseTTL < 0 {
		return out, fmt.Errorf("tasker: Config.LeaseTTL must not be negative, got %s", out.LeaseTTL)
	}
	if out.Workers == 0 {
		out.Workers = DefaultWorkers
	}
	if out.LeaseTTL == 0 {
		out.LeaseTTL = DefaultLeaseTTL
	}
	if out.Owner == "" {
		out.Owner = defaultOwner()
	}
	if out.StalenessInterval == 0 {
		out.StalenessInterval = DefaultStalenessInterval
	}
	if out.Clock == nil {
		out.Clock = time.Now
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	r, err := out.Retention.withDefaults()
	if err != nil {
		return out, err
	}
	out.Retention = r
	return out, nil
}

// Engine runs tasks. Create it with New, Register handlers, AddTemplates,
// then Start it; Submit works before Start too (the task runs once the engine
// starts). All methods are safe for concurrent use.
type Engine struct {
	st       store.Store
	cfg      Config
	handlers registry
	sched    *scheduler
	shared   *shared // nil unless st is a store.Leaser that many engines share

	mu    sync.RWMutex
	state int // engineNew, engineStarted or engineStopped

	tmplMu    sync.RWMutex
	templates map[string][]*Template // by namespace/name, highest version first
}

const (
	engineNew = iota
	engineStarted
	engineStopped
)

// New returns an engine that keeps its tasks in st. A nil cfg means the
// defaults. The engine does not own st: close it after Stop.
func New(st store.Store, cfg *Config) (*Engine, error) {
	if st == nil {
		return nil, errors.New("tasker: New needs a store")
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{st: st, cfg: c, templates: make(map[string][]*Template)}
	e.sched = newScheduler(st, c.Logger, &e.handlers, c)
	e.sched.eng = e
	if e.shared = newShared(e); e.shared != nil {
		e.sched.fence, e.sched.freed = e.shared.token, e.shared.freed
	}
	return e, nil
}

// Register makes h the handler of callable, the handler.callable name that
// template steps use. Registering a callable twice is an error wrapping
// ErrDuplicateHandler; an empty callable or a nil h (HandlerFunc(nil)
// included) is one wrapping ErrInvalidHandler.
func (e *Engine) Register(callable string, h StepHandler) error {
	return e.handlers.register(callable, h)
}

// AddTemplates makes templates available to Submit, all or none. A template
// with the same namespace, name and version as one already added is an error
// wrapping ErrDuplicateTemplate, a nil template one wrapping
// ErrInvalidTemplate. On a started engine, every step's callable must be
// registered already (ErrHandlerNotRegistered).
func (e *Engine) AddTemplates(ts ...*Template) error {
	for i, t := range ts {
		if t == nil {
			return fmt.Errorf("%w: AddTemplates: template %d of %d is nil", ErrInvalidTemplate, i+1, len(ts))
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := make(map[string]bool)
	var errs []error
	for _, t := range ts {
		errs = append(errs, t.checkDecisions())
		if seen[t.String()] || e.template(t.Namespace, t.Name, t.Version) != nil {
			errs = append(errs, fmt.Errorf("%w: %s (%s)", ErrDuplicateTemplate, t, t.Source))
		}
		seen[t.String()] = true
		if e.state != engineNew {
			errs = append(errs, e.handlers.checkTemplate(t))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.tmplMu.Lock()
	defer e.tmplMu.Unlock()
	for _, t := range ts {
		t = t.ForEnvironment(e.cfg.Environment)
		e.sched.domain.checkTemplate(t)
		k := t.Namespace + "/" + t.Name
		vs := append(e.templates[k], t)
		slices.SortFunc(vs, func(a, b *Template) int { return compareVersions(b.Version, a.Version) })
		e.templates[k] = vs
	}
	return nil
}

// template returns the template with that key, the highest version when
// version is "", or nil.
func (e *Engine) template(namespace, name, version string) *Template {
	e.tmplMu.RLock()
	defer e.tmplMu.RUnlock()
	vs := e.templates[namespace+"/"+name]
	if version == "" && len(vs) > 0 {
		return vs[0]
	}
	for _, t := range vs {
		if t.Version == version {
			return t
		}
	}
	return nil
}

// Start checks that every template step has a registered handler, resumes
// every unfinished task in the store (see the README's recovery section), and
// starts the workers. ctx bounds the reads of recovery, not the engine's life.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.state {
	case engineStarted:
		return errors.New("tasker: Start called twice")
	case engineStopped:
		return ErrEngineStopped
	}
	if err := e.checkHandlers(); err != nil {
		return err
	}
	if e.shared != nil {
		e.shared.acquire(ctx) // what recovery is to an engine of its own store
	} else if err := e.recover(ctx); err != nil {
		return err
	}
	e.state = engineStarted
	e.sched.start()
	if e.shared != nil { // it acquires what recovery would drive, and more
		e.sched.wg.Add(1)
		go func() {
			defer e.sched.wg.Done()
			e.shared.run(e.sched.stopped)
		}()
	}
	e.startRetention()
	return nil
}

// checkHandlers returns an error naming every step of a loaded template
// whose callable has no handler.
func (e *Engine) checkHandlers() error {
	e.tmplMu.RLock()
	defer e.tmplMu.RUnlock()
	var errs []error
	for _, vs := range e.templates {
		for _, t := range vs {
			errs = append(errs, e.handlers.checkTemplate(t))
		}
	}
	return errors.Join(errs...)
}

// isStopped reports whether Stop was called.
func (e *Engine) isStopped() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.state == engineStopped
}

// Stop shuts the engine down gracefully: it starts no new step, lets running
// handlers finish until ctx ends, then cancels their contexts with cause
// ErrEngineStopping. Steps interrupted so stay in progress in the store and
// are resumed by the next engine that starts on it. Stop returns nil once
// every worker has returned, or an error wrapping ctx's error if some handler
// was still running when ctx ended (its goroutine returns once the handler
// does). Calling Stop again is harmless.
func (e *Engine) Stop(ctx context.Context) error { return e.stop(ctx, false) }

// StopAndCancel is Stop without the grace period: running handlers' contexts
// are cancelled at once, and it waits for them until ctx ends.
func (e *Engine) StopAndCancel(ctx context.Context) error { return e.stop(ctx, true) }

func (e *Engine) stop(ctx context.Context, cancelNow bool) error {
	e.mu.Lock()
	e.state = engineStopped
	e.mu.Unlock()
	defer e.sched.events.closeAll()
	defer e.sched.domain.bus.close()
	stopped := e.sched.stop(ctx, cancelNow)
	if e.shared != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.LeaseTTL)
		e.shared.releaseAll(rctx)
		cancel()
	}
	if !stopped {
		return fmt.Errorf("tasker: stop: handlers still running, their contexts cancelled: %w", ctx.Err())
	}
	return nil
}

// SubmitRequest asks for a task, like Tasker's task-creation request.
type SubmitRequest struct {
	Namespace string // the template's namespace_name
	Name      string // the template's name
	Version   string // "" means the highest loaded version
	// Context is the task input, validated against the template's
	// input_schema: a json.RawMessage, or any value json.Marshal encodes to
	// an object. Nil means {}.
	Context        any
	Initiator      string // who asked, such as "api:checkout"
	SourceSystem   string // where from, such as "web"
	Reason         string
	Tags           []string
	IdempotencyKey string // a key repeated for the same namespace and name returns the first task's ID and creates nothing
	// Timeout, when positive, is the task's deadline from submission: when
	// it passes, nothing new starts, running handlers' contexts are cancelled
	// (cause ErrTaskDeadline) and the task ends in error. It survives
	// restarts. Zero means none.
	Timeout time.Duration
}

// Submit validates req's input against its template and stores the task
// with all its steps in one atomic write, then returns its ID; the task runs
// in the background. Errors: ErrTemplateNotFound, an *InputError (wrapping
// ErrInvalidInput) listing every violation, ErrEngineStopped, or the store's
// error. Nothing is stored when Submit fails. ctx bounds the submission, not
// the task.
func (e *Engine) Submit(ctx context.Context, req SubmitRequest) (string, error) {
	id, _, err := e.submit(ctx, req, false)
	return id, err
}

// submit is Submit reporting whether it created the task (false: an earlier
// task holds the idempotency key).
// A sub-task (sub) is run by the engine its parent step waits on, whenever
// it can.
func (e *Engine) submit(ctx context.Context, req SubmitRequest, sub bool) (id string, created bool, err error) {
	// The read lock orders Submit against Start, which recovers stored tasks
	// under the write lock: a task is either recovered or added, never both.
	e.mu.RLock()
	defer e.mu.RUnlock()
	t, state := e.template(req.Namespace, req.Name, req.Version), e.state
	if state == engineStopped {
		return "", false, ErrEngineStopped
	}
	if t == nil {
		return "", false, fmt.Errorf("%w: %s/%s@%s", ErrTemplateNotFound, req.Namespace, req.Name, versionOrLatest(req.Version))
	}
	input, err := encodeInput(t, req.Context)
	if err == nil {
		err = t.validateInput(input)
	}
	if err == nil {
		req.IdempotencyKey, err = t.identity(req.IdempotencyKey, input)
	}
	if err != nil {
		return "", false, err
	}
	task, steps := newTaskRecords(t, req, input, time.Now())
	if e.cfg.CaptureContext != nil {
		task.Trace = e.cfg.CaptureContext(ctx)
	}
	mine := true // this engine runs it (any task, unless the store is shared)
	if e.shared != nil {
		id, created, mine, err = e.shared.create(ctx, task, steps, sub, state == engineStarted)
	} else {
		id, created, err = e.st.CreateTask(ctx, task, steps)
	}
	if err != nil {
		if !e.stored(ctx, task.ID) {
			return "", false, fmt.Errorf("tasker: submit %s: %w", t, err)
		}
		id, created = task.ID, true // stored after all: run it
	}
	if created {
		e.sched.events.submitted(task)
	}
	if !mine {
		return id, created, nil // free in a shared store: an engine with room acquires it
	}
	return id, created, e.drive(ctx, t, task, id, created, state)
}

// drive hands a submitted task to the scheduler: a new one is added, an
// earlier one found by its key adopted; before Start, recovery will.
func (e *Engine) drive(ctx context.Context, t *Template, task store.Task, id string, created bool, state int) error {
	switch {
	case state != engineStarted:
	case created:
		e.sched.add(&task, t)
	default:
		if _, err := e.adopt(ctx, id); err != nil {
			return fmt.Errorf("tasker: submit %s: resume task %s: %w", t, id, err)
		}
	}
	return nil
}

// identity returns the idempotency key of a task of t submitted with key
// and input: key itself when given; otherwise, per t's identity_strategy,
// none (always_unique), one derived from the canonical input (strict), or
// an error wrapping ErrInvalidInput (caller_provided).
func (t *Template) identity(key string, input json.RawMessage) (string, error) {
	if key != "" {
		return key, nil
	}
	switch t.IdentityStrategy {
	case IdentityCallerProvided:
		return "", fmt.Errorf("%w: template %s has identity_strategy caller_provided: SubmitRequest.IdempotencyKey is required",
			ErrInvalidInput, t)
	case IdentityStrict:
		var doc any
		d := json.NewDecoder(bytes.NewReader(input))
		d.UseNumber()
		if err := d.Decode(&doc); err != nil {
			return "", fmt.Errorf("tasker: submit %s: %w", t, err)
		}
		canonical, err := json.Marshal(doc) // object keys sorted
		if err != nil {
			return "", fmt.Errorf("tasker: submit %s: %w", t, err)
		}
		sum := sha256.Sum256(canonical)
		return "strict:" + hex.EncodeToString(sum[:]), nil
	}
	return "", nil
}

// stored reports whether a task whose CreateTask returned an error was
// stored all the same (its commit's acknowledgement was lost, say), reading
// it back even if ctx has ended.
func (e *Engine) stored(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storedCheckTimeout)
	defer cancel()
	_, err := e.st.Task(ctx, id)
	return err == nil
}

// storedCheckTimeout bounds the read that checks whether a failed
// CreateTask stored its task.
const storedCheckTimeout = 5 * time.Second

func versionOrLatest(v string) string {
	if v == "" {
		return "latest"
	}
	return v
}

// encodeInput encodes the input of a task of t, which must be a JSON object
// whatever t's input_schema says; nil means {}.
func encodeInput(t *Template, v any) (json.RawMessage, error) {
	if v == nil {
		return json.RawMessage("{}"), nil
	}
	raw, err := toJSON("task input", v)
	if err == nil {
		err = objectOnly(raw)
	}
	if err != nil {
		return nil, &InputError{Template: t.String(), Violations: []Violation{{Path: "$", Message: err.Error()}}}
	}
	return raw, nil
}

func newTaskRecords(t *Template, req SubmitRequest, input json.RawMessage, now time.Time) (store.Task, []store.Step) {
	task := store.Task{
		ID: uuid.NewV7(now), Namespace: t.Namespace, Name: t.Name, Version: t.Version,
		State: string(TaskPending), Initiator: req.Initiator, SourceSystem: req.SourceSystem,
		Reason: req.Reason, Tags: req.Tags, Context: input, IdempotencyKey: req.IdempotencyKey,
		CreatedAt: now, UpdatedAt: now,
	}
	if req.Timeout > 0 {
		task.Deadline = now.Add(req.Timeout)
	}
	steps := make([]store.Step, 0, len(t.Steps))
	for i, s := range t.Steps {
		if s.atStart { // the others are created by the decisions upstream of them
			steps = append(steps, store.Step{TaskID: task.ID, Name: s.Name, Position: i, State: string(StepPending), UpdatedAt: now})
		}
	}
	return task, steps
}
