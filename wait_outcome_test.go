package tasker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/store"
)

// withoutTrail is task as WaitOutcome reports it: Get's view without the
// audit trail and the times read off it.
func withoutTrail(task *tasker.Task) *tasker.Task {
	c := *task
	c.Transitions, c.StartedAt, c.FinishedAt = nil, time.Time{}, time.Time{}
	c.Steps = append([]tasker.Step(nil), task.Steps...)
	for i := range c.Steps {
		s := &c.Steps[i]
		s.Transitions, s.StartedAt, s.FinishedAt = nil, time.Time{}, time.Time{}
	}
	return &c
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWaitOutcomeMatchesStore: WaitOutcome, answered from the run's memory,
// reports what Get reads back from the store, less the trail: every step's
// state, attempts, result, failure and sub-task, the steps a decision never
// created and the batch workers it did.
func TestWaitOutcomeMatchesStore(t *testing.T) {
	cases := []struct {
		name  string
		start func(t *testing.T, st store.Store) (*tasker.Engine, tasker.SubmitRequest)
		want  tasker.TaskState
	}{
		{"declined order", func(t *testing.T, st store.Store) (*tasker.Engine, tasker.SubmitRequest) {
			eng := startEngine(t, st, orderHandlers(orders.Handlers{}), ordersTemplate(t))
			return eng, orderRequest(guideInput(orders.TokenDeclined))
		}, tasker.TaskFailed},
		{"decision", func(t *testing.T, st store.Store) (*tasker.Engine, tasker.SubmitRequest) {
			eng := startEngine(t, st, approvalHandlers(nil), mustParse(t, approvalYAML))
			return eng, tasker.SubmitRequest{Namespace: "test", Name: "approval", Context: map[string]any{"amount": 2500}}
		}, tasker.TaskComplete},
		{"batch", func(t *testing.T, st store.Store) (*tasker.Engine, tasker.SubmitRequest) {
			w := &batchWorld{}
			eng := startEngine(t, st, w.handlers(), mustParse(t, batchYAML("fail_fast")))
			return eng, tasker.SubmitRequest{Namespace: "test", Name: "batch", Context: map[string]int{"items": 25}}
		}, tasker.TaskComplete},
		{"sub-task", func(t *testing.T, st store.Store) (*tasker.Engine, tasker.SubmitRequest) {
			w := &refundWorld{issue: func(context.Context, int32) (any, error) { return map[string]any{"refunded": 1}, nil }}
			return startRefunds(t, st, w), tasker.SubmitRequest{Namespace: "customer_success", Name: "process_refund",
				Context: map[string]any{"order": "o-1", "amount": 42}}
		}, tasker.TaskComplete},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st store.Store) {
				eng, req := tc.start(t, st)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				id, err := eng.Submit(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				brief, err := eng.WaitOutcome(ctx, id)
				if err != nil || brief.State != tc.want {
					t.Fatalf("WaitOutcome: %s, want %s", stateOf(brief, err), tc.want)
				}
				full, err := eng.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := jsonOf(t, brief), jsonOf(t, withoutTrail(full)); got != want {
					t.Errorf("WaitOutcome from memory:\n%s\nGet without the trail:\n%s", got, want)
				}
			})
		})
	}
}
