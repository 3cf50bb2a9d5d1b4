package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
)

// Fixture times carry nanoseconds and a zone other than UTC, so that
// precision and normalisation are both checked.
var (
	zone = time.FixedZone("IST", 5*3600+1800)
	t0   = time.Date(2025, 6, 7, 8, 9, 10, 123456789, zone)
)

// at returns the fixture time n seconds after t0.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

// sampleTask returns a task with every field set.
func sampleTask(id string) store.Task {
	return store.Task{
		ID: id, Namespace: "shop", Name: "order", Version: "1.2.0",
		State: "pending", Initiator: "alice", SourceSystem: "web", Reason: "checkout",
		Tags:      []string{"vip", "eu"},
		Context:   json.RawMessage(`{"order_id": 42, "items": ["a", "b"]}`),
		CreatedAt: at(0), UpdatedAt: at(1), Deadline: at(3600),
	}
}

// sampleSteps returns pending steps named by names, at positions 0, 1, ….
func sampleSteps(names ...string) []store.Step {
	steps := make([]store.Step, len(names))
	for i, n := range names {
		steps[i] = store.Step{Name: n, Position: i, State: "pending", UpdatedAt: at(0)}
	}
	return steps
}

// create stores a sample task with id and steps named by names.
func create(t *testing.T, s store.Store, id string, names ...string) store.Task {
	t.Helper()
	task := sampleTask(id)
	got, created, err := s.CreateTask(context.Background(), task, sampleSteps(names...))
	if err != nil || !created || got != id {
		t.Fatalf("CreateTask(%q) = %q, %v, %v; want %q, true, nil", id, got, created, err, id)
	}
	return task
}

// claim moves a step from pending to in_progress, attempt n-1 to n.
func claim(taskID, step string, n int, when time.Time) store.Change {
	return store.Change{TaskID: taskID, Step: step, From: "pending", FromAttempt: n - 1,
		To: "in_progress", Attempt: n, At: when}
}

// complete moves a claimed step, at attempt n, to completed with result.
func complete(taskID, step string, n int, result string, when time.Time) store.Change {
	return store.Change{TaskID: taskID, Step: step, From: "in_progress", FromAttempt: n,
		To: "completed", Attempt: n, Result: json.RawMessage(result), At: when}
}

func apply(t *testing.T, s store.Store, changes ...store.Change) {
	t.Helper()
	if err := s.Apply(context.Background(), changes); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func wantErr(t *testing.T, op string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want one wrapping %v", op, err, target)
	}
}

func getTask(t *testing.T, s store.Store, id string) store.Task {
	t.Helper()
	task, err := s.Task(context.Background(), id)
	if err != nil {
		t.Fatalf("Task(%q): %v", id, err)
	}
	return task
}

func getSteps(t *testing.T, s store.Store, id string) []store.Step {
	t.Helper()
	steps, err := s.Steps(context.Background(), id)
	if err != nil {
		t.Fatalf("Steps(%q): %v", id, err)
	}
	return steps
}

func getTransitions(t *testing.T, s store.Store, id string) []store.Transition {
	t.Helper()
	trs, err := s.Transitions(context.Background(), id)
	if err != nil {
		t.Fatalf("Transitions(%q): %v", id, err)
	}
	return trs
}

func listIDs(t *testing.T, s store.Store, f store.Filter) []string {
	t.Helper()
	tasks, err := s.ListTasks(context.Background(), f)
	if err != nil {
		t.Fatalf("ListTasks(%+v): %v", f, err)
	}
	ids := make([]string, 0, len(tasks))
	for _, task := range tasks {
		ids = append(ids, task.ID)
	}
	return ids
}

// diff collects field mismatches between a got and a want record.
type diff []string

func (d *diff) add(field string, got, want any) {
	*d = append(*d, fmt.Sprintf("%s = %v, want %v", field, got, want))
}

func (d *diff) eq(field string, got, want any) {
	if !reflect.DeepEqual(got, want) {
		d.add(field, got, want)
	}
}

// json compares JSON byte for byte; nil and empty are equal.
func (d *diff) json(field string, got, want []byte) {
	if !bytes.Equal(got, want) {
		d.add(field, string(got), string(want))
	}
}

// time compares instants and requires got in UTC unless zero.
func (d *diff) time(field string, got, want time.Time) {
	switch {
	case !got.Equal(want):
		d.add(field, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	case !got.IsZero() && got.Location() != time.UTC:
		d.add(field+".Location()", got.Location(), time.UTC)
	}
}

func (d diff) report(t *testing.T, what string) {
	t.Helper()
	if len(d) > 0 {
		t.Errorf("%s:\n\t%s", what, strings.Join(d, "\n\t"))
	}
}

func checkTask(t *testing.T, got, want store.Task) {
	t.Helper()
	var d diff
	d.eq("ID", got.ID, want.ID)
	d.eq("Namespace", got.Namespace, want.Namespace)
	d.eq("Name", got.Name, want.Name)
	d.eq("Version", got.Version, want.Version)
	d.eq("State", got.State, want.State)
	d.eq("Initiator", got.Initiator, want.Initiator)
	d.eq("SourceSystem", got.SourceSystem, want.SourceSystem)
	d.eq("Reason", got.Reason, want.Reason)
	if !slices.Equal(got.Tags, want.Tags) {
		d.add("Tags", got.Tags, want.Tags)
	}
	d.json("Context", got.Context, want.Context)
	d.eq("IdempotencyKey", got.IdempotencyKey, want.IdempotencyKey)
	d.time("CreatedAt", got.CreatedAt, want.CreatedAt)
	d.time("UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	d.report(t, "task "+want.ID)
}

func checkStep(t *testing.T, got, want store.Step) {
	t.Helper()
	var d diff
	d.eq("TaskID", got.TaskID, want.TaskID)
	d.eq("Name", got.Name, want.Name)
	d.eq("Position", got.Position, want.Position)
	d.eq("State", got.State, want.State)
	d.eq("Attempts", got.Attempts, want.Attempts)
	d.json("Result", got.Result, want.Result)
	d.eq("Error", got.Error, want.Error)
	d.time("NextAttemptAt", got.NextAttemptAt, want.NextAttemptAt)
	d.time("UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	d.json("Checkpoint", got.Checkpoint, want.Checkpoint)
	d.report(t, "step "+want.Name)
}

func checkSteps(t *testing.T, got, want []store.Step) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d steps %v, want %d", len(got), stepNames(got), len(want))
	}
	for i := range want {
		checkStep(t, got[i], want[i])
	}
}

func stepNames(steps []store.Step) []string {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.Name
	}
	return names
}

func checkTransitions(t *testing.T, got, want []store.Transition) {
	t.Helper()
	checkAll(t, "transitions", got, want, func(d *diff, g, w store.Transition) {
		d.eq("TaskID", g.TaskID, w.TaskID)
		d.eq("Step", g.Step, w.Step)
		d.eq("From", g.From, w.From)
		d.eq("To", g.To, w.To)
		d.eq("Attempt", g.Attempt, w.Attempt)
		d.time("At", g.At, w.At)
		d.eq("By", g.By, w.By)
		d.eq("Reason", g.Reason, w.Reason)
		d.eq("Error", g.Error, w.Error)
	})
}

// checkAll fails unless got and want are as long, and reports the
// mismatches compare finds between each record of got and its want.
func checkAll[T any](t *testing.T, what string, got, want []T, compare func(d *diff, g, w T)) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d %s %+v, want %d", len(got), what, got, len(want))
	}
	for i := range want {
		var d diff
		compare(&d, got[i], want[i])
		d.report(t, fmt.Sprintf("%s[%d]", what, i))
	}
}

// withTaskID returns steps as a store returns them for task id.
func withTaskID(id string, steps []store.Step) []store.Step {
	out := slices.Clone(steps)
	for i := range out {
		out[i].TaskID = id
	}
	return out
}

// transitionOf is the audit entry c should leave.
func transitionOf(c store.Change) store.Transition {
	tr := store.Transition{TaskID: c.TaskID, Step: c.Step, From: c.From, To: c.To,
		Attempt: c.Attempt, At: c.At, By: c.By, Reason: c.Reason}
	if c.Error != nil {
		failure := *c.Error
		tr.Error = &failure
	}
	if c.Step == "" {
		tr.Attempt, tr.Error = 0, nil
	}
	return tr
}

func transitionsOf(changes ...store.Change) []store.Transition {
	out := make([]store.Transition, len(changes))
	for i, c := range changes {
		out[i] = transitionOf(c)
	}
	return out
}
