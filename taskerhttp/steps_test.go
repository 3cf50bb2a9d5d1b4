package taskerhttp_test

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/taskerhttp"
)

func TestStepsAuditResolveAndReset(t *testing.T) {
	a := newAPI(t, nil, orders.Handlers{}, true)
	id := a.submit(orders.TokenDeclined, "")
	a.wait(id)
	base := "/api/v1/tasks/" + id + "/workflow_steps"
	var list taskerhttp.StepList
	want(t, a.do("GET", base, ""), http.StatusOK, "", &list)
	if list.TaskID != id || len(list.Steps) != 5 || list.Steps[1].Name != "process_payment" {
		t.Fatalf("steps = %+v", list)
	}
	var audit taskerhttp.StepAudit
	want(t, a.do("GET", base+"/process_payment/audit", ""), http.StatusOK, "", &audit)
	if len(audit.Attempts) != 1 || audit.Attempts[0].Outcome != tasker.StepFailed ||
		audit.Attempts[0].Error == nil || audit.Attempts[0].Error.Code != "PAYMENT_DECLINED" {
		t.Fatalf("audit = %+v, want one failed attempt with PAYMENT_DECLINED", audit)
	}
	for _, c := range []struct {
		step, body string
		status     int
		code       string
	}{
		{"process_payment", `{"action_type": "delete"}`, 400, "invalid_request"},
		{"process_payment", `{"action_type": "reset_for_retry", "result": {}}`, 400, "invalid_request"},
		{"process_payment", `{}`, 400, "invalid_request"},
		{"create_order", `{"action_type": "reset_for_retry"}`, 409, "illegal_transition"}, // pending, not in error
		{"create_order", `{"action_type": "resolve_manually"}`, 409, "illegal_transition"},
		{"nope", `{"action_type": "resolve_manually"}`, 404, "step_not_found"},
	} {
		want(t, a.do("PATCH", base+"/"+c.step, c.body), c.status, c.code, nil)
	}
	var s tasker.Step
	want(t, a.do("PATCH", base+"/process_payment", `{"action_type": "resolve_manually",
		"result": {"payment_id": "pay_manual", "transaction_id": "txn_manual", "amount_charged": 118.77, "status": "completed"},
		"by": "alice", "reason": "paid by phone"}`), http.StatusOK, "", &s)
	if s.State != tasker.StepResolvedManually {
		t.Fatalf("after resolve: %s", s.State)
	}
	if task := a.wait(id); task.State != tasker.TaskComplete {
		t.Fatalf("after resolve the task is %s, want complete", task.State)
	}
	want(t, a.do("GET", base+"/process_payment", ""), http.StatusOK, "", &s)
	last := s.Transitions[len(s.Transitions)-1]
	if last.To != "resolved_manually" || last.By != "alice" || last.Reason != "paid by phone" || last.Seq == 0 {
		t.Errorf("resolution transition = %+v", last)
	}

	id = a.submit(orders.TokenDeclined, "")
	a.wait(id)
	want(t, a.do("PATCH", "/v1/tasks/"+id+"/workflow_steps/process_payment",
		`{"action_type": "reset_for_retry", "by": "bob"}`), http.StatusOK, "", &s)
	task := a.wait(id) // declined again
	p := task.Step("process_payment")
	if task.State != tasker.TaskFailed || p.Attempts != 1 || len(p.History()) != 2 {
		t.Errorf("after reset: task %s, payment %d attempts, history %+v", task.State, p.Attempts, p.History())
	}
}

func TestCancelARunningTask(t *testing.T) {
	a := newAPI(t, nil, orders.Handlers{PaymentLatency: time.Minute}, true)
	id := a.submit(orders.TokenSuccess, "")
	var task tasker.Task
	want(t, a.do("DELETE", "/api/v1/tasks/"+id, `{"by": "carol", "reason": "customer changed their mind"}`),
		http.StatusAccepted, "", &task)
	got := a.wait(id)
	if got.State != tasker.TaskCancelled {
		t.Fatalf("task %s, want cancelled", got.State)
	}
	last := got.Transitions[len(got.Transitions)-1]
	if last.To != "cancelled" || last.By != "carol" || last.Reason != "customer changed their mind" {
		t.Errorf("cancel transition = %+v", last)
	}
}

func TestAuthentication(t *testing.T) {
	a := newAPI(t, &taskerhttp.Options{Keys: []taskerhttp.Key{
		{Name: "dash", Secret: "read-secret", Scope: taskerhttp.ScopeRead},
		{Name: "ops", Secret: "write-secret", Scope: taskerhttp.ScopeWrite},
	}}, orders.Handlers{}, true)
	rec := a.do("GET", "/api/v1/tasks", "")
	want(t, rec, http.StatusUnauthorized, "unauthorized", nil)
	if rec.Header().Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	want(t, a.do("GET", "/api/v1/tasks", "", "X-API-Key", "read-secrets"), http.StatusUnauthorized, "unauthorized", nil)
	want(t, a.do("GET", "/api/v1/tasks", "", "Authorization", "Basic cmVhZA=="), http.StatusUnauthorized, "unauthorized", nil)
	want(t, a.do("GET", "/api/v1/tasks", "", "X-API-Key", "read-secret"), http.StatusOK, "", nil)
	want(t, a.do("GET", "/api/v1/handlers", "", "Authorization", "Bearer read-secret"), http.StatusOK, "", nil)
	want(t, a.do("POST", "/api/v1/tasks", guideBody, "X-API-Key", "read-secret"), http.StatusForbidden, "forbidden", nil)
	var task tasker.Task
	want(t, a.do("POST", "/api/v1/tasks", strings.Replace(guideBody, "tok_test_success", "tok_test_declined", 1),
		"Authorization", "Bearer write-secret"), http.StatusCreated, "", &task)
	a.wait(task.ID)
	want(t, a.do("POST", "/api/v1/tasks/"+task.ID+"/retry", "", "X-API-Key", "write-secret"), http.StatusOK, "", &task)
	i := slices.IndexFunc(task.Transitions, func(tr tasker.Transition) bool { return tr.From == "error" })
	if i < 0 || task.Transitions[i].By != "key:ops" {
		t.Errorf("retry by a key that names no one: transitions %+v, want one from error by key:ops", task.Transitions)
	}
	a.wait(task.ID)
	for _, path := range []string{"/api/v1/health", "/api/v1/health/live", "/v1/health/ready", "/api/v1/openapi.json"} {
		want(t, a.do("GET", path, ""), http.StatusOK, "", nil)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	eng := newEngine(t, orders.Handlers{})
	for _, o := range []*taskerhttp.Options{
		{MaxBodyBytes: -1},
		{Keys: []taskerhttp.Key{{Name: "k", Scope: taskerhttp.ScopeRead}}},
		{Keys: []taskerhttp.Key{{Name: "k", Secret: "s", Scope: "admin"}}},
	} {
		if _, err := taskerhttp.New(eng, o); err == nil {
			t.Errorf("New(%+v) = nil error", o)
		}
	}
	if _, err := taskerhttp.New(nil, nil); err == nil {
		t.Error("New(nil engine) = nil error")
	}
}

func TestTemplatesHandlersAndValidate(t *testing.T) {
	a := newAPI(t, nil, orders.Handlers{}, true)
	var list taskerhttp.TemplateList
	want(t, a.do("GET", "/api/v1/templates", ""), http.StatusOK, "", &list)
	if len(list.Templates) != 1 || list.Templates[0].StepCount != 5 {
		t.Fatalf("templates = %+v", list)
	}
	var d taskerhttp.TemplateDetail
	for _, v := range []string{"1.0.0", "latest"} {
		want(t, a.do("GET", "/api/v1/templates/ecommerce/ecommerce_order_processing/"+v, ""), http.StatusOK, "", &d)
		if len(d.Steps) != 5 || d.Steps[3].Name != "create_order" || len(d.Steps[3].Dependencies) != 2 ||
			d.Steps[1].Retry.MaxAttempts != 3 {
			t.Errorf("template %s = %+v", v, d)
		}
	}
	want(t, a.do("GET", "/api/v1/templates/ecommerce/ecommerce_order_processing/9.9.9", ""), http.StatusNotFound, "template_not_found", nil)
	var hl taskerhttp.HandlerList
	want(t, a.do("GET", "/api/v1/handlers", ""), http.StatusOK, "", &hl)
	if len(hl.Handlers) != 5 || hl.Handlers[0] != orders.CreateOrderCallable {
		t.Errorf("handlers = %v", hl.Handlers)
	}
	yaml, err := os.ReadFile("../internal/orders/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var res taskerhttp.ValidationResult
	want(t, a.do("POST", "/api/v1/templates/validate?file=orders.yaml", string(yaml)), http.StatusOK, "", &res)
	if !res.Valid || res.Template != "ecommerce/ecommerce_order_processing@1.0.0" || len(res.Errors) != 0 {
		t.Errorf("validate guide template = %+v", res)
	}
	bad := "name: Bad\nnamespace_name: ecommerce\nversion: \"1.0.0\"\nsteps:\n  - name: a\n    handler: {callable: x}\n    dependencies: [nope]\n"
	want(t, a.do("POST", "/api/v1/templates/validate", bad), http.StatusOK, "", &res)
	if res.Valid || len(res.Errors) < 2 {
		t.Fatalf("validate bad template = %+v, want two errors at least", res)
	}
	for _, p := range res.Errors {
		if p.File != "template.yaml" || p.Line == 0 || p.Field == "" {
			t.Errorf("problem %+v lacks a file, line or field", p)
		}
	}
}

func TestHealthFollowsTheEngine(t *testing.T) {
	a := newAPI(t, nil, orders.Handlers{}, false)
	var hl taskerhttp.Health
	want(t, a.do("GET", "/api/v1/health/live", ""), http.StatusOK, "", &hl)
	want(t, a.do("GET", "/api/v1/health/ready", ""), http.StatusServiceUnavailable, "", &hl)
	if hl.Ready == nil || *hl.Ready || !strings.Contains(hl.Error, "not started") {
		t.Errorf("ready before Start = %+v", hl)
	}
	if err := a.eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	want(t, a.do("GET", "/api/v1/health", ""), http.StatusOK, "", &hl)
	if err := a.eng.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want(t, a.do("GET", "/api/v1/health/ready", ""), http.StatusServiceUnavailable, "", nil)
	want(t, a.do("POST", "/api/v1/tasks", guideBody), http.StatusServiceUnavailable, "engine_stopped", nil)
}
