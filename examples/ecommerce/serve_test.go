package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/store/sqlite"
)

// TestMain runs main itself when the serve test starts this binary as the
// example's process.
func TestMain(m *testing.M) {
	if os.Getenv("ECOMMERCE_RUN_MAIN") == "1" {
		os.Args = append([]string{"ecommerce"}, strings.Fields(os.Getenv("ECOMMERCE_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// server is the example started as a process with -serve.
type server struct {
	cmd *exec.Cmd
	url string // http://127.0.0.1:PORT/api/v1
}

func startServer(t *testing.T, db, latency string) *server {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ECOMMERCE_RUN_MAIN=1",
		"ECOMMERCE_ARGS=-serve 127.0.0.1:0 -db "+db+" -payment-latency "+latency+" -inventory-latency 0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	m := regexp.MustCompile(`serving (http://\S+/api/v1)`).FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("first line %q, %v: want the address served", line, err)
	}
	go func() { _, _ = bufio.NewReader(out).WriteTo(discard{}) }() // keep the pipe drained
	return &server{cmd: cmd, url: m[1]}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// post posts the guide's body and returns the created task's ID.
func (s *server) post(t *testing.T) string {
	t.Helper()
	resp, err := http.Post(s.url+"/tasks", "application/json", strings.NewReader(orders.CurlBody))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var task tasker.Task
	if err := json.NewDecoder(resp.Body).Decode(&task); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /tasks = %d, %v", resp.StatusCode, err)
	}
	return task.ID
}

// awaitComplete reads the task until it is complete, for at most 30 s.
func (s *server) awaitComplete(t *testing.T, id string) *tasker.Task {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for tick := time.NewTicker(20 * time.Millisecond); time.Now().Before(deadline); <-tick.C {
		resp, err := http.Get(s.url + "/tasks/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var task tasker.Task
		err = json.NewDecoder(resp.Body).Decode(&task)
		resp.Body.Close()
		if err == nil && task.State == tasker.TaskComplete {
			return &task
		}
	}
	t.Fatalf("task %s not complete after 30 s", id)
	return nil
}

// checkPage checks that the live DAG page is served at /ui/, on the API's
// prefix, with its script.
func (s *server) checkPage(t *testing.T) {
	t.Helper()
	base := strings.TrimSuffix(s.url, "/api/v1")
	for path, want := range map[string]string{"/ui/": `data-api="/api/v1"`, "/ui/app.js": "function buildGraph"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET %s = %d (%v): want 200 with %q", path, resp.StatusCode, err, want)
		}
	}
}

// checkMetrics checks that /metrics serves the Prometheus scrape, with the
// steps of the task that completed counted.
func (s *server) checkMetrics(t *testing.T) {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(s.url, "/api/v1") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d (%v), want 200", resp.StatusCode, err)
	}
	for _, want := range []string{
		`tasker_steps_completed_total{otel_scope_name="github.com/gotasker/tasker/taskerotel"`,
		`tasker_step="process_payment"`, "tasker_sqlite_commit_batch_size_bucket", "tasker_queue_depth",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("GET /metrics lacks %s:\n%s", want, b)
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM the server exited with %v, want 0", err)
	}
}

func TestServeRunsTheGuideCurlAndShutsDownWithNothingLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	db := filepath.Join(t.TempDir(), "orders.db")
	s := startServer(t, db, "300ms")
	first := s.post(t)
	if task := s.awaitComplete(t, first); len(task.Steps) != 5 {
		t.Fatalf("task has %d steps, want 5", len(task.Steps))
	}
	s.checkPage(t)
	s.checkMetrics(t)
	second := s.post(t) // still running when the signal comes
	s.stop(t)

	st, err := sqlite.OpenReadOnly(db)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string][]string{first: {"complete"}, second: {"pending", "in_progress", "complete"}} {
		task, err := st.Task(context.Background(), id)
		if err != nil || !strings.Contains(strings.Join(want, " "), task.State) {
			t.Errorf("after SIGTERM task %s is %q (%v), want one of %v", id, task.State, err, want)
		}
	}
	st.Close()

	s = startServer(t, db, "0") // the next start resumes what the signal left
	s.awaitComplete(t, second)
	s.stop(t)
}
