package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/postgres"
	"github.com/gotasker/tasker/store/postgres/pgtest"
)

const patience = 5 * time.Second

// awaitWake fails t unless ch receives within patience.
func awaitWake(t *testing.T, ch <-chan struct{}, after string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(patience):
		t.Fatalf("no signal on Wake within %v of %s", patience, after)
	}
}

func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func createFree(t *testing.T, s *postgres.Store, id string) {
	t.Helper()
	if _, _, err := s.CreateTask(context.Background(), store.Task{ID: id, Namespace: "ns", Name: "n", State: "pending"}, nil); err != nil {
		t.Fatalf("CreateTask(%q): %v", id, err)
	}
}

// listenerPID returns the server process of the one connection LISTENing
// on the wake channel of schema, or 0 when there is none.
func listenerPID(t *testing.T, s *postgres.Store) int {
	t.Helper()
	var pids []int
	rows, err := pgtest.Pool(t).Query(context.Background(),
		`SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN "' || $1 || '.tasker_wake"'`, s.Schema())
	if err != nil {
		t.Fatalf("pg_stat_activity: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			t.Fatalf("scan: %v", err)
		}
		pids = append(pids, pid)
	}
	if len(pids) > 1 {
		t.Fatalf("%d connections listen on the channel of %s, want one", len(pids), s.Schema())
	}
	if len(pids) == 0 {
		return 0
	}
	return pids[0]
}

// A Store hears what another Store on its schema does.
func TestWakeAcrossStores(t *testing.T) {
	pool := pgtest.Pool(t)
	writer := open(t, pool)
	listener, err := postgres.Open(context.Background(), pgtest.Pool(t), &postgres.Options{Schema: writer.Schema()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer listener.Close()
	ch := listener.Wake()
	awaitWake(t, ch, "starting to listen")
	createFree(t, writer, "t1")
	awaitWake(t, ch, "another Store's CreateTask")
	lease := store.Lease{}
	if _, _, lease, err = writer.CreateLeased(context.Background(), store.Task{ID: "t2", State: "pending"}, nil, "a", time.Hour); err != nil {
		t.Fatalf("CreateLeased: %v", err)
	}
	drain(ch)
	if err := writer.ReleaseTasks(context.Background(), []store.Lease{lease}); err != nil {
		t.Fatalf("ReleaseTasks: %v", err)
	}
	awaitWake(t, ch, "another Store's ReleaseTasks")
}

// When the listener's connection is cut, it reconnects and listens again;
// Close ends it, and its connection with it.
func TestWakeReconnects(t *testing.T) {
	pool := pgtest.Pool(t)
	s := open(t, pool)
	ch := s.Wake()
	awaitWake(t, ch, "starting to listen")
	first := listenerPID(t, s)
	if first == 0 {
		t.Fatal("no connection listens on the store's channel")
	}
	if _, err := pool.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, first); err != nil {
		t.Fatalf("pg_terminate_backend: %v", err)
	}
	// Listening again signals: the listener may have missed notifications.
	awaitWake(t, ch, "the listener's connection was cut")
	second := listenerPID(t, s)
	if second == 0 || second == first {
		t.Fatalf("listener after the cut: pid %d, want a new connection (the cut one was %d)", second, first)
	}
	drain(ch)
	createFree(t, s, "t1")
	awaitWake(t, ch, "CreateTask after reconnecting")
	s.Close()
	// The server ends the connection's process once it reads the goodbye.
	for deadline := time.Now().Add(patience); listenerPID(t, s) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v after Close, a connection still listens", patience)
		}
	}
}
