package taskerui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/taskerhttp"
	"github.com/gotasker/tasker/taskerui"
)

// demoTemplate has every step type: a decision that chooses express (so
// freight is never created), a batchable step with two workers, a step that
// fails once and then succeeds, a deferred convergence, and hold, which runs
// until the test lets it go, with ship after it.
const demoTemplate = `
name: ui_demo
namespace_name: uitest
version: "1.0.0"
steps:
  - name: fetch_order
    handler: {callable: ui.ok}
  - name: route
    type: decision
    dependencies: [fetch_order]
    handler: {callable: ui.route}
  - name: express
    dependencies: [route]
    handler: {callable: ui.ok}
  - name: freight
    dependencies: [route]
    handler: {callable: ui.ok}
  - name: split
    type: batchable
    dependencies: [fetch_order]
    handler: {callable: ui.split}
    batch_config: {worker_template: pack, batch_size: 1, parallelism: 2}
  - name: pack
    type: batch_worker
    dependencies: [split]
    handler: {callable: ui.ok}
  - name: flaky
    dependencies: [fetch_order]
    handler: {callable: ui.flaky}
    retry: {max_attempts: 3, backoff: constant, backoff_base_ms: 20}
  - name: gather
    type: deferred_convergence
    dependencies: [express, freight, pack, flaky]
    handler: {callable: ui.ok}
  - name: hold
    dependencies: [gather]
    handler: {callable: ui.hold}
  - name: ship
    dependencies: [hold]
    handler: {callable: ui.ok}
`

// flakyMessage is the error of flaky's first attempt.
const flakyMessage = "warehouse busy, try again"

// world is an engine running demoTemplate, served as the REST API under
// /api/v1 and the page under /ui/.
type world struct {
	eng     *tasker.Engine
	srv     *httptest.Server
	holding chan struct{} // closed when hold's handler has started
	release chan struct{} // close to let hold's handler return
}

// newWorld starts the engine and the server; both are stopped when the
// test ends. api and ui configure the two handlers.
func newWorld(t *testing.T, api *taskerhttp.Options, ui taskerui.Options) *world {
	t.Helper()
	eng, err := tasker.New(memory.New(), &tasker.Config{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{eng: eng, holding: make(chan struct{}), release: make(chan struct{})}
	w.register(t)
	tmpl, err := tasker.ParseTemplate("ui_demo.yaml", []byte(demoTemplate))
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.AddTemplates(tmpl); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	apiH, err := taskerhttp.New(eng, api)
	if err != nil {
		t.Fatal(err)
	}
	uiH, err := taskerui.Handler(ui)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", apiH)
	mux.Handle("/ui/", http.StripPrefix("/ui", uiH))
	w.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		w.let()
		w.srv.Close()
		if err := eng.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return w
}

// let lets hold's handler return, once.
func (w *world) let() {
	select {
	case <-w.release:
	default:
		close(w.release)
	}
}

func (w *world) register(t *testing.T) {
	t.Helper()
	handlers := map[string]tasker.HandlerFunc{
		"ui.ok": func(context.Context, *tasker.StepContext) (any, error) {
			return map[string]any{"ok": true}, nil
		},
		"ui.route": func(context.Context, *tasker.StepContext) (any, error) { return tasker.Decide("express"), nil },
		"ui.split": func(context.Context, *tasker.StepContext) (any, error) {
			return tasker.CreateBatches(tasker.CursorRanges(2, 1)), nil
		},
		"ui.flaky": func(_ context.Context, sc *tasker.StepContext) (any, error) {
			if sc.Attempt() == 1 {
				return nil, &tasker.StepError{Message: flakyMessage, Type: tasker.ErrorRetryable, Code: "BUSY", Retryable: true}
			}
			return map[string]any{"picked": 3, "attempt": sc.Attempt()}, nil
		},
		"ui.hold": func(ctx context.Context, _ *tasker.StepContext) (any, error) {
			close(w.holding)
			select {
			case <-w.release:
				return map[string]any{"held": true}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}
	for name, h := range handlers {
		if err := w.eng.Register(name, h); err != nil {
			t.Fatal(err)
		}
	}
}

// submit starts a task of demoTemplate and waits until hold runs: every
// step before it has ended, so the task's shape is final.
func (w *world) submit(t *testing.T) *tasker.Task {
	t.Helper()
	ctx := context.Background()
	id, err := w.eng.Submit(ctx, tasker.SubmitRequest{Namespace: "uitest", Name: "ui_demo",
		Initiator: "test", SourceSystem: "taskerui", Reason: "draw me", Tags: []string{"ui"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.holding:
	case <-time.After(20 * time.Second):
		t.Fatal("hold did not start within 20 s")
	}
	task, err := w.eng.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if s := task.Step("hold"); s == nil || s.State != tasker.StepInProgress {
		t.Fatalf("hold is %+v, want in_progress", s)
	}
	return task
}

// wait waits for the task to end.
func (w *world) wait(t *testing.T, id string) *tasker.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	task, err := w.eng.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return task
}
