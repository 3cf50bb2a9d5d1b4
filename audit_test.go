package tasker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/store"
)

const flakyTemplate = `
name: flaky
namespace_name: audit
version: "1.0.0"
steps:
  - name: first
    handler: {callable: audit.ok}
  - name: flaky
    handler: {callable: audit.flaky}
    dependencies: [first]
    retry: {max_attempts: 3, backoff: constant, backoff_base_ms: 1, max_backoff_ms: 1}
`

// failTwice fails its first two calls with retryable errors coded FLAKY_1
// and FLAKY_2, then succeeds.
func failTwice() tasker.HandlerFunc {
	var calls atomic.Int32
	return func(context.Context, *tasker.StepContext) (any, error) {
		if n := calls.Add(1); n <= 2 {
			return nil, &tasker.StepError{Message: "not yet", Type: tasker.ErrorRetryable,
				Code: fmt.Sprintf("FLAKY_%d", n), Retryable: true}
		}
		return map[string]bool{"ok": true}, nil
	}
}

func okHandler(context.Context, *tasker.StepContext) (any, error) { return "done", nil }

func TestAuditTrailIsOneOrderedTrailWithEachFailure(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := startEngine(t, st, map[string]tasker.StepHandler{
			"audit.ok": tasker.HandlerFunc(okHandler), "audit.flaky": failTwice(),
		}, mustParse(t, flakyTemplate))
		task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "audit", Name: "flaky"})
		if task.State != tasker.TaskComplete {
			t.Fatalf("task %s, want complete", task.State)
		}
		trail := task.Trail()
		for i, tr := range trail {
			if tr.Seq != i+1 {
				t.Fatalf("trail[%d].Seq = %d, want %d: %+v", i, tr.Seq, i+1, trail)
			}
			if i > 0 && tr.At.Before(trail[i-1].At) {
				t.Errorf("trail[%d] at %v is before trail[%d] at %v", i, tr.At, i-1, trail[i-1].At)
			}
		}
		if first, last := trail[0], trail[len(trail)-1]; first.Step != "" || first.To != "in_progress" ||
			last.Step != "" || last.To != "complete" {
			t.Errorf("trail starts %+v and ends %+v, want the task's start and end", first, last)
		}
		// 2 task transitions, 2 for first, 6 for flaky (3 claims, 3 outcomes).
		if len(trail) != 10 {
			t.Errorf("trail has %d entries, want 10: %+v", len(trail), trail)
		}
		var codes []string
		for _, tr := range step(t, task, "flaky").Transitions {
			if tr.Error != nil {
				codes = append(codes, tr.From+">"+tr.To+":"+tr.Error.Code)
			}
		}
		want := []string{"in_progress>waiting_for_retry:FLAKY_1", "in_progress>waiting_for_retry:FLAKY_2"}
		if !slices.Equal(codes, want) {
			t.Errorf("errors on flaky's transitions = %v, want %v (claims carry none)", codes, want)
		}
		checkHistory(t, step(t, task, "flaky").History())
	})
}

func checkHistory(t *testing.T, h []tasker.Attempt) {
	t.Helper()
	if len(h) != 3 {
		t.Fatalf("History has %d attempts, want 3: %+v", len(h), h)
	}
	for i, a := range h {
		wantOutcome, wantCode := tasker.StepWaitingForRetry, fmt.Sprintf("FLAKY_%d", i+1)
		if i == 2 {
			wantOutcome, wantCode = tasker.StepComplete, ""
		}
		code := ""
		if a.Error != nil {
			code = a.Error.Code
		}
		if a.Attempt != i+1 || a.Outcome != wantOutcome || code != wantCode {
			t.Errorf("attempt %d = #%d %s %q, want #%d %s %q", i, a.Attempt, a.Outcome, code, i+1, wantOutcome, wantCode)
		}
		if a.StartedAt.IsZero() || a.FinishedAt.Before(a.StartedAt) || a.DurationMS < 0 {
			t.Errorf("attempt %d times: %v to %v (%v ms)", i+1, a.StartedAt, a.FinishedAt, a.DurationMS)
		}
	}
}

func TestJSONFormIsSnakeCase(t *testing.T) {
	eng := startEngine(t, newMemory(t), orderHandlers(orders.Handlers{}), ordersTemplate(t))
	task := submitAndWait(t, eng, orderRequest(guideInput(orders.TokenSuccess)))
	b, err := json.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID           string `json:"id"`
		State        string `json:"state"`
		SourceSystem string `json:"source_system"`
		StartedAt    string `json:"started_at"`
		Steps        []struct {
			Name        string            `json:"name"`
			MaxAttempts int               `json:"max_attempts"`
			Transitions []json.RawMessage `json:"transitions"`
		} `json:"steps"`
		Transitions []map[string]any `json:"transitions"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != task.ID || got.State != "complete" || got.SourceSystem != "web" || got.StartedAt == "" ||
		len(got.Steps) != 5 || got.Steps[1].MaxAttempts != 3 || len(got.Steps[1].Transitions) != 2 {
		t.Errorf("JSON form = %s", b)
	}
	if tr := got.Transitions[0]; tr["seq"] != 1.0 || tr["to"] != "in_progress" || tr["step"] != nil {
		t.Errorf("first task transition = %v, want seq 1, to in_progress, no step", tr)
	}
	var raw map[string]any
	_ = json.Unmarshal(b, &raw)
	for _, k := range []string{"State", "ID", "finished_at_", "last_error"} {
		if _, ok := raw[k]; ok {
			t.Errorf("JSON form has key %q: %s", k, b)
		}
	}
	_, err = eng.Submit(context.Background(), orderRequest(map[string]any{"cart_items": "none"}))
	var inErr *tasker.InputError
	if !errors.As(err, &inErr) {
		t.Fatalf("Submit(bad input) = %v, want *InputError", err)
	}
	b, _ = json.Marshal(inErr)
	var form struct {
		Template   string `json:"template"`
		Violations []struct{ Path, Message string }
	}
	if json.Unmarshal(b, &form); form.Template == "" || len(form.Violations) == 0 || form.Violations[0].Path == "" {
		t.Errorf("InputError JSON = %s", b)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := startEngine(t, st, map[string]tasker.StepHandler{
			"audit.ok": tasker.HandlerFunc(okHandler), "audit.flaky": tasker.HandlerFunc(okHandler),
		}, mustParse(t, flakyTemplate))
		var ids []string
		for i, who := range []string{"alice", "bob", "alice", "carol", "alice"} {
			task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "audit", Name: "flaky",
				Initiator: who, SourceSystem: []string{"web", "cron"}[i%2], Tags: []string{who, "all"}})
			ids = append(ids, task.ID)
		}
		ctx := context.Background()
		for _, tt := range []struct {
			f    tasker.TaskFilter
			want []string
		}{
			{tasker.TaskFilter{Initiator: "alice"}, []string{ids[0], ids[2], ids[4]}},
			{tasker.TaskFilter{SourceSystem: "cron"}, []string{ids[1], ids[3]}},
			{tasker.TaskFilter{Tags: []string{"all", "bob"}}, []string{ids[1]}},
			{tasker.TaskFilter{States: []tasker.TaskState{tasker.TaskFailed, tasker.TaskComplete}, After: ids[2]}, ids[3:]},
			{tasker.TaskFilter{Initiator: "alice", After: ids[0], Limit: 1}, []string{ids[2]}},
			{tasker.TaskFilter{State: tasker.TaskPending}, nil},
		} {
			tasks, err := eng.List(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, task := range tasks {
				got = append(got, task.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("List(%+v) = %v, want %v", tt.f, got, tt.want)
			}
		}
	})
}

func TestSubmitUniqueReportsTheDuplicate(t *testing.T) {
	eng := startEngine(t, newMemory(t), map[string]tasker.StepHandler{
		"audit.ok": tasker.HandlerFunc(okHandler), "audit.flaky": tasker.HandlerFunc(okHandler),
	}, mustParse(t, flakyTemplate))
	ctx := context.Background()
	req := tasker.SubmitRequest{Namespace: "audit", Name: "flaky", IdempotencyKey: "order-42"}
	first, err := eng.SubmitUnique(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := eng.SubmitUnique(ctx, req)
	var dup *tasker.DuplicateTaskError
	if !errors.Is(err, tasker.ErrDuplicateTask) || !errors.As(err, &dup) || dup.ID != first || again != first {
		t.Fatalf("SubmitUnique(same key) = %q, %v; want %q with a *DuplicateTaskError naming it", again, err, first)
	}
	if id, err := eng.Submit(ctx, req); err != nil || id != first { // Submit is unchanged
		t.Errorf("Submit(same key) = %q, %v; want %q, nil", id, err, first)
	}
	if _, err := eng.SubmitUnique(ctx, tasker.SubmitRequest{Namespace: "audit", Name: "nope"}); !errors.Is(err, tasker.ErrTemplateNotFound) {
		t.Errorf("SubmitUnique(unknown template) = %v, want ErrTemplateNotFound", err)
	}
	if task, err := eng.Wait(ctx, first); err != nil || task.State != tasker.TaskComplete {
		t.Errorf("Wait = %v, %v; want the task complete", stateOf(task, err), err)
	}
}

func TestTemplatesHandlersAndReady(t *testing.T) {
	ctx := context.Background()
	eng, err := tasker.New(newMemory(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"audit.ok", "audit.flaky"} {
		if err := eng.Register(c, tasker.HandlerFunc(okHandler)); err != nil {
			t.Fatal(err)
		}
	}
	v2 := mustParse(t, `name: flaky
namespace_name: audit
version: "1.10.0"
steps: [{name: only, handler: {callable: audit.ok}}]`)
	if err := eng.AddTemplates(mustParse(t, flakyTemplate), v2); err != nil {
		t.Fatal(err)
	}
	if err := eng.Ready(ctx); !errors.Is(err, tasker.ErrNotStarted) {
		t.Errorf("Ready before Start = %v, want ErrNotStarted", err)
	}
	var got []string
	for _, tm := range eng.Templates() {
		got = append(got, tm.String())
	}
	if want := []string{v2.String(), mustParse(t, flakyTemplate).String()}; !slices.Equal(got, want) {
		t.Errorf("Templates = %v, want %v (highest version first)", got, want)
	}
	if h := eng.Handlers(); !slices.Equal(h, []string{"audit.flaky", "audit.ok"}) {
		t.Errorf("Handlers = %v", h)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := eng.Ready(ctx); err != nil {
		t.Errorf("Ready after Start = %v", err)
	}
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := eng.Ready(ctx); !errors.Is(err, tasker.ErrEngineStopped) {
		t.Errorf("Ready after Stop = %v, want ErrEngineStopped", err)
	}
}
