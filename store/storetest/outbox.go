package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
)

var outboxCases = []testCase{
	{"a change's Outbox entries are pending once applied: TaskID and CreatedAt set by the store, Data byte for byte", testOutboxAdds},
	{"an empty outbox entry ID is filled with a unique one; a zero At stamps CreatedAt", testOutboxFillsID},
	{"a batch that conflicts adds no outbox entry", testOutboxConflict},
	{"an outbox ID already pending, or twice in a batch, wraps ErrConflict and applies nothing", testOutboxTakenID},
	{"AckOutbox removes the entries named, ignores unknown IDs, and is idempotent", testOutboxAck},
	{"PendingOutbox pages with after and limit, in insertion order; an unknown after matches nothing", testOutboxPaging},
	{"outbox entries are copied in and out: callers cannot change stored data", testOutboxNoAliasing},
}

// outboxer returns s as an Outboxer, or skips the test for a backend
// without an outbox.
func outboxer(t *testing.T, s store.Store) store.Outboxer {
	t.Helper()
	ob, ok := s.(store.Outboxer)
	if !ok {
		t.Skip("the store is not a store.Outboxer")
	}
	return ob
}

// withOutbox returns ch carrying entries with ids, each with Data naming
// its ID.
func withOutbox(ch store.Change, ids ...string) store.Change {
	for _, id := range ids {
		ch.Outbox = append(ch.Outbox, store.OutboxEntry{ID: id, Data: json.RawMessage(`{"event": "` + id + `" }`)})
	}
	return ch
}

// outboxEntry is the entry withOutbox(change of taskID at when, id) stores.
func outboxEntry(id, taskID string, when time.Time) store.OutboxEntry {
	return store.OutboxEntry{ID: id, TaskID: taskID, Data: json.RawMessage(`{"event": "` + id + `" }`),
		CreatedAt: when.UTC()}
}

func pending(t *testing.T, ob store.Outboxer, after string, limit int) []store.OutboxEntry {
	t.Helper()
	got, err := ob.PendingOutbox(context.Background(), after, limit)
	if err != nil {
		t.Fatalf("PendingOutbox(%q, %d): %v", after, limit, err)
	}
	return got
}

func checkOutbox(t *testing.T, got, want []store.OutboxEntry) {
	t.Helper()
	eq := func(a, b store.OutboxEntry) bool {
		return a.ID == b.ID && a.TaskID == b.TaskID && string(a.Data) == string(b.Data) &&
			a.CreatedAt.Equal(b.CreatedAt) && a.CreatedAt.Location() == time.UTC
	}
	if !slices.EqualFunc(got, want, eq) {
		t.Fatalf("pending outbox:\n got %+v\nwant %+v", got, want)
	}
}

func ids(es []store.OutboxEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func testOutboxAdds(t *testing.T, s store.Store) {
	ob := outboxer(t, s)
	createRunning(t, s, "t1", "t2")
	apply(t, s, withOutbox(claim("t1", "a", 1, at(2)), "o1"))
	apply(t, s, withOutbox(complete("t1", "a", 1, `{}`, at(3)), "o2", "o3"),
		withOutbox(store.Change{TaskID: "t2", From: "running", To: "done", At: at(4)}, "o4"))
	checkOutbox(t, pending(t, ob, "", 0), []store.OutboxEntry{
		outboxEntry("o1", "t1", at(2)), outboxEntry("o2", "t1", at(3)), outboxEntry("o3", "t1", at(3)),
		outboxEntry("o4", "t2", at(4)),
	})
	// The given TaskID and CreatedAt are not kept.
	ch := withOutbox(claim("t2", "a", 1, at(5)), "o5")
	ch.Outbox[0].TaskID, ch.Outbox[0].CreatedAt = "other", at(99)
	apply(t, s, ch)
	if got := pending(t, ob, "o4", 0); len(got) != 1 || got[0].TaskID != "t2" || !got[0].CreatedAt.Equal(at(5)) {
		t.Fatalf("entry o5 = %+v, want task t2 created at %v", got, at(5))
	}
}

func testOutboxFillsID(t *testing.T, s store.Store) {
	ob := outboxer(t, s)
	createRunning(t, s, "t1")
	before := time.Now()
	ch := claim("t1", "a", 1, time.Time{})
	ch.Outbox = []store.OutboxEntry{{Data: json.RawMessage(`1`)}, {Data: json.RawMessage(`2`)}}
	apply(t, s, ch)
	got := pending(t, ob, "", 0)
	if len(got) != 2 || got[0].ID == "" || got[1].ID == "" || got[0].ID == got[1].ID {
		t.Fatalf("entries = %+v, want two with distinct filled IDs", got)
	}
	if got[0].CreatedAt.Before(before.Add(-time.Second)) || string(got[1].Data) != "2" {
		t.Fatalf("entries = %+v, want CreatedAt stamped with the Apply's time", got)
	}
}

func testOutboxConflict(t *testing.T, s store.Store) {
	ob := outboxer(t, s)
	createRunning(t, s, "t1")
	err := s.Apply(context.Background(), []store.Change{withOutbox(claim("t1", "a", 1, at(2)), "o1"), claim("t1", "a", 7, at(2))})
	wantErr(t, "Apply of a conflicting batch", err, store.ErrConflict)
	checkOutbox(t, pending(t, ob, "", 0), nil)
}

func testOutboxTakenID(t *testing.T, s store.Store) {
	ob := outboxer(t, s)
	createRunning(t, s, "t1", "t2")
	apply(t, s, withOutbox(claim("t1", "a", 1, at(2)), "o1"))
	for name, batch := range map[string][]store.Change{
		"an ID pending for another task": {withOutbox(claim("t2", "a", 1, at(3)), "o1")},
		"one new ID twice in a batch":    {withOutbox(claim("t2", "a", 1, at(3)), "o2", "o2")},
		"one new ID in two changes":      {withOutbox(claim("t2", "a", 1, at(3)), "o3"), withOutbox(complete("t2", "a", 1, `1`, at(4)), "o3")},
	} {
		wantErr(t, "Apply with "+name, s.Apply(context.Background(), batch), store.ErrConflict)
	}
	checkOutbox(t, pending(t, ob, "", 0), []store.OutboxEntry{outboxEntry("o1", "t1", at(2))})
	checkSteps(t, getSteps(t, s, "t2"), withTaskID("t2", sampleSteps("a")))
	apply(t, s, withOutbox(claim("t2", "a", 1, at(3)), "o2")) // refused IDs are free
}

func testOutboxAck(t *testing.T, s store.Store) {
	ob := outboxer(t, s)
	createRunning(t, s, "t1")
	apply(t, s, withOutbox(claim("t1", "a", 1, at(2)), "o1", "o2", "o3"))
	for range 2 {
		if err := ob.AckOutbox(context.Background(), []string{"o2", "nope"}); err != nil {
			t.Fatalf("AckOutbox: %v", err)
		}
		checkOutbox(t, pending(t, ob, "", 0), []store.OutboxEntry{outboxEntry("o1", "t1", at(2)), outboxEntry("o3", "t1", at(2))})
	}
	if err := ob.AckOutbox(context.Background(), nil); err != nil {
		t.Fatalf("AckOutbox(nil): %v", err)
	}
	if err := ob.AckOutbox(context.Background(), []string{"o1", "o3"}); err != nil {
		t.Fatalf("AckOutbox: %v", err)
	}
	checkOutbox(t, pending(t, ob, "", 0), nil)
}

func testOutboxPaging(t *testing.T, s store.Store) {
	ob := outboxer(t, s)
	createRunning(t, s, "t1", "t2")
	apply(t, s, withOutbox(claim("t2", "a", 1, at(2)), "z1", "a2"))
	apply(t, s, withOutbox(claim("t1", "a", 1, at(3)), "m3", "b4", "y5"))
	for _, tc := range []struct {
		after string
		limit int
		want  []string
	}{
		{"", 0, []string{"z1", "a2", "m3", "b4", "y5"}},
		{"", 2, []string{"z1", "a2"}},
		{"a2", 2, []string{"m3", "b4"}},
		{"b4", 0, []string{"y5"}},
		{"y5", 0, []string{}},
		{"unknown", 0, []string{}},
	} {
		if got := ids(pending(t, ob, tc.after, tc.limit)); !slices.Equal(got, tc.want) {
			t.Errorf("PendingOutbox(%q, %d) = %v, want %v", tc.after, tc.limit, got, tc.want)
		}
	}
	if err := ob.AckOutbox(context.Background(), []string{"m3"}); err != nil {
		t.Fatalf("AckOutbox: %v", err)
	}
	if got := ids(pending(t, ob, "a2", 0)); !slices.Equal(got, []string{"b4", "y5"}) {
		t.Errorf("PendingOutbox after an ack = %v, want [b4 y5]", got)
	}
}

func testOutboxNoAliasing(t *testing.T, s store.Store) {
	ob := outboxer(t, s)
	createRunning(t, s, "t1")
	ch := withOutbox(claim("t1", "a", 1, at(2)), "o1")
	apply(t, s, ch)
	ch.Outbox[0].Data[2] = 'X'
	got := pending(t, ob, "", 0)
	got[0].Data[3] = 'Y'
	checkOutbox(t, pending(t, ob, "", 0), []store.OutboxEntry{outboxEntry("o1", "t1", at(2))})
}
