package tasker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/store/sqlite"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// recorder is a Publisher that records what it is given and refuses the
// first fail calls; every call is also sent on calls.
type recorder struct {
	mu    sync.Mutex
	got   []tasker.PublishedEvent // accepted
	tries int
	fail  int // refuse this many calls first; -1: refuse all
	calls chan tasker.PublishedEvent
}

func newRecorder(fail int) *recorder {
	return &recorder{fail: fail, calls: make(chan tasker.PublishedEvent, 100)}
}

func (r *recorder) Publish(_ context.Context, e tasker.PublishedEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries++
	r.calls <- e
	if r.fail < 0 || r.tries <= r.fail {
		return errors.New("broker down")
	}
	r.got = append(r.got, e)
	return nil
}

func (r *recorder) accepted() []tasker.PublishedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// receiveN returns the next n events from c, failing the test when they do
// not come within 10 s.
func receiveN[T any](t *testing.T, c <-chan T, n int) []T {
	t.Helper()
	var out []T
	deadline := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case v, ok := <-c:
			if !ok {
				t.Fatalf("channel closed after %d of %d", len(out), n)
			}
			out = append(out, v)
		case <-deadline:
			t.Fatalf("got %d of %d within 10 s", len(out), n)
		}
	}
	return out
}

// rest returns what c holds until it is closed (the engine stopped).
func rest[T any](t *testing.T, c <-chan T) []T {
	t.Helper()
	var out []T
	deadline := time.After(10 * time.Second)
	for {
		select {
		case v, ok := <-c:
			if !ok {
				return out
			}
			out = append(out, v)
		case <-deadline:
			t.Fatal("channel not closed within 10 s")
		}
	}
}

// eventEngine starts an engine on st with handlers, publishers registered
// before Start, and templates; stopped when the test ends (or before).
func eventEngine(t *testing.T, st store.Store, cfg *tasker.Config, handlers map[string]tasker.StepHandler,
	pubs map[string]tasker.Publisher, tmpls ...*tasker.Template) *tasker.Engine {
	t.Helper()
	if cfg == nil {
		cfg = &tasker.Config{Workers: 4}
	}
	return startPrepared(t, st, cfg, handlers, func(eng *tasker.Engine) {
		for name, p := range pubs {
			if err := eng.RegisterPublisher(name, p); err != nil {
				t.Fatal(err)
			}
		}
	}, tmpls...)
}

func stopEngine(t *testing.T, eng *tasker.Engine) {
	t.Helper()
	if err := eng.Stop(context.Background()); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func pendingOutbox(t *testing.T, st store.Store) []store.OutboxEntry {
	t.Helper()
	es, err := st.(store.Outboxer).PendingOutbox(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func outboxIDs(es []store.OutboxEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func result(v any) tasker.HandlerFunc {
	return func(context.Context, *tasker.StepContext) (any, error) { return v, nil }
}

const paidYAML = `
name: pay
namespace_name: ev
version: "1.0.0"
domain_events:
  - name: order.paid
    schema: {type: object, required: [order_id], properties: {order_id: {type: string}}}
steps:
  - name: charge
    handler: {callable: ev.charge}
    publishes_events:
      - {name: order.paid, publisher: rec}
      - {name: order.paid.bus, schema: {type: object}}
  - {name: ship, handler: {callable: ev.ship}, dependencies: [charge]}
`

// A durable event is written with the step's outcome, delivered once per
// outcome to its named publisher (or the bus), and acknowledged: nothing is
// left in the outbox.
func TestDomainEventsDurableDeliveredOncePerOutcome(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		rec := newRecorder(0)
		eng := eventEngine(t, st, nil, map[string]tasker.StepHandler{
			"ev.charge": result(map[string]string{"order_id": "o-1"}), "ev.ship": result(nil)},
			map[string]tasker.Publisher{"rec": rec}, mustParse(t, paidYAML))
		sub := eng.DomainEvents().Subscribe(10)
		var ids []string
		for range 3 {
			task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "pay"})
			if task.State != tasker.TaskComplete {
				t.Fatalf("task %s", task.State)
			}
			ids = append(ids, task.ID)
		}
		receiveN(t, rec.calls, 3)
		bus := receiveN(t, sub.C(), 3)
		stopEngine(t, eng)
		if more := rest(t, sub.C()); len(more) > 0 {
			t.Errorf("bus got %d more events", len(more))
		}
		got := rec.accepted()
		if len(got) != 3 || len(rec.calls) != 0 {
			t.Fatalf("publisher got %d events (+%d calls), want 3", len(got), len(rec.calls))
		}
		seen := map[string]bool{}
		for i, e := range got {
			if e.Name != "order.paid" || e.TaskID != ids[i] || e.Step != "charge" || e.Attempt != 1 ||
				e.Outcome != tasker.OutcomeSuccess || e.Namespace != "ev" || e.Template != "pay" || e.Version != "1.0.0" ||
				e.DeliveryMode != "durable" || e.Publisher != "rec" || string(e.Payload) != `{"order_id":"o-1"}` || e.ID == "" {
				t.Errorf("event %d = %+v", i, e)
			}
			seen[e.ID] = true
		}
		for _, e := range bus {
			if e.Name != "order.paid.bus" || e.Publisher != "" {
				t.Errorf("bus event = %+v", e)
			}
			seen[e.ID] = true
		}
		if len(seen) != 6 {
			t.Errorf("%d distinct IDs among 6 events", len(seen))
		}
		if es := pendingOutbox(t, st); len(es) != 0 {
			t.Errorf("outbox holds %d entries after delivery", len(es))
		}
		if s := eng.DomainEventStats(); s != (tasker.DomainEventStats{Published: 6}) {
			t.Errorf("stats = %+v", s)
		}
	})
}

const conditionsYAML = `
name: %s
namespace_name: ev
version: "1.0.0"
domain_events:
  - {name: on_success}
  - {name: on_failure}
  - {name: on_retryable}
  - {name: on_permanent}
  - {name: on_always}
steps:
  - name: work
    handler: {callable: ev.%s}
    retry: {max_attempts: 2, backoff: constant, backoff_base_ms: 1, max_backoff_ms: 1}
    publishes_events:
      - {name: on_success}
      - {name: on_failure, condition: failure}
      - {name: on_retryable, condition: retryable_failure}
      - {name: on_permanent, condition: permanent_failure}
      - {name: on_always, condition: always}
`

// Each condition publishes on the outcomes it names: a retried attempt, a
// success, a permanent failure.
func TestDomainEventsConditions(t *testing.T) {
	st := memory.New()
	defer st.Close()
	var calls sync.Map
	flaky := tasker.HandlerFunc(func(_ context.Context, sc *tasker.StepContext) (any, error) {
		if _, again := calls.LoadOrStore(sc.TaskID(), true); !again {
			return nil, errors.New("transient")
		}
		return map[string]int{"n": 1}, nil
	})
	doomed := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) {
		return nil, &tasker.StepError{Type: tasker.ErrorPermanent, Message: "card declined", Code: "DECLINED"}
	})
	eng := eventEngine(t, st, &tasker.Config{Workers: 2, RetryDelay: func(time.Duration) time.Duration { return 0 }},
		map[string]tasker.StepHandler{"ev.flaky": flaky, "ev.doomed": doomed}, nil,
		mustParse(t, fmtTemplate(conditionsYAML, "flaky", "flaky")), mustParse(t, fmtTemplate(conditionsYAML, "doomed", "doomed")))
	sub := eng.DomainEvents().Subscribe(20)
	submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "flaky"})
	submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "doomed"})
	got := receiveN(t, sub.C(), 8)
	stopEngine(t, eng)
	got = append(got, rest(t, sub.C())...)
	var brief []string
	for _, e := range got {
		brief = append(brief, e.Template+"/"+e.Name+"/"+e.Outcome+"/"+string(rune('0'+e.Attempt)))
		if e.Name == "on_permanent" && !strings.Contains(string(e.Payload), `"code":"DECLINED"`) {
			t.Errorf("a failure's payload = %s, want the failure", e.Payload)
		}
	}
	sort.Strings(brief)
	want := []string{
		"doomed/on_always/permanent_failure/1", "doomed/on_failure/permanent_failure/1", "doomed/on_permanent/permanent_failure/1",
		"flaky/on_always/retryable_failure/1", "flaky/on_always/success/2", "flaky/on_failure/retryable_failure/1",
		"flaky/on_retryable/retryable_failure/1", "flaky/on_success/success/2",
	}
	if !slices.Equal(brief, want) {
		t.Errorf("events:\n got %v\nwant %v", brief, want)
	}
}

// outboxSpy is a memory store recording the outbox entries of each Apply,
// with the step changes they rode on.
type outboxSpy struct {
	*memory.Store
	mu     sync.Mutex
	writes []string // "event@step:to" per entry
}

func (s *outboxSpy) Apply(ctx context.Context, changes []store.Change) error {
	s.mu.Lock()
	for _, c := range changes {
		for _, o := range c.Outbox {
			var e tasker.PublishedEvent
			_ = json.Unmarshal(o.Data, &e)
			s.writes = append(s.writes, e.Name+"@"+c.Step+":"+c.To)
		}
	}
	s.mu.Unlock()
	return s.Store.Apply(ctx, changes)
}

const modesYAML = `
name: modes
namespace_name: ev
version: "1.0.0"
steps:
  - name: work
    handler: {callable: ev.work}
    publishes_events:
      - {name: e_durable, schema: {}, delivery_mode: durable, publisher: rec}
      - {name: e_fast, schema: {}, delivery_mode: fast, publisher: rec}
      - {name: e_broadcast, schema: {}, delivery_mode: broadcast, publisher: rec}
      - {name: e_broadcast_bus, schema: {}, delivery_mode: broadcast}
`

// durable events ride on the outcome's write; fast ones do not touch the
// store; broadcast goes durably to its publisher and at once to the bus.
// A named publisher gets its events, the bus the others.
func TestDomainEventsDeliveryModes(t *testing.T) {
	st := &outboxSpy{Store: memory.New()}
	defer st.Close()
	rec := newRecorder(0)
	eng := eventEngine(t, st, nil, map[string]tasker.StepHandler{"ev.work": result(1)},
		map[string]tasker.Publisher{"rec": rec}, mustParse(t, modesYAML))
	sub := eng.DomainEvents().Subscribe(10)
	submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "modes"})
	receiveN(t, rec.calls, 3)
	receiveN(t, sub.C(), 2)
	stopEngine(t, eng)
	names := func(es []tasker.PublishedEvent) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Name+"→"+e.Publisher)
		}
		sort.Strings(out)
		return out
	}
	if got, want := names(rec.accepted()), []string{"e_broadcast→rec", "e_durable→rec", "e_fast→rec"}; !slices.Equal(got, want) {
		t.Errorf("publisher rec got %v, want %v", got, want)
	}
	// The bus's copy of e_broadcast is its fast delivery; e_broadcast_bus
	// comes once, from the outbox.
	busGot := rest(t, sub.C())
	if len(busGot) != 0 {
		t.Errorf("bus got %d more events", len(busGot))
	}
	sort.Strings(st.writes)
	if want := []string{"e_broadcast@work:complete", "e_broadcast_bus@work:complete", "e_durable@work:complete"}; !slices.Equal(st.writes, want) {
		t.Errorf("outbox writes = %v, want %v", st.writes, want)
	}
}

const schemaYAML = `
name: strict
namespace_name: ev
version: "1.0.0"
domain_events:
  - name: order.paid
    schema: {type: object, required: [order_id]}
steps:
  - name: work
    handler: {callable: ev.work}
    publishes_events:
      - {name: order.paid}
      - {name: order.noted, schema: {type: object, required: [note]}, delivery_mode: fast}
`

// A payload that breaks its event's schema is not published, is logged and
// counted, and does not fail the step; a handler's own payload replaces
// the result.
func TestDomainEventsSchemaViolation(t *testing.T) {
	st := memory.New()
	defer st.Close()
	core, logs := observer.New(zap.WarnLevel)
	work := tasker.HandlerFunc(func(_ context.Context, sc *tasker.StepContext) (any, error) {
		if err := sc.SetEventPayload("order.noted", map[string]string{"note": "hi"}); err != nil {
			return nil, err
		}
		if err := sc.SetEventPayload("order.unknown", 1); err == nil {
			return nil, errors.New("SetEventPayload of an undeclared event succeeded")
		}
		return map[string]int{"amount": 3}, nil // no order_id
	})
	eng := eventEngine(t, st, &tasker.Config{Workers: 2, Logger: zap.New(core)},
		map[string]tasker.StepHandler{"ev.work": work}, nil, mustParse(t, schemaYAML))
	sub := eng.DomainEvents().Subscribe(10)
	task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "strict"})
	if task.State != tasker.TaskComplete {
		t.Fatalf("task %s, want complete", task.State)
	}
	got := receiveN(t, sub.C(), 1)
	stopEngine(t, eng)
	got = append(got, rest(t, sub.C())...)
	if len(got) != 1 || got[0].Name != "order.noted" || string(got[0].Payload) != `{"note":"hi"}` {
		t.Fatalf("published %+v, want only order.noted with the handler's payload", got)
	}
	if s := eng.DomainEventStats(); s.Rejected != 1 || s.Published != 1 {
		t.Errorf("stats = %+v, want 1 rejected, 1 published", s)
	}
	logged := logs.FilterMessageSnippet("breaks its schema").All()
	if len(logged) != 1 || logged[0].ContextMap()["event"] != "order.paid" || !strings.Contains(fmtViolations(logged[0]), "order_id") {
		t.Errorf("logged %v, want one entry for order.paid naming order_id", logged)
	}
	if es := pendingOutbox(t, st); len(es) != 0 {
		t.Errorf("outbox holds %d entries, want none", len(es))
	}
}

// fmtViolations renders a log entry's violations field.
func fmtViolations(e observer.LoggedEntry) string {
	b, _ := json.Marshal(e.ContextMap()["violations"])
	return string(b)
}

const retryYAML = `
name: retried
namespace_name: ev
version: "1.0.0"
steps:
  - name: work
    handler: {callable: ev.work}
    publishes_events:
      - {name: e_durable, schema: {}, publisher: flaky}
      - {name: e_fast, schema: {}, delivery_mode: fast, publisher: down}
`

// A durable event whose publisher fails is delivered again, with backoff,
// until it is accepted, with the same ID; a fast one is tried once.
func TestDomainEventsFailingPublisherRetriedForDurable(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		flaky, down := newRecorder(2), newRecorder(-1)
		eng := eventEngine(t, st, nil, map[string]tasker.StepHandler{"ev.work": result(1)},
			map[string]tasker.Publisher{"flaky": flaky, "down": down}, mustParse(t, retryYAML))
		task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "retried"})
		if task.State != tasker.TaskComplete {
			t.Fatalf("task %s, want complete", task.State)
		}
		tries := receiveN(t, flaky.calls, 3)
		receiveN(t, down.calls, 1)
		stopEngine(t, eng)
		if tries[0].ID != tries[1].ID || tries[1].ID != tries[2].ID {
			t.Errorf("retries carry IDs %s, %s, %s; want one", tries[0].ID, tries[1].ID, tries[2].ID)
		}
		if len(flaky.accepted()) != 1 || len(flaky.calls) != 0 || len(down.calls) != 0 {
			t.Errorf("flaky accepted %d (+%d calls), down called %d more times", len(flaky.accepted()), len(flaky.calls), len(down.calls))
		}
		if s := eng.DomainEventStats(); s != (tasker.DomainEventStats{Published: 1, Failed: 3}) {
			t.Errorf("stats = %+v, want 1 published, 3 failed", s)
		}
		if es := pendingOutbox(t, st); len(es) != 0 {
			t.Errorf("outbox holds %d entries", len(es))
		}
	})
}

// An outbox entry written but not delivered when the engine stops is
// delivered by the next engine on the same SQLite file.
func TestDomainEventsDeliveredAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasker.db")
	open := func() store.Store {
		st, err := sqlite.Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	down := newRecorder(-1)
	handlers := map[string]tasker.StepHandler{"ev.charge": result(map[string]string{"order_id": "o-9"}), "ev.ship": result(nil)}
	eng := eventEngine(t, st, nil, handlers, map[string]tasker.Publisher{"rec": down}, mustParse(t, paidYAML))
	bus := eng.DomainEvents().Subscribe(10)
	task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "pay"})
	first := receiveN(t, down.calls, 1)[0]
	// The step's other event goes to the bus, delivered from the outbox
	// too: stopping before that delivery would leave it there as well.
	receiveN(t, bus.C(), 1)
	stopEngine(t, eng)
	if es := pendingOutbox(t, st); len(es) != 1 || es[0].ID != first.ID {
		t.Fatalf("outbox after stop holds %v, want the undelivered event %s", outboxIDs(es), first.ID)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = open()
	defer st.Close()
	rec := newRecorder(0)
	eng = eventEngine(t, st, nil, handlers, map[string]tasker.Publisher{"rec": rec}, mustParse(t, paidYAML))
	got := receiveN(t, rec.calls, 1)[0]
	stopEngine(t, eng)
	if got.ID != first.ID || got.TaskID != task.ID || string(got.Payload) != `{"order_id":"o-9"}` {
		t.Errorf("delivered %+v, want event %s of task %s", got, first.ID, task.ID)
	}
	if es := pendingOutbox(t, st); len(es) != 0 {
		t.Errorf("outbox holds %d entries after delivery", len(es))
	}
}

// RegisterPublisher refuses an empty name, a nil publisher and a name
// twice.
func TestRegisterPublisherErrors(t *testing.T) {
	eng, err := tasker.New(memory.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := newRecorder(0)
	if eng.RegisterPublisher("", p) == nil || eng.RegisterPublisher("x", nil) == nil {
		t.Error("an empty name or a nil publisher was registered")
	}
	if err := eng.RegisterPublisher("x", p); err != nil {
		t.Fatal(err)
	}
	if eng.RegisterPublisher("x", p) == nil {
		t.Error("a name was registered twice")
	}
}

// plainStore is a Store that is not a store.Outboxer.
type plainStore struct{ store.Store }

// Without an outbox in the store, a durable event is delivered at once, as
// a fast one, and AddTemplates warns about it.
func TestDomainEventsWithoutOutboxAreFast(t *testing.T) {
	mem := memory.New()
	defer mem.Close()
	core, logs := observer.New(zap.WarnLevel)
	rec := newRecorder(0)
	eng := eventEngine(t, plainStore{mem}, &tasker.Config{Workers: 2, Logger: zap.New(core)},
		map[string]tasker.StepHandler{"ev.charge": result(map[string]string{"order_id": "o-1"}), "ev.ship": result(nil)},
		map[string]tasker.Publisher{"rec": rec}, mustParse(t, paidYAML))
	if n := logs.FilterMessageSnippet("keeps no outbox").Len(); n != 1 {
		t.Errorf("%d warnings about the missing outbox, want 1", n)
	}
	submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "pay"})
	// Delivered by the worker before the task's end was written.
	if got := rec.accepted(); len(got) != 1 || got[0].Name != "order.paid" {
		t.Fatalf("delivered %+v, want order.paid at once", got)
	}
	if es := pendingOutbox(t, mem); len(es) != 0 {
		t.Errorf("outbox holds %d entries", len(es))
	}
}

const decisionEventsYAML = `
name: routed
namespace_name: ev
version: "1.0.0"
steps:
  - {name: begin, handler: {callable: ev.next}}
  - name: route
    type: decision
    dependencies: [begin]
    handler: {callable: ev.route}
    publishes_events:
      - {name: routed, schema: {}, delivery_mode: fast}
      - {name: route_failed, schema: {}, condition: permanent_failure, delivery_mode: fast}
  - {name: next, dependencies: [route], handler: {callable: ev.next}}
`

// A decision whose choice is invalid fails: it publishes the failure's
// events, not the success's its handler's return looked like.
func TestDomainEventsFollowTheRecordedOutcome(t *testing.T) {
	st := memory.New()
	defer st.Close()
	eng := eventEngine(t, st, nil, map[string]tasker.StepHandler{
		"ev.route": tasker.HandlerFunc(func(_ context.Context, sc *tasker.StepContext) (any, error) {
			var to string
			_ = sc.Input("to", &to)
			return tasker.Decide(to), nil
		}),
		"ev.next": result(nil)}, nil, mustParse(t, decisionEventsYAML))
	sub := eng.DomainEvents().Subscribe(10)
	submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "routed", Context: map[string]string{"to": "next"}})
	submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "routed", Context: map[string]string{"to": "nowhere"}})
	stopEngine(t, eng)
	var got []string
	for _, e := range rest(t, sub.C()) {
		got = append(got, e.Name+"/"+e.Outcome)
	}
	if want := []string{"routed/success", "route_failed/permanent_failure"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// domainKillEnv tells a child process of TestDomainEventsDeliveredAfterSIGKILL
// its SQLite file.
const domainKillEnv = "TASKER_DOMAIN_KILL_CHILD"

// TestDomainEventsDeliveredAfterSIGKILL: a durable event whose delivery was
// under way when its process was killed (SIGKILL: nothing acknowledged) is
// delivered by the next engine on the file: at least once across a crash.
func TestDomainEventsDeliveredAfterSIGKILL(t *testing.T) {
	handlers := map[string]tasker.StepHandler{"ev.charge": result(map[string]string{"order_id": "o-9"}), "ev.ship": result(nil)}
	if path := os.Getenv(domainKillEnv); path != "" {
		domainKillChild(t, path, handlers)
		return
	}
	path := filepath.Join(t.TempDir(), "tasker.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDomainEventsDeliveredAfterSIGKILL$", "-test.count=1")
	cmd.Env = append(os.Environ(), domainKillEnv+"="+path, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var taskID string
	if _, err := fmt.Fscanf(stdout, "delivering %s\n", &taskID); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child said nothing: %v", err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	st, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := newRecorder(0)
	eng := eventEngine(t, st, nil, handlers, map[string]tasker.Publisher{"rec": rec}, mustParse(t, paidYAML))
	got := receiveN(t, rec.calls, 1)[0]
	stopEngine(t, eng)
	if got.TaskID != taskID || string(got.Payload) != `{"order_id":"o-9"}` {
		t.Errorf("delivered %+v, want the killed process's event of task %s", got, taskID)
	}
}

// domainKillChild runs a task whose durable event's delivery blocks, tells
// its parent, and waits to be killed.
func domainKillChild(t *testing.T, path string, handlers map[string]tasker.StepHandler) {
	st, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	delivering := make(chan string, 1)
	stuck := tasker.PublisherFunc(func(ctx context.Context, e tasker.PublishedEvent) error {
		delivering <- e.TaskID
		select {} // never acknowledged: the parent kills this process
	})
	eng := eventEngine(t, st, nil, handlers, map[string]tasker.Publisher{"rec": stuck}, mustParse(t, paidYAML))
	if _, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "ev", Name: "pay"}); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("delivering %s\n", <-delivering)
	select {}
}
