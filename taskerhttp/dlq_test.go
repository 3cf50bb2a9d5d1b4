package taskerhttp_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/taskerhttp"
)

// chargeYAML is a one-step template whose step has one attempt: a plain
// (retryable) error ends the task in error as retries_exhausted, which
// dead-letters it.
const chargeYAML = `
name: charge
namespace_name: billing
version: "1.0.0"
steps:
  - {name: charge_card, handler: {callable: billing.charge}, retry: {max_attempts: 1}}
`

// dlqAPI is an api whose engine, on st, also runs billing/charge; its step
// fails with a plain error while broken is true.
type dlqAPI struct {
	*api
	broken atomic.Bool
}

func newDLQAPI(t *testing.T, st store.Store, opts *taskerhttp.Options) *dlqAPI {
	t.Helper()
	d := &dlqAPI{}
	d.broken.Store(true)
	eng := newEngineOn(t, st, orders.Handlers{})
	tmpl, err := tasker.ParseTemplate("charge.yaml", []byte(chargeYAML))
	if err != nil {
		t.Fatal(err)
	}
	charge := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) {
		if d.broken.Load() {
			return nil, errors.New("payment gateway unavailable")
		}
		return map[string]string{"charge": "ch_1"}, nil
	})
	if err := eng.Register("billing.charge", charge); err != nil {
		t.Fatal(err)
	}
	if err := eng.AddTemplates(tmpl); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, err := taskerhttp.New(eng, opts)
	if err != nil {
		t.Fatal(err)
	}
	d.api = &api{t: t, eng: eng, h: h}
	return d
}

// deadLettered submits a billing/charge task, waits for it to end, and
// returns its ID; it fails the test unless the task ended in error.
func (d *dlqAPI) deadLettered(hdr ...string) string {
	d.t.Helper()
	var task tasker.Task
	want(d.t, d.do("POST", "/api/v1/tasks", `{"name": "charge", "namespace": "billing"}`, hdr...),
		http.StatusCreated, "", &task)
	if got := d.wait(task.ID); got.State != tasker.TaskFailed {
		d.t.Fatalf("charge task %s, want error", got.State)
	}
	return task.ID
}

// page GETs a page of the dead-letter list.
func (d *dlqAPI) page(query string, hdr ...string) taskerhttp.DeadLetterPage {
	d.t.Helper()
	var p taskerhttp.DeadLetterPage
	want(d.t, d.do("GET", "/api/v1/dlq"+query, "", hdr...), http.StatusOK, "", &p)
	return p
}

// taskEntries GETs the entries of one task.
func (d *dlqAPI) taskEntries(id string) []tasker.DeadLetter {
	d.t.Helper()
	var l taskerhttp.DeadLetterList
	want(d.t, d.do("GET", "/v1/dlq/task/"+id, ""), http.StatusOK, "", &l)
	if l.TaskID != id {
		d.t.Errorf("task_id = %q, want %q", l.TaskID, id)
	}
	return l.Entries
}

func entryIDs(ds []tasker.DeadLetter) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func TestDeadLetterRetryResolvesTheEntry(t *testing.T) {
	d := newDLQAPI(t, memory.New(), nil)
	id := d.deadLettered()
	entries := d.taskEntries(id)
	if len(entries) != 1 {
		t.Fatalf("entries = %+v, want one", entries)
	}
	e := entries[0]
	if e.TaskID != id || e.Reason != tasker.DeadLetterRetriesExhausted || e.Status != "pending" ||
		e.Message == "" || e.CreatedAt.IsZero() || !e.ResolvedAt.IsZero() || e.ResolvedBy != "" {
		t.Fatalf("entry = %+v, want a pending retries_exhausted entry of task %s", e, id)
	}
	if got := d.page("?status=pending"); !slices.Equal(entryIDs(got.Entries), []string{e.ID}) || got.NextCursor != "" {
		t.Errorf("pending list = %+v, want just %s", got, e.ID)
	}
	declined := d.submit(orders.TokenDeclined, "") // a permanent failure: in error, not dead-lettered
	d.wait(declined)
	if got := d.taskEntries(declined); got == nil || len(got) != 0 {
		t.Errorf("entries of a task in error that was not dead-lettered = %#v, want []", got)
	}
	want(t, d.do("GET", "/api/v1/dlq/task/0190f5e2-6a1b-7c3d-8e4f-5a6b7c8d9e0f", ""), http.StatusNotFound, "task_not_found", nil)
	want(t, d.do("GET", "/api/v1/dlq/task/nope", ""), http.StatusBadRequest, "invalid_id", nil)

	d.broken.Store(false)
	var got tasker.DeadLetter
	want(t, d.do("PATCH", "/v1/dlq/entry/"+e.ID, `{"action": "retry", "by": "ops:alice", "reason": "gateway fixed"}`),
		http.StatusOK, "", &got)
	if got.ID != e.ID || got.Status != "resolved" || got.ResolvedBy != "ops:alice" ||
		got.Resolution != "gateway fixed" || got.ResolvedAt.Before(e.CreatedAt) {
		t.Errorf("entry after retry = %+v, want resolved by ops:alice, gateway fixed", got)
	}
	if task := d.wait(id); task.State != tasker.TaskComplete {
		t.Errorf("task after retry: %s, want complete", task.State)
	}
	want(t, d.do("PATCH", "/api/v1/dlq/entry/"+e.ID, `{"action": "retry"}`), http.StatusConflict, "already_resolved", nil)
	if got := d.page("?status=resolved"); !slices.Equal(entryIDs(got.Entries), []string{e.ID}) {
		t.Errorf("resolved list = %+v, want just %s", got, e.ID)
	}
	if got := d.page("?status=pending"); len(got.Entries) != 0 {
		t.Errorf("pending list after retry = %+v, want none", got)
	}
}

func TestDeadLetterListFiltersAndPages(t *testing.T) {
	d := newDLQAPI(t, memory.New(), nil)
	id1, id2, id3 := d.deadLettered(), d.deadLettered(), d.deadLettered()
	e2 := d.taskEntries(id2)[0].ID
	// Still broken: the retry resolves e2 and the task is dead-lettered again.
	want(t, d.do("PATCH", "/api/v1/dlq/entry/"+e2, `{"action": "retry"}`), http.StatusOK, "", nil)
	d.wait(id2)
	all := entryIDs(d.page("").Entries)
	if len(all) != 4 {
		t.Fatalf("entries = %v, want 4", all)
	}
	e1, e3, e2again := d.taskEntries(id1)[0].ID, d.taskEntries(id3)[0].ID, all[3]
	for _, c := range []struct {
		query string
		ids   []string
		next  string
	}{
		{"", []string{e1, e2, e3, e2again}, ""},
		{"?status=pending", []string{e1, e3, e2again}, ""},
		{"?status=resolved", []string{e2}, ""},
		{"?task_id=" + id2, []string{e2, e2again}, ""},
		{"?task_id=" + id2 + "&status=pending", []string{e2again}, ""},
		{"?status=pending&limit=2", []string{e1, e3}, e3},
		{"?status=pending&limit=2&cursor=" + e3, []string{e2again}, ""},
		{"?limit=1&cursor=" + e1, []string{e2}, e2},
		{"?status=pending&cursor=" + e1, []string{e3, e2again}, ""},
		{"?status=pending&cursor=" + e2, []string{e3, e2again}, ""}, // a cursor entry no longer pending keeps its place
		{"?cursor=" + e2again, []string{}, ""},
	} {
		got := d.page(c.query)
		if !slices.Equal(entryIDs(got.Entries), c.ids) || got.NextCursor != c.next {
			t.Errorf("GET /dlq%s = %v next %q, want %v next %q", c.query, entryIDs(got.Entries), got.NextCursor, c.ids, c.next)
		}
	}
	if got := d.taskEntries(id2); !slices.Equal(entryIDs(got), []string{e2, e2again}) || got[0].Status != "resolved" {
		t.Errorf("entries of the retried task = %+v", got)
	}
	for _, q := range []string{"status=open", "limit=0", "limit=101", "limit=x", "task_id=nope", "colour=red",
		"cursor=" + id1, "task_id=" + id1 + "&cursor=" + e3} {
		want(t, d.do("GET", "/api/v1/dlq?"+q, ""), http.StatusBadRequest, "invalid_query", nil)
	}
}

func TestDeadLetterPatchRefusalsAndScopes(t *testing.T) {
	st := memory.New()
	d := newDLQAPI(t, st, &taskerhttp.Options{Keys: []taskerhttp.Key{
		{Name: "dash", Secret: "read-secret", Scope: taskerhttp.ScopeRead},
		{Name: "ops", Secret: "write-secret", Scope: taskerhttp.ScopeWrite},
	}})
	read, write := []string{"X-API-Key", "read-secret"}, []string{"X-API-Key", "write-secret"}
	id := d.deadLettered(write...)
	e := d.page("?task_id="+id, read...).Entries[0]
	path := "/api/v1/dlq/entry/" + e.ID
	want(t, d.do("GET", "/api/v1/dlq", ""), http.StatusUnauthorized, "unauthorized", nil)
	want(t, d.do("PATCH", path, `{"action": "retry"}`, read...), http.StatusForbidden, "forbidden", nil)
	for _, c := range []struct {
		path, body, code, mentions string
		status                     int
	}{
		{path, ``, "invalid_json", "", 400},
		{path, `{}`, "invalid_request", `$.action`, 400},
		{path, `{"action": "resolve_manually"}`, "invalid_request", "workflow_steps", 400},
		{path, `{"action": 1}`, "invalid_request", `$.action`, 400},
		{path, `{"action": "retry", "colour": "red"}`, "invalid_request", `$.colour`, 400},
		{"/api/v1/dlq/entry/0190f5e2-6a1b-7c3d-8e4f-5a6b7c8d9e0f", `{"action": "retry"}`, "dead_letter_not_found", "", 404},
		{"/api/v1/dlq/entry/nope", `{"action": "retry"}`, "dead_letter_not_found", "", 404},
	} {
		rec := d.do("PATCH", c.path, c.body, write...)
		want(t, rec, c.status, c.code, nil)
		if !strings.Contains(rec.Body.String(), c.mentions) {
			t.Errorf("PATCH %s %s: body lacks %s: %s", c.path, c.body, c.mentions, rec.Body)
		}
	}
	if got := d.page("?task_id="+id, read...).Entries[0]; got.Status != "pending" {
		t.Fatalf("entry after refused actions: %+v, want pending", got)
	}

	// Another writer ends the task without resolving its entry: the retry
	// is refused and the entry stays pending.
	if err := st.Apply(context.Background(), []store.Change{{TaskID: id, From: "error", To: "cancelled"}}); err != nil {
		t.Fatal(err)
	}
	want(t, d.do("PATCH", path, `{"action": "retry"}`, write...), http.StatusConflict, "illegal_transition", nil)
	if got := d.page("?task_id="+id, read...).Entries[0]; got.Status != "pending" {
		t.Errorf("entry after a refused retry: %+v, want pending", got)
	}

	id = d.deadLettered(write...)
	e = d.page("?status=pending&task_id="+id, read...).Entries[0]
	var got tasker.DeadLetter
	want(t, d.do("PATCH", "/v1/dlq/entry/"+e.ID, `{"action": "retry", "reason": "try again"}`, write...),
		http.StatusOK, "", &got)
	if got.Status != "resolved" || got.ResolvedBy != "key:ops" || got.Resolution != "try again" {
		t.Errorf("entry retried by a key that names no one = %+v, want resolved by key:ops", got)
	}
	d.wait(id)
}
