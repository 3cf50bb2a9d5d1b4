package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/gotasker/tasker/store"
)

var queryCases = []testCase{
	{"ListTasks filters by Initiator, SourceSystem and every one of Tags", testListByOrigin},
	{"ListTasks After pages through tasks in creation order; an unknown After matches nothing", testListAfter},
	{"Transitions keep each step change's Error, a task change's none, and copies", testTransitionErrors},
}

// createOrigins stores o1…o4:
//
//	o1 alice/web  [vip eu]   o3 bob/web    [eu]
//	o2 alice/cron []         o4 bob/mobile [vip eu us]
func createOrigins(t *testing.T, s store.Store) {
	t.Helper()
	rows := []struct {
		initiator, source string
		tags              []string
	}{
		{"alice", "web", []string{"vip", "eu"}}, {"alice", "cron", nil},
		{"bob", "web", []string{"eu"}}, {"bob", "mobile", []string{"vip", "eu", "us"}},
	}
	for i, r := range rows {
		task := sampleTask(fmt.Sprintf("o%d", i+1))
		task.Initiator, task.SourceSystem, task.Tags = r.initiator, r.source, r.tags
		if _, _, err := s.CreateTask(context.Background(), task, nil); err != nil {
			t.Fatalf("CreateTask: %v", err)
		}
	}
}

func testListByOrigin(t *testing.T, s store.Store) {
	createOrigins(t, s)
	for _, tt := range []struct {
		f    store.Filter
		want []string
	}{
		{store.Filter{Initiator: "alice"}, []string{"o1", "o2"}},
		{store.Filter{SourceSystem: "web"}, []string{"o1", "o3"}},
		{store.Filter{Initiator: "bob", SourceSystem: "web"}, []string{"o3"}},
		{store.Filter{Tags: []string{"eu"}}, []string{"o1", "o3", "o4"}},
		{store.Filter{Tags: []string{"vip", "eu"}}, []string{"o1", "o4"}},
		{store.Filter{Tags: []string{"us", "vip"}, Initiator: "bob"}, []string{"o4"}},
		{store.Filter{Tags: []string{"v"}}, []string{}}, // whole tags, not substrings
		{store.Filter{Initiator: "carol"}, []string{}},
	} {
		if got := listIDs(t, s, tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("ListTasks(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
}

func testListAfter(t *testing.T, s store.Store) {
	createListed(t, s) // t1…t6, CreatedAt running backwards
	for _, tt := range []struct {
		f    store.Filter
		want []string
	}{
		{store.Filter{After: "t2", Limit: 2}, []string{"t3", "t4"}},
		{store.Filter{After: "t4"}, []string{"t5", "t6"}},
		{store.Filter{After: "t6"}, []string{}},
		{store.Filter{After: "t1", Namespace: "shop", Name: "order"}, []string{"t4", "t6"}},
		{store.Filter{After: "nope"}, []string{}},
	} {
		if got := listIDs(t, s, tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("ListTasks(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
	// Paging by the last ID of each page visits every task once, in order.
	var all []string
	for after := ""; ; {
		page := listIDs(t, s, store.Filter{After: after, Limit: 4})
		all = append(all, page...)
		if len(page) < 4 {
			break
		}
		after = page[len(page)-1]
	}
	if want := []string{"t1", "t2", "t3", "t4", "t5", "t6"}; !slices.Equal(all, want) {
		t.Errorf("pages of 4 = %v, want %v", all, want)
	}
}

func testTransitionErrors(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	fail := &store.Failure{Message: "gateway down", Type: "retryable_error", Code: "GATEWAY",
		Retryable: true, Attempt: 1, Stack: "goroutine 1"}
	changes := []store.Change{
		{TaskID: "t1", From: "pending", To: "running", At: at(1), Error: fail}, // a task change records none
		claim("t1", "a", 1, at(2)),
		{TaskID: "t1", Step: "a", From: "in_progress", FromAttempt: 1, To: "waiting", Attempt: 1,
			Error: fail, NextAttemptAt: at(9), At: at(3)},
		{TaskID: "t1", Step: "a", From: "waiting", FromAttempt: 1, To: "in_progress", Attempt: 2,
			Error: fail, At: at(4), By: "op", Reason: "again"},
	}
	for _, c := range changes {
		apply(t, s, c)
	}
	got := getTransitions(t, s, "t1")
	checkTransitions(t, got, transitionsOf(changes...))
	if got[0].Error != nil {
		t.Errorf("task transition Error = %+v, want nil", got[0].Error)
	}
	// What a caller gets back is its own: changing it changes nothing stored.
	got[2].Error.Message = "changed"
	snapshot := getTransitions(t, s, "t1")
	if snapshot[2].Error == nil || snapshot[2].Error.Message != "gateway down" {
		t.Errorf("after changing a returned Error, stored Error = %+v, want the original", snapshot[2].Error)
	}
}
