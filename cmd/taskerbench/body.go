package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gotasker/tasker"
)

// bodyNames lists the step bodies -body accepts, the default first.
var bodyNames = []string{"noop", "decode"}

// stepBody is the work a step does before any -sleep.
type stepBody func(*tasker.StepContext) (any, error)

// benchHandler returns the handler of every step of sh: the body named
// body, then, when sleep is positive, a sleep unless the step's context
// ends first.
func benchHandler(body string, sh shape, sleep time.Duration) tasker.HandlerFunc {
	work := noopBody()
	if body == "decode" {
		work = decodeBody(sh.steps)
	}
	if sleep <= 0 {
		return func(_ context.Context, sc *tasker.StepContext) (any, error) { return work(sc) }
	}
	return func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		v, err := work(sc)
		if err != nil {
			return nil, err
		}
		t := time.NewTimer(sleep)
		defer t.Stop()
		select {
		case <-t.C:
			return v, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// noopBody returns {} at once.
func noopBody() stepBody {
	var result any = json.RawMessage(`{}`) // boxed once, not per call
	return func(*tasker.StepContext) (any, error) { return result, nil }
}

// decodeBody is what an application's step typically does with its
// inputs: it decodes each parent's result into a map, checks that the map
// is that parent's, and returns a small map of its own, which the engine
// encodes. A result that fails the check is a permanent failure, so that a
// task whose results were lost or mixed up ends in error and is not counted
// complete.
func decodeBody(steps []stepDef) stepBody {
	parents := make(map[string][]string, len(steps))
	for _, st := range steps {
		parents[st.name] = st.deps
	}
	return func(sc *tasker.StepContext) (any, error) {
		name := sc.StepName()
		deps := parents[name]
		for _, p := range deps {
			var m map[string]any
			if err := sc.DependencyResult(p, &m); err != nil {
				return nil, badParent(name, p, err)
			}
			if m["step"] != p || m["ok"] != true {
				return nil, badParent(name, p, fmt.Errorf("unexpected result %v", m))
			}
		}
		return map[string]any{"step": name, "ok": true, "parents": len(deps)}, nil
	}
}

// badParent is the permanent failure of step when parent's result is
// missing or not parent's.
func badParent(step, parent string, err error) error {
	return &tasker.StepError{Message: fmt.Sprintf("step %s: result of %s: %v", step, parent, err),
		Type: tasker.ErrorPermanent, Code: "BAD_PARENT_RESULT", Err: err}
}
