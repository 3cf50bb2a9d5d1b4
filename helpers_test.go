package tasker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/store/postgres"
	"github.com/gotasker/tasker/store/postgres/pgtest"
	"github.com/gotasker/tasker/store/sqlite"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backends opens a fresh store of each kind, closed when the test ends.
var backends = []struct {
	name string
	open func(t testing.TB) store.Store
}{
	{"memory", func(t testing.TB) store.Store {
		st := memory.New()
		t.Cleanup(func() { st.Close() })
		return st
	}},
	// Engines on a store that many engines share run only the tasks they
	// lease: every test runs there too.
	{"memory-shared", func(t testing.TB) store.Store {
		st := memory.NewShared()
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"sqlite", func(t testing.TB) store.Store {
		st, err := sqlite.Open(filepath.Join(t.TempDir(), "tasker.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	// A fresh schema on the server TASKER_POSTGRES_URL names; skipped
	// without one (a failure under CI=true).
	{"postgres", func(t testing.TB) store.Store {
		schema := pgtest.NewSchema(t)
		st, err := postgres.Open(context.Background(), pgtest.Pool(t), &postgres.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

// eachStore runs f as a subtest on every backend.
func eachStore(t *testing.T, f func(t *testing.T, st store.Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.open(t)) })
	}
}

// startEngine registers handlers, adds templates and starts an engine on st,
// stopped when the test ends.
func startEngine(t testing.TB, st store.Store, handlers map[string]tasker.StepHandler, tmpls ...*tasker.Template) *tasker.Engine {
	t.Helper()
	return startEngineWith(t, st, &tasker.Config{Workers: 16}, handlers, tmpls...)
}

// startEngineWith is startEngine with the engine's configuration.
func startEngineWith(t testing.TB, st store.Store, cfg *tasker.Config, handlers map[string]tasker.StepHandler, tmpls ...*tasker.Template) *tasker.Engine {
	t.Helper()
	return startPrepared(t, st, cfg, handlers, nil, tmpls...)
}

// startPrepared is startEngineWith, with prepare (when not nil) called on
// the engine before its templates are added, to register more.
func startPrepared(t testing.TB, st store.Store, cfg *tasker.Config, handlers map[string]tasker.StepHandler,
	prepare func(*tasker.Engine), tmpls ...*tasker.Template) *tasker.Engine {
	t.Helper()
	eng, err := tasker.New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range handlers {
		if err := eng.Register(name, h); err != nil {
			t.Fatal(err)
		}
	}
	if prepare != nil {
		prepare(eng)
	}
	if err := eng.AddTemplates(tmpls...); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return eng
}

func mustParse(t *testing.T, yaml string) *tasker.Template { return mustParseTB(t, yaml) }

func mustParseTB(t testing.TB, yaml string) *tasker.Template {
	t.Helper()
	tmpl, err := tasker.ParseTemplate(t.Name()+".yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func ordersTemplate(t testing.TB) *tasker.Template {
	t.Helper()
	tmpl, err := orders.Template()
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// orderHandlers returns the guide's five handlers, keyed by callable.
func orderHandlers(h orders.Handlers) map[string]tasker.StepHandler {
	return map[string]tasker.StepHandler{
		orders.ValidateCartCallable:     tasker.HandlerFunc(orders.ValidateCart),
		orders.ProcessPaymentCallable:   tasker.HandlerFunc(h.ProcessPayment),
		orders.UpdateInventoryCallable:  tasker.HandlerFunc(h.UpdateInventory),
		orders.CreateOrderCallable:      tasker.HandlerFunc(orders.CreateOrder),
		orders.SendConfirmationCallable: tasker.HandlerFunc(orders.SendConfirmation),
	}
}

// guideInput is the guide's example order, paying with token.
func guideInput(token string) orders.Input {
	return orders.Input{
		CustomerEmail: "customer@example.com",
		PaymentToken:  token,
		CartItems: []orders.CartItem{
			{SKU: "WIDGET-A", Name: "Widget A", Quantity: 2, UnitPrice: 29.99},
			{SKU: "GADGET-B", Name: "Gadget B", Quantity: 1, UnitPrice: 49.99},
		},
	}
}

func orderRequest(input any) tasker.SubmitRequest {
	return tasker.SubmitRequest{
		Namespace: "ecommerce", Name: "ecommerce_order_processing", Version: "1.0.0",
		Initiator: "api:checkout", SourceSystem: "web", Reason: "New order received",
		Context: input,
	}
}

// submitAndWait submits req and waits, at most 30 s, for the task to end.
func submitAndWait(t *testing.T, eng *tasker.Engine, req tasker.SubmitRequest) *tasker.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := eng.Submit(ctx, req)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	task, err := eng.Wait(ctx, id)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return task
}

// step returns the named step of task, failing the test if it is missing.
func step(t *testing.T, task *tasker.Task, name string) *tasker.Step {
	t.Helper()
	s := task.Step(name)
	if s == nil {
		t.Fatalf("task has no step %q", name)
	}
	return s
}

// watch wraps a store and reports every change it applied, in order.
type watch struct {
	store.Store
	mu      sync.Mutex
	applied []store.Change
	notify  chan store.Change
}

func newWatch(st store.Store) *watch {
	return &watch{Store: st, notify: make(chan store.Change, 1024)}
}

func (w *watch) Apply(ctx context.Context, changes []store.Change) error {
	if err := w.Store.Apply(ctx, changes); err != nil {
		return err
	}
	w.mu.Lock()
	w.applied = append(w.applied, changes...)
	w.mu.Unlock()
	for _, ch := range changes {
		w.notify <- ch
	}
	return nil
}

// await blocks until a change of step (or of the task, for "") to state to
// is applied, or fails the test after 10 s.
func (w *watch) await(t *testing.T, step, to string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ch := <-w.notify:
			if ch.Step == step && ch.To == to {
				return
			}
		case <-timeout:
			t.Fatalf("no change of %q to %s within 10s", step, to)
		}
	}
}

// childEnv names the test a re-executed test binary runs for its parent.
const childEnv = "TASKER_TEST_CHILD"

// inChild lets a test run its body in a child process, so that a crash
// fails the test instead of killing the test binary. In the child (the test
// binary re-executed on t alone, with childEnv naming t) it returns true:
// the caller runs the body, which reports with t as usual. In the parent it
// runs the child, fails t unless the child exited 0 within a minute and
// printed want, and returns false.
func inChild(t *testing.T, want string) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	// Without -race the GORACE option is ignored; with it, the child would
	// sleep a second at exit.
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name(), "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), want) {
		t.Fatalf("child process did not print %q:\n%s", want, out)
	}
	return false
}

func newMemory(t testing.TB) store.Store { return backends[0].open(t) }

func fmtTemplate(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// stateOf describes a task's and its steps' states, or err, for messages.
func stateOf(task *tasker.Task, err error) string {
	if err != nil {
		return "error " + err.Error()
	}
	if task == nil {
		return "no task"
	}
	out := string(task.State) + " ["
	for _, s := range task.Steps {
		out += fmt.Sprintf(" %s:%s/%d", s.Name, s.State, s.Attempts)
	}
	return out + " ]"
}
