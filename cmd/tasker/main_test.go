package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/store/sqlite"
	"github.com/gotasker/tasker/taskerhttp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// result is one run of the command.
type result struct {
	code        int
	out, errOut string
}

// tasker runs the command in-process with env as its environment.
func runCmd(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, &out, &errOut, func(k string) string { return env[k] })
	return result{code, out.String(), errOut.String()}
}

func (r result) want(t *testing.T, code int, outRE, errRE string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.out, r.errOut)
	}
	if !regexp.MustCompile(outRE).MatchString(r.out) {
		t.Errorf("stdout lacks %q:\n%s", outRE, r.out)
	}
	if !regexp.MustCompile(errRE).MatchString(r.errOut) {
		t.Errorf("stderr lacks %q:\n%s", errRE, r.errOut)
	}
}

// startEngine runs the guide's workflow on st, stopped at the end.
func startEngine(t *testing.T, st store.Store, h orders.Handlers) *tasker.Engine {
	t.Helper()
	eng, err := orders.NewEngine(st, nil, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.StopAndCancel(context.Background()) })
	return eng
}

// server serves the API of an engine on a memory store, with keys.
func server(t *testing.T, h orders.Handlers) (*tasker.Engine, string) {
	t.Helper()
	eng := startEngine(t, memory.New(), h)
	api, err := taskerhttp.New(eng, &taskerhttp.Options{Keys: []taskerhttp.Key{
		{Name: "ops", Secret: "w", Scope: taskerhttp.ScopeWrite}, {Name: "dash", Secret: "r", Scope: taskerhttp.ScopeRead}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return eng, srv.URL
}

const guideInput = `{"customer_email": "customer@example.com", "cart_items": [{"sku": "WIDGET-A", "name": "Widget A", "quantity": 2, "unit_price": 29.99}]}`

func wait(t *testing.T, eng *tasker.Engine, id string) *tasker.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	task, err := eng.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func TestTaskCommandsAgainstAServer(t *testing.T) {
	eng, url := server(t, orders.Handlers{})
	env := map[string]string{"TASKER_API_KEY": "w"}
	// The guide's tasker-ctl command, flag for flag.
	r := runCmd(t, env, "task", "create", "--url", url, "--name", "ecommerce_order_processing",
		"--namespace", "ecommerce", "--input", guideInput)
	r.want(t, 0, `^created task [0-9a-f-]{36} \(`, `^$`)
	id := regexp.MustCompile(`[0-9a-f-]{36}`).FindString(r.out)
	wait(t, eng, id)
	runCmd(t, env, "task", "show", id, "--url", url).want(t, 0,
		`(?s)task `+id+`  ecommerce/ecommerce_order_processing@1.0.0  complete\n.*send_confirmation\s+complete\s+1/2\s+-`, `^$`)
	runCmd(t, env, "task", "list", "--url", url, "--state", "complete").want(t, 0,
		`(?s)ID\s+TEMPLATE\s+STATE.*`+id+`\s+ecommerce/ecommerce_order_processing@1.0.0\s+complete\s+cli`, `^$`)

	r = runCmd(t, env, "--json", "task", "show", id, "--url", url)
	var task tasker.Task
	if err := json.Unmarshal([]byte(r.out), &task); err != nil || task.ID != id || len(task.Steps) != 5 {
		t.Errorf("show --json = %v, %q", err, r.out)
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"cart_items": [{"sku": 5}]}`), 0o644)
	runCmd(t, env, "task", "create", "--url", url, "--name", "ecommerce_order_processing", "--namespace", "ecommerce",
		"--input", "@"+bad).want(t, 1, `^$`, `(?s)HTTP 400 invalid_input.*\n  \$\.cart_items\[0\]\.sku: Invalid type`)
	runCmd(t, env, "task", "create", "--url", url, "--name", "refund", "--namespace", "ecommerce").
		want(t, 1, `^$`, `HTTP 404 template_not_found: .*ecommerce_order_processing@1.0.0`)
	runCmd(t, env, "task", "create", "--url", url, "--namespace", "ecommerce").want(t, 1, `^$`, `"name" not set`)
	runCmd(t, env, "task", "cancel", id, "--url", url).want(t, 1, `^$`, `HTTP 409 illegal_transition`)
	runCmd(t, map[string]string{"TASKER_API_KEY": "r"}, "task", "cancel", id, "--url", url).want(t, 1, `^$`, `HTTP 403 forbidden`)
	runCmd(t, nil, "task", "list", "--url", url).want(t, 1, `^$`, `HTTP 401 unauthorized`)
	runCmd(t, nil, "task", "list", "--url", url, "--api-key", "r").want(t, 0, id, `^$`)
	runCmd(t, env, "task", "list", "--url", "localhost:1").want(t, 1, `^$`, `--url`)
}

func TestResolveRetryAndWatch(t *testing.T) {
	eng, url := server(t, orders.Handlers{})
	env := map[string]string{"TASKER_API_KEY": "w"}
	declined := `{"customer_email": "c@example.com", "payment_token": "tok_test_declined", "cart_items": [{"sku": "A", "name": "A", "quantity": 1, "unit_price": 5}]}`
	create := func() string {
		r := runCmd(t, env, "task", "create", "--url", url, "--name", "ecommerce_order_processing",
			"--namespace", "ecommerce", "--input", declined)
		r.want(t, 0, "created task", `^$`)
		id := regexp.MustCompile(`[0-9a-f-]{36}`).FindString(r.out)
		wait(t, eng, id)
		return id
	}
	id := create()
	runCmd(t, env, "task", "show", id, "--url", url).want(t, 0,
		`process_payment\s+error\s+1/3\s+permanent_error \[PAYMENT_DECLINED\]: Payment declined`, `^$`)
	runCmd(t, env, "task", "retry", id, "--url", url, "--reason", "try again").want(t, 0, `^task `+id+`: `, `^$`)
	wait(t, eng, id)
	runCmd(t, env, "task", "resolve", id, "process_payment", "--url", url, "--by", "alice", "--result",
		`{"payment_id": "p", "transaction_id": "t", "amount_charged": 5, "status": "completed"}`).
		want(t, 0, `step process_payment of task `+id+`: resolved_manually`, `^$`)
	// --watch prints until the task ends, then returns.
	runCmd(t, env, "task", "show", id, "--url", url, "--watch", "--interval", "5ms").
		want(t, 0, `(?s)send_confirmation\s+complete.*\z`, `^$`)
	if task := wait(t, eng, id); task.State != tasker.TaskComplete {
		t.Errorf("after resolve: %s", task.State)
	}
}

func TestTaskListAndShowFromASQLiteFile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tasks.db")
	st, err := sqlite.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := startEngine(t, st, orders.Handlers{})
	var ids []string
	for range 3 {
		id, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "ecommerce",
			Name: "ecommerce_order_processing", Initiator: "test", Context: json.RawMessage(guideInput)})
		if err != nil {
			t.Fatal(err)
		}
		wait(t, eng, id)
		ids = append(ids, id)
	}
	// The engine still holds the file: the command reads it beside it.
	r := runCmd(t, nil, "task", "list", "--db", db, "--limit", "2")
	r.want(t, 0, `(?s)`+ids[0]+`.*`+ids[1]+`.*more: --cursor `+ids[1], `^$`)
	if strings.Contains(r.out, ids[2]) {
		t.Errorf("first page of 2 shows the third task:\n%s", r.out)
	}
	runCmd(t, nil, "task", "list", "--db", db, "--cursor", ids[1]).want(t, 0, ids[2], `^$`)
	runCmd(t, nil, "task", "show", ids[2], "--db", db).want(t, 0, `create_order\s+complete\s+1/0`, `^$`)
	runCmd(t, nil, "task", "show", "0190f5e2-6a1b-7c3d-8e4f-5a6b7c8d9e0f", "--db", db).want(t, 1, `^$`, `task not found`)
	runCmd(t, nil, "task", "list", "--db", filepath.Join(t.TempDir(), "none.db")).want(t, 1, `^$`, `none.db`)
}
