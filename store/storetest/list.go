package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/gotasker/tasker/store"
)

var listCases = []testCase{
	{"ListTasks returns every task in creation order, not CreatedAt order", testListOrder},
	{"ListTasks filters by Namespace, Name and any of States", testListFilter},
	{"ListTasks applies Limit after filtering, oldest first", testListLimit},
	{"ListTasks returns whole tasks and sees task changes", testListSeesChanges},
}

// createListed stores t1…t6 with CreatedAt running backwards:
//
//	t1 shop/order pending    t4 shop/order running
//	t2 shop/refund pending   t5 bank/order failed
//	t3 bank/order pending    t6 shop/order completed
func createListed(t *testing.T, s store.Store) {
	t.Helper()
	rows := []struct{ ns, name, state string }{
		{"shop", "order", "pending"}, {"shop", "refund", "pending"}, {"bank", "order", "pending"},
		{"shop", "order", "running"}, {"bank", "order", "failed"}, {"shop", "order", "completed"},
	}
	for i, r := range rows {
		task := sampleTask(fmt.Sprintf("t%d", i+1))
		task.Namespace, task.Name, task.State = r.ns, r.name, r.state
		task.CreatedAt = at(100 - i)
		if _, _, err := s.CreateTask(context.Background(), task, nil); err != nil {
			t.Fatalf("CreateTask: %v", err)
		}
	}
}

func testListOrder(t *testing.T, s store.Store) {
	createListed(t, s)
	want := []string{"t1", "t2", "t3", "t4", "t5", "t6"}
	if got := listIDs(t, s, store.Filter{}); !slices.Equal(got, want) {
		t.Errorf("ListTasks({}) = %v, want %v", got, want)
	}
}

func testListFilter(t *testing.T, s store.Store) {
	createListed(t, s)
	for _, tt := range []struct {
		f    store.Filter
		want []string
	}{
		{store.Filter{Namespace: "bank"}, []string{"t3", "t5"}},
		{store.Filter{Name: "order"}, []string{"t1", "t3", "t4", "t5", "t6"}},
		{store.Filter{Namespace: "shop", Name: "order"}, []string{"t1", "t4", "t6"}},
		{store.Filter{States: []string{"pending"}}, []string{"t1", "t2", "t3"}},
		{store.Filter{States: []string{"failed", "running", "nope"}}, []string{"t4", "t5"}},
		{store.Filter{Namespace: "shop", States: []string{"pending", "completed"}}, []string{"t1", "t2", "t6"}},
		{store.Filter{Namespace: "nope"}, []string{}},
		{store.Filter{States: []string{"nope"}}, []string{}},
	} {
		if got := listIDs(t, s, tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("ListTasks(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
}

func testListLimit(t *testing.T, s store.Store) {
	createListed(t, s)
	for _, tt := range []struct {
		f    store.Filter
		want []string
	}{
		{store.Filter{Limit: 2}, []string{"t1", "t2"}},
		{store.Filter{Limit: 10}, []string{"t1", "t2", "t3", "t4", "t5", "t6"}},
		{store.Filter{Namespace: "shop", Name: "order", Limit: 2}, []string{"t1", "t4"}},
		{store.Filter{States: []string{"failed", "completed"}, Limit: 1}, []string{"t5"}},
	} {
		if got := listIDs(t, s, tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("ListTasks(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
}

func testListSeesChanges(t *testing.T, s store.Store) {
	want := create(t, s, "t1", "a")
	create(t, s, "t2", "a")
	apply(t, s, store.Change{TaskID: "t1", From: "pending", To: "completed", At: at(9)})
	tasks, err := s.ListTasks(context.Background(), store.Filter{States: []string{"completed"}})
	if err != nil {
		t.Fatalf("ListTasks: %v", err)
	}
	if len(tasks) != 1 {
		t.Fatalf("ListTasks(completed) returned %d tasks, want 1", len(tasks))
	}
	want.State, want.UpdatedAt = "completed", at(9)
	checkTask(t, tasks[0], want)
}
