package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
)

var createCases = []testCase{
	{"CreateTask stores the task and all its steps and reports created", testCreateStores},
	{"CreateTask fills an empty ID with a unique one", testCreateAssignsID},
	{"Task and Steps round-trip every field, times exact to the nanosecond in UTC", testCreateRoundTrip},
	{"Steps are listed by Position, then Name, whatever order they were given in", testStepsOrdered},
	{"a task without steps is stored", testCreateNoSteps},
	{"a second CreateTask with a known idempotency key returns the first ID and stores nothing", testIdempotencyKey},
	{"an idempotency key dedupes only within one Namespace and Name", testIdempotencyKeyPerTemplate},
	{"an empty idempotency key never conflicts", testEmptyKey},
	{"CreateTask with a taken ID wraps ErrConflict and changes nothing", testCreateTakenID},
	{"CreateTask with an invalid step stores nothing", testCreateAtomic},
	{"times without an int64 nanosecond form are rejected", testTimeRange},
	{"Task, Steps and Transitions of an unknown task wrap ErrNotFound", testNotFound},
	{"records are copied in and out: callers cannot change stored data", testNoAliasing},
}

func testCreateStores(t *testing.T, s store.Store) {
	task := sampleTask("t1")
	steps := sampleSteps("validate", "charge", "ship")
	id, created, err := s.CreateTask(context.Background(), task, steps)
	if err != nil || !created || id != "t1" {
		t.Fatalf("CreateTask = %q, %v, %v; want %q, true, nil", id, created, err, "t1")
	}
	checkTask(t, getTask(t, s, id), task)
	checkSteps(t, getSteps(t, s, id), withTaskID(id, steps))
	if trs := getTransitions(t, s, id); len(trs) != 0 {
		t.Errorf("Transitions of a new task = %+v, want none", trs)
	}
}

func testCreateAssignsID(t *testing.T, s store.Store) {
	ctx := context.Background()
	ids := map[string]bool{}
	for range 3 {
		task := sampleTask("")
		id, created, err := s.CreateTask(ctx, task, sampleSteps("a"))
		if err != nil || !created || id == "" {
			t.Fatalf("CreateTask without ID = %q, %v, %v; want a new ID, true, nil", id, created, err)
		}
		if ids[id] {
			t.Fatalf("CreateTask assigned %q twice", id)
		}
		ids[id] = true
		task.ID = id
		checkTask(t, getTask(t, s, id), task)
		checkSteps(t, getSteps(t, s, id), withTaskID(id, sampleSteps("a")))
	}
}

func testCreateRoundTrip(t *testing.T, s store.Store) {
	task := sampleTask("t1")
	task.IdempotencyKey = "key-1"
	task.Context = json.RawMessage("{ \"spaced\" :  [1, 2.50, \"\\u00e9\"] }\n")
	steps := []store.Step{{
		Name: "charge", Position: 0, State: "failed", Attempts: 3,
		Result: json.RawMessage(`{"partial": true}`),
		Error: &store.Failure{Message: "card declined", Type: "payment", Code: "E42",
			Retryable: true, Attempt: 3, Stack: "goroutine 1 [running]:\nmain.main()"},
		NextAttemptAt: at(90).Add(7 * time.Nanosecond),
		UpdatedAt:     at(60).In(time.UTC),
	}}
	if _, _, err := s.CreateTask(context.Background(), task, steps); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	checkTask(t, getTask(t, s, "t1"), task)
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", steps))
}

func testStepsOrdered(t *testing.T, s store.Store) {
	steps := []store.Step{
		{Name: "c", Position: 2, State: "pending"},
		{Name: "z", Position: 0, State: "pending"},
		{Name: "b", Position: 1, State: "pending"},
		{Name: "a", Position: 1, State: "pending"},
	}
	if _, _, err := s.CreateTask(context.Background(), sampleTask("t1"), steps); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	got := stepNames(getSteps(t, s, "t1"))
	if want := []string{"z", "a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("Steps order = %v, want %v", got, want)
	}
}

func testCreateNoSteps(t *testing.T, s store.Store) {
	create(t, s, "t1")
	if steps := getSteps(t, s, "t1"); len(steps) != 0 {
		t.Errorf("Steps = %+v, want none", steps)
	}
}

func testIdempotencyKey(t *testing.T, s store.Store) {
	ctx := context.Background()
	first := sampleTask("t1")
	first.IdempotencyKey = "order-42"
	if _, _, err := s.CreateTask(ctx, first, sampleSteps("a")); err != nil {
		t.Fatalf("first CreateTask: %v", err)
	}
	// Another version of the same template is the same named task.
	second := sampleTask("t2")
	second.IdempotencyKey = "order-42"
	second.Version = "2.0.0"
	id, created, err := s.CreateTask(ctx, second, sampleSteps("x", "y"))
	if err != nil || created || id != "t1" {
		t.Fatalf("second CreateTask = %q, %v, %v; want %q, false, nil", id, created, err, "t1")
	}
	checkTask(t, getTask(t, s, "t1"), first)
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", sampleSteps("a")))
	_, err = s.Task(ctx, "t2")
	wantErr(t, "Task of the deduplicated task", err, store.ErrNotFound)
	if ids := listIDs(t, s, store.Filter{}); !slices.Equal(ids, []string{"t1"}) {
		t.Errorf("ListTasks = %v, want [t1]", ids)
	}
	// The key is consulted before the ID: a retry may reuse the first ID.
	id, created, err = s.CreateTask(ctx, first, sampleSteps("a"))
	if err != nil || created || id != "t1" {
		t.Errorf("retried CreateTask = %q, %v, %v; want %q, false, nil", id, created, err, "t1")
	}
}

func testIdempotencyKeyPerTemplate(t *testing.T, s store.Store) {
	ctx := context.Background()
	var want []store.Task
	for _, tmpl := range []struct{ id, namespace, name string }{
		{"t1", "shop", "order"},
		{"t2", "shop", "refund"},   // same namespace, other name
		{"t3", "billing", "order"}, // other namespace, same name
	} {
		task := sampleTask(tmpl.id)
		task.Namespace, task.Name, task.IdempotencyKey = tmpl.namespace, tmpl.name, "order-42"
		id, created, err := s.CreateTask(ctx, task, sampleSteps("a"))
		if err != nil || !created || id != tmpl.id {
			t.Fatalf("CreateTask %s/%s with a key used by another template = %q, %v, %v; want %q, true, nil",
				tmpl.namespace, tmpl.name, id, created, err, tmpl.id)
		}
		want = append(want, task)
	}
	for _, task := range want {
		checkTask(t, getTask(t, s, task.ID), task)
		// A retry within each template finds its own task.
		retry := task
		retry.ID = ""
		id, created, err := s.CreateTask(ctx, retry, sampleSteps("a"))
		if err != nil || created || id != task.ID {
			t.Errorf("retried CreateTask %s/%s = %q, %v, %v; want %q, false, nil",
				task.Namespace, task.Name, id, created, err, task.ID)
		}
	}
	if ids := listIDs(t, s, store.Filter{}); !slices.Equal(ids, []string{"t1", "t2", "t3"}) {
		t.Errorf("ListTasks = %v, want [t1 t2 t3]", ids)
	}
}

func testEmptyKey(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	create(t, s, "t2", "a")
	if ids := listIDs(t, s, store.Filter{}); !slices.Equal(ids, []string{"t1", "t2"}) {
		t.Errorf("ListTasks = %v, want [t1 t2]", ids)
	}
}

func testCreateTakenID(t *testing.T, s store.Store) {
	first := create(t, s, "t1", "a")
	other := sampleTask("t1")
	other.Name = "other"
	_, created, err := s.CreateTask(context.Background(), other, sampleSteps("x"))
	wantErr(t, "CreateTask with a taken ID", err, store.ErrConflict)
	if created {
		t.Error("CreateTask with a taken ID reported created")
	}
	checkTask(t, getTask(t, s, "t1"), first)
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", sampleSteps("a")))
}

func testCreateAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	for name, steps := range map[string][]store.Step{
		"duplicate name": sampleSteps("a", "b", "a"),
		"empty name":     sampleSteps("a", ""),
	} {
		task := sampleTask("t1")
		task.IdempotencyKey = "k"
		if _, _, err := s.CreateTask(ctx, task, steps); err == nil {
			t.Errorf("CreateTask with a step with a %s succeeded", name)
		}
		_, err := s.Task(ctx, "t1")
		wantErr(t, "Task after a failed CreateTask", err, store.ErrNotFound)
	}
	// The failed attempts left no idempotency key behind.
	task := sampleTask("t2")
	task.IdempotencyKey = "k"
	if id, created, err := s.CreateTask(ctx, task, nil); err != nil || !created || id != "t2" {
		t.Errorf("CreateTask after failures = %q, %v, %v; want %q, true, nil", id, created, err, "t2")
	}
}

func testTimeRange(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, bad := range []time.Time{
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		task := sampleTask("t1")
		task.CreatedAt = bad
		if _, _, err := s.CreateTask(ctx, task, nil); err == nil {
			t.Errorf("CreateTask with CreatedAt %v succeeded", bad)
		}
		steps := sampleSteps("a")
		steps[0].NextAttemptAt = bad
		if _, _, err := s.CreateTask(ctx, sampleTask("t1"), steps); err == nil {
			t.Errorf("CreateTask with NextAttemptAt %v succeeded", bad)
		}
	}
	create(t, s, "t1", "a")
	c := claim("t1", "a", 1, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC))
	if err := s.Apply(ctx, []store.Change{c}); err == nil {
		t.Error("Apply with At in 2300 succeeded")
	}
	if trs := getTransitions(t, s, "t1"); len(trs) != 0 {
		t.Errorf("rejected Apply left transitions %+v", trs)
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	create(t, s, "t1", "a")
	_, err := s.Task(ctx, "nope")
	wantErr(t, "Task", err, store.ErrNotFound)
	_, err = s.Steps(ctx, "nope")
	wantErr(t, "Steps", err, store.ErrNotFound)
	_, err = s.Transitions(ctx, "nope")
	wantErr(t, "Transitions", err, store.ErrNotFound)
}

func testNoAliasing(t *testing.T, s store.Store) {
	ctx := context.Background()
	task := sampleTask("t1")
	steps := sampleSteps("a")
	steps[0].Result = json.RawMessage(`{"r":1}`)
	steps[0].Error = &store.Failure{Message: "m"}
	want, wantSteps := sampleTask("t1"), withTaskID("t1", sampleSteps("a"))
	wantSteps[0].Result, wantSteps[0].Error = json.RawMessage(`{"r":1}`), &store.Failure{Message: "m"}
	if _, _, err := s.CreateTask(ctx, task, steps); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	task.Tags[0], task.Context[0] = "mutated", '['
	steps[0].Result[0], steps[0].Error.Message = '[', "mutated"

	got, gotSteps := getTask(t, s, "t1"), getSteps(t, s, "t1")
	got.Tags[0], got.Context[0] = "mutated", '['
	gotSteps[0].Result[0], gotSteps[0].Error.Message = '[', "mutated"

	c := complete("t1", "a", 0, `{"x":1}`, at(5))
	c.From, c.Error = "pending", &store.Failure{Message: "e"}
	apply(t, s, c)
	wantTrail := transitionsOf(c)
	c.Result[0], c.Error.Message = '[', "mutated"
	wantSteps[0].State, wantSteps[0].UpdatedAt = "completed", at(5)
	wantSteps[0].Result, wantSteps[0].Error = json.RawMessage(`{"x":1}`), &store.Failure{Message: "e"}

	getTransitions(t, s, "t1")[0].To = "mutated"

	checkTask(t, getTask(t, s, "t1"), want)
	checkSteps(t, getSteps(t, s, "t1"), wantSteps)
	checkTransitions(t, getTransitions(t, s, "t1"), wantTrail)
}
