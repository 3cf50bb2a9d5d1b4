package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/gotasker/tasker/store"
)

var durableCases = []durableCase{
	{"tasks, steps, results and transitions survive close and reopen", testDurableAll},
	{"idempotency keys survive reopen", testDurableKey},
	{"creation order continues across reopen", testDurableOrder},
	{"dead-letter entries, their order and their IDs survive reopen", testDurableDeadLetters},
	{"step checkpoints survive reopen, and are kept and replaced after it", testDurableCheckpoints},
	{"pending outbox entries survive reopen; acknowledged ones stay gone", testDurableOutbox},
	{"leases survive reopen: their owners and tokens; a released task is free after it", testDurableLeases},
}

func testDurableAll(t *testing.T, s store.Store, reopen func(store.Store) store.Store) {
	task := sampleTask("t1")
	task.IdempotencyKey = "k1"
	if _, _, err := s.CreateTask(context.Background(), task, sampleSteps("a", "b", "c")); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	fail := &store.Failure{Message: "boom", Type: "transient", Code: "E1", Retryable: true, Attempt: 1, Stack: "stack"}
	changes := []store.Change{
		{TaskID: "t1", From: "pending", To: "running", At: at(1), By: "engine", Reason: "start"},
		claim("t1", "a", 1, at(2)),
		complete("t1", "a", 1, `{"charged": 12.5}`, at(3)),
		claim("t1", "b", 1, at(4)),
		{TaskID: "t1", Step: "b", From: "in_progress", FromAttempt: 1, To: "pending", Attempt: 1,
			Error: fail, NextAttemptAt: at(60), At: at(5)},
	}
	apply(t, s, changes[:1]...)
	apply(t, s, changes[1:]...)

	s = reopen(s)
	task.State, task.UpdatedAt = "running", at(1)
	checkTask(t, getTask(t, s, "t1"), task)
	steps := withTaskID("t1", sampleSteps("a", "b", "c"))
	steps[0].State, steps[0].Attempts, steps[0].UpdatedAt = "completed", 1, at(3)
	steps[0].Result = json.RawMessage(`{"charged": 12.5}`)
	steps[1].State, steps[1].Attempts, steps[1].UpdatedAt = "pending", 1, at(5)
	steps[1].Error, steps[1].NextAttemptAt = fail, at(60)
	checkSteps(t, getSteps(t, s, "t1"), steps)
	checkTransitions(t, getTransitions(t, s, "t1"), transitionsOf(changes...))

	// The reopened store keeps working on the same records.
	apply(t, s, claim("t1", "b", 2, at(61)))
}

func testDurableKey(t *testing.T, s store.Store, reopen func(store.Store) store.Store) {
	task := sampleTask("t1")
	task.IdempotencyKey = "order-7"
	if _, _, err := s.CreateTask(context.Background(), task, nil); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	s = reopen(s)
	again := sampleTask("t2")
	again.IdempotencyKey = "order-7"
	id, created, err := s.CreateTask(context.Background(), again, nil)
	if err != nil || created || id != "t1" {
		t.Errorf("CreateTask after reopen = %q, %v, %v; want %q, false, nil", id, created, err, "t1")
	}
}

func testDurableOrder(t *testing.T, s store.Store, reopen func(store.Store) store.Store) {
	create(t, s, "t3")
	create(t, s, "t1")
	s = reopen(s)
	create(t, s, "t2")
	s = reopen(s)
	want := []string{"t3", "t1", "t2"}
	if got := listIDs(t, s, store.Filter{}); !slices.Equal(got, want) {
		t.Errorf("ListTasks after reopen = %v, want %v", got, want)
	}
}

func testDurableDeadLetters(t *testing.T, s store.Store, reopen func(store.Store) store.Store) {
	createRunning(t, s, "t1", "t2")
	apply(t, s, toError("t2", "running", "d2", at(20)))
	apply(t, s, toError("t1", "running", "d1", at(10)))
	apply(t, s, retried("t1", at(30), "operator:ann", "fixed"))
	s = reopen(s)
	apply(t, s, toError("t1", "running", "d0", at(5)))
	err := s.Apply(context.Background(), []store.Change{toError("t1", "error", "d1", at(40))})
	wantErr(t, "Apply with a DeadLetter ID taken before reopen", err, store.ErrConflict)
	s = reopen(s)
	checkDeadLetters(t, getDeadLetters(t, s, store.DeadLetterFilter{}), []store.DeadLetter{
		pendingEntry("d2", "t2", at(20)),
		resolvedEntry(pendingEntry("d1", "t1", at(10)), at(30), "operator:ann", "fixed"),
		pendingEntry("d0", "t1", at(5)),
	})
}

func testDurableOutbox(t *testing.T, s store.Store, reopen func(store.Store) store.Store) {
	outboxer(t, s)
	createRunning(t, s, "t1")
	apply(t, s, withOutbox(claim("t1", "a", 1, at(2)), "o1", "o2"))
	s = reopen(s)
	ob := outboxer(t, s)
	checkOutbox(t, pending(t, ob, "", 0), []store.OutboxEntry{outboxEntry("o1", "t1", at(2)), outboxEntry("o2", "t1", at(2))})
	if err := ob.AckOutbox(context.Background(), []string{"o1"}); err != nil {
		t.Fatalf("AckOutbox: %v", err)
	}
	s = reopen(s)
	checkOutbox(t, pending(t, outboxer(t, s), "", 0), []store.OutboxEntry{outboxEntry("o2", "t1", at(2))})
}
