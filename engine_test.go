package tasker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
)

// oneStep is a template with one step calling "test.handler", which may be
// retried twice more, 1 ms apart.
const oneStep = `
name: one_step
namespace_name: test
version: "1.0.0"
steps:
  - name: only
    handler:
      callable: test.handler
    retry:
      max_attempts: 3
      backoff: constant
      backoff_base_ms: 1
`

func runOne(t *testing.T, st store.Store, h tasker.HandlerFunc) *tasker.Task {
	t.Helper()
	eng := startEngine(t, st, map[string]tasker.StepHandler{"test.handler": h}, mustParse(t, oneStep))
	return submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "one_step"})
}

func TestHandlerPanicIsRecordedNotFatal(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		task := runOne(t, st, func(context.Context, *tasker.StepContext) (any, error) {
			var m map[string]int
			m["boom"]++ // a nil map write panics
			return nil, nil
		})
		s := step(t, task, "only")
		if task.State != tasker.TaskFailed || s.State != tasker.StepFailed || s.Attempts != 1 {
			t.Fatalf("task %s, step %s after %d attempts; want error after 1 (panics are not retried)", task.State, s.State, s.Attempts)
		}
		e := s.LastError
		if e == nil || e.Type != tasker.ErrorHandler || e.Code != tasker.CodePanic || e.Retryable ||
			!strings.Contains(e.Message, "assignment to entry in nil map") || !strings.Contains(e.Stack, "TestHandlerPanicIsRecordedNotFatal") {
			t.Fatalf("failure = %+v", e)
		}
	})
}

func TestHandlerNonJSONResult(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		task := runOne(t, st, func(context.Context, *tasker.StepContext) (any, error) {
			return map[string]float64{"ratio": math.Inf(1)}, nil
		})
		s := step(t, task, "only")
		if s.State != tasker.StepFailed || s.Attempts != 1 || s.Result != nil {
			t.Fatalf("step %s after %d attempts, result %s; want error after 1, no result", s.State, s.Attempts, s.Result)
		}
		if e := s.LastError; e == nil || e.Code != tasker.CodeResultNotJSON || e.Type != tasker.ErrorHandler || e.Retryable {
			t.Fatalf("failure = %+v", e)
		}
	})
}

func TestHandlerPlainErrorIsRetried(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		var mu sync.Mutex
		calls := 0
		task := runOne(t, st, func(_ context.Context, sc *tasker.StepContext) (any, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if sc.Attempt() != calls || sc.MaxAttempts() != 3 {
				return nil, &tasker.StepError{Message: fmt.Sprintf("attempt %d of %d on call %d", sc.Attempt(), sc.MaxAttempts(), calls)}
			}
			if sc.Attempt() < 3 {
				return nil, errors.New("connection reset")
			}
			return map[string]int{"attempt": sc.Attempt()}, nil
		})
		s := step(t, task, "only")
		if task.State != tasker.TaskComplete || s.Attempts != 3 || string(s.Result) != `{"attempt":3}` {
			t.Fatalf("task %s, %d attempts, result %s; want complete on attempt 3", task.State, s.Attempts, s.Result)
		}
		if e := s.LastError; e == nil || e.Type != tasker.ErrorHandler || !e.Retryable || e.Message != "connection reset" || e.Attempt != 2 {
			t.Fatalf("last failure = %+v, want the retryable plain error of attempt 2", e)
		}
	})
}

func TestHandlerPlainErrorExhaustsAttempts(t *testing.T) {
	task := runOne(t, memory.New(), func(context.Context, *tasker.StepContext) (any, error) {
		return nil, errors.New("still down")
	})
	if s := step(t, task, "only"); task.State != tasker.TaskFailed || s.Attempts != 3 || s.State != tasker.StepFailed {
		t.Fatalf("task %s, step %s after %d attempts; want error after 3", task.State, s.State, s.Attempts)
	}
}

func TestSubmitRejectsInvalidInputAndStoresNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := startEngine(t, st, orderHandlers(orders.Handlers{}), ordersTemplate(t))
		input := map[string]any{
			"cart_items": []any{
				map[string]any{"sku": "A", "name": "A", "quantity": "two", "unit_price": "cheap"},
			},
		}
		_, err := eng.Submit(context.Background(), orderRequest(input))
		var ie *tasker.InputError
		if !errors.Is(err, tasker.ErrInvalidInput) || !errors.As(err, &ie) {
			t.Fatalf("Submit error = %v, want an *InputError", err)
		}
		want := []string{"$.customer_email", "$.cart_items[0].quantity", "$.cart_items[0].unit_price"}
		for _, p := range want {
			if !hasViolation(ie, p) {
				t.Errorf("no violation at %s in %v", p, ie.Violations)
			}
		}
		input = map[string]any{"customer_email": "not-an-email", "cart_items": []any{}}
		_, err = eng.Submit(context.Background(), orderRequest(input))
		if !errors.As(err, &ie) || !hasViolation(ie, "$.customer_email") || len(ie.Violations) != 1 {
			t.Errorf("bad email: error = %v", err)
		}
		tasks, err := eng.List(context.Background(), tasker.TaskFilter{})
		if err != nil || len(tasks) != 0 {
			t.Errorf("List = %d tasks, %v; want nothing stored", len(tasks), err)
		}
	})
}

func hasViolation(ie *tasker.InputError, path string) bool {
	for _, v := range ie.Violations {
		if v.Path == path {
			return true
		}
	}
	return false
}

func TestIdempotencyKey(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := startEngine(t, st, orderHandlers(orders.Handlers{}), ordersTemplate(t))
		req := orderRequest(guideInput(orders.TokenSuccess))
		req.IdempotencyKey = "order-42"
		first := submitAndWait(t, eng, req)
		second, err := eng.Submit(context.Background(), req)
		if err != nil || second != first.ID {
			t.Fatalf("second Submit = %q, %v; want the first task's ID %q", second, err, first.ID)
		}
		tasks, err := eng.List(context.Background(), tasker.TaskFilter{Namespace: "ecommerce"})
		if err != nil || len(tasks) != 1 || tasks[0].IdempotencyKey != "order-42" {
			t.Fatalf("List = %+v, %v; want exactly one task", tasks, err)
		}
		again, err := eng.Get(context.Background(), first.ID)
		if err != nil || step(t, again, "validate_cart").Attempts != 1 {
			t.Errorf("the first task's steps ran again: %+v, %v", again, err)
		}
	})
}

func TestVersionSelection(t *testing.T) {
	versions := []string{"1.2.0", "1.10.0", "1.9.3"}
	var tmpls []*tasker.Template
	for _, v := range versions {
		tmpls = append(tmpls, mustParse(t, strings.Replace(oneStep, `"1.0.0"`, `"`+v+`"`, 1)))
	}
	h := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) { return "ok", nil })
	eng := startEngine(t, memory.New(), map[string]tasker.StepHandler{"test.handler": h}, tmpls...)

	latest := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "one_step"})
	if latest.Version != "1.10.0" || latest.State != tasker.TaskComplete {
		t.Errorf("no version: ran %s (%s), want the highest, 1.10.0", latest.Version, latest.State)
	}
	pinned := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "one_step", Version: "1.2.0"})
	if pinned.Version != "1.2.0" {
		t.Errorf("version 1.2.0: ran %s", pinned.Version)
	}
	_, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: "one_step", Version: "2.0.0"})
	if !errors.Is(err, tasker.ErrTemplateNotFound) {
		t.Errorf("unknown version: %v, want ErrTemplateNotFound", err)
	}
	if err := eng.AddTemplates(tmpls[0]); !errors.Is(err, tasker.ErrDuplicateTemplate) {
		t.Errorf("adding 1.2.0 again: %v, want ErrDuplicateTemplate", err)
	}
}

func TestRegistryErrors(t *testing.T) {
	eng, err := tasker.New(memory.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) { return nil, nil })
	if err := eng.Register("test.handler", h); err != nil {
		t.Fatal(err)
	}
	if err := eng.Register("test.handler", h); !errors.Is(err, tasker.ErrDuplicateHandler) {
		t.Errorf("second Register = %v, want ErrDuplicateHandler", err)
	}
	if err := eng.AddTemplates(ordersTemplate(t)); err != nil {
		t.Fatal(err)
	}
	err = eng.Start(context.Background())
	if !errors.Is(err, tasker.ErrHandlerNotRegistered) ||
		!strings.Contains(err.Error(), "ecommerce/ecommerce_order_processing@1.0.0") ||
		!strings.Contains(err.Error(), "step process_payment") ||
		!strings.Contains(err.Error(), orders.ProcessPaymentCallable) {
		t.Errorf("Start = %v; want ErrHandlerNotRegistered naming template, step and callable", err)
	}

	started := startEngine(t, memory.New(), map[string]tasker.StepHandler{"test.handler": h}, mustParse(t, oneStep))
	if err := started.AddTemplates(ordersTemplate(t)); !errors.Is(err, tasker.ErrHandlerNotRegistered) {
		t.Errorf("AddTemplates on a started engine = %v, want ErrHandlerNotRegistered", err)
	}
}

func TestManyTasksFromManyGoroutines(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := startEngine(t, st, orderHandlers(orders.Handlers{}), ordersTemplate(t))
		const goroutines, perG = 50, 20
		ids := make(chan string, goroutines*perG)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for k := range perG {
					in := guideInput(orders.TokenSuccess)
					in.CartItems[0].Quantity = 1 + (g*perG+k)%7
					id, err := eng.Submit(context.Background(), orderRequest(in))
					if err != nil {
						t.Error(err)
						return
					}
					ids <- id
				}
			})
		}
		wg.Wait()
		close(ids)
		n := 0
		for id := range ids {
			task, err := eng.Wait(context.Background(), id)
			if err != nil || task.State != tasker.TaskComplete {
				t.Fatalf("task %s: %v, %v", id, task.State, err)
			}
			var cart orders.Cart
			decodeResult(t, task, "validate_cart", &cart)
			var in orders.Input
			if err := json.Unmarshal(task.Context, &in); err != nil || cart.ValidatedItems[0].Quantity != in.CartItems[0].Quantity {
				t.Fatalf("task %s computed its cart from another task's input", id)
			}
			n++
		}
		if n != goroutines*perG {
			t.Fatalf("%d tasks completed, want %d", n, goroutines*perG)
		}
		done, err := eng.List(context.Background(), tasker.TaskFilter{State: tasker.TaskComplete})
		if err != nil || len(done) != goroutines*perG {
			t.Fatalf("List(complete) = %d, %v", len(done), err)
		}
	})
}

// TestDependencyResultOnlyUpstream checks what a handler may read: any
// upstream step, transitively, but not a sibling, even a completed one.
func TestDependencyResultOnlyUpstream(t *testing.T) {
	var h orders.Handlers
	handlers := orderHandlers(h)
	handlers[orders.SendConfirmationCallable] = tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		var cart orders.Cart
		if err := sc.DependencyResult("validate_cart", &cart); err != nil { // two levels up
			return nil, &tasker.StepError{Message: err.Error()}
		}
		return cart.Total, nil
	})
	handlers[orders.CreateOrderCallable] = tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		if raw := sc.RawDependencyResult("send_confirmation"); raw != nil {
			return nil, &tasker.StepError{Message: "read a downstream step"}
		}
		return orders.CreateOrder(ctx, sc)
	})
	handlers[orders.UpdateInventoryCallable] = tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		var v any
		if err := sc.DependencyResult("process_payment", &v); !errors.Is(err, tasker.ErrNoResult) {
			return nil, &tasker.StepError{Message: fmt.Sprintf("sibling's result: %v, want ErrNoResult", err)}
		}
		return h.UpdateInventory(ctx, sc)
	})
	eng := startEngine(t, memory.New(), handlers, ordersTemplate(t))
	task := submitAndWait(t, eng, orderRequest(guideInput(orders.TokenSuccess)))
	if task.State != tasker.TaskComplete || string(step(t, task, "send_confirmation").Result) != "118.77" {
		t.Fatalf("task %s, send_confirmation result %s; want complete with the cart's total", stateOf(task, nil),
			step(t, task, "send_confirmation").Result)
	}
}
