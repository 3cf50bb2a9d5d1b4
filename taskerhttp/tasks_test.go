package taskerhttp_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/taskerhttp"
)

func TestGuideCurlBodyCreatesATaskThatCompletes(t *testing.T) {
	a := newAPI(t, nil, orders.Handlers{}, true)
	rec := a.do("POST", "/api/v1/tasks", guideBody)
	var created tasker.Task
	want(t, rec, http.StatusCreated, "", &created)
	if loc := rec.Header().Get("Location"); loc != "/api/v1/tasks/"+created.ID {
		t.Errorf("Location = %q, want /api/v1/tasks/%s", loc, created.ID)
	}
	if len(created.Steps) != 5 || created.Initiator != "api:checkout" || created.SourceSystem != "web" {
		t.Errorf("created task = %+v", created)
	}
	a.wait(created.ID)
	for _, prefix := range taskerhttp.Prefixes {
		var got tasker.Task
		want(t, a.do("GET", prefix+"/tasks/"+created.ID, ""), http.StatusOK, "", &got)
		if got.State != tasker.TaskComplete || len(got.Steps) != 5 {
			t.Fatalf("GET %s: task %s with %d steps, want complete with 5", prefix, got.State, len(got.Steps))
		}
		for _, s := range got.Steps {
			if s.State != tasker.StepComplete || len(s.Result) == 0 || s.Attempts != 1 {
				t.Errorf("step %s: %s, %d attempts, result %s", s.Name, s.State, s.Attempts, s.Result)
			}
		}
	}
}

func TestCreateTaskRefusals(t *testing.T) {
	a := newAPI(t, &taskerhttp.Options{MaxBodyBytes: 4096}, orders.Handlers{}, true)
	first := a.submit(orders.TokenSuccess, `"idempotency_key": "order-7"`)
	for _, c := range []struct {
		name, body string
		status     int
		code       string
		mentions   []string
	}{
		{"schema violations", `{"name": "ecommerce_order_processing", "namespace": "ecommerce",
			"context": {"cart_items": [{"sku": 1}], "customer_email": 5}}`,
			400, "invalid_input", []string{`"$.cart_items[0].sku"`, `"$.customer_email"`, `"violations"`}},
		{"missing fields", `{"context": {}}`, 400, "invalid_request", []string{`"$.name"`, `"$.namespace"`}},
		{"unknown field", `{"name": "x", "namespace": "y", "colour": "red"}`, 400, "invalid_request", []string{`"$.colour"`}},
		{"ill-typed field", `{"name": 7, "namespace": "y"}`, 400, "invalid_request", []string{`"$.name"`}},
		{"malformed JSON", `{"name": "x",`, 400, "invalid_json", nil},
		{"not an object", `[1, 2]`, 400, "invalid_json", nil},
		{"two values", `{"name": "x", "namespace": "y"} {}`, 400, "invalid_json", nil},
		{"empty body", ``, 400, "invalid_json", nil},
		{"context not an object", `{"name": "ecommerce_order_processing", "namespace": "ecommerce", "context": [1]}`,
			400, "invalid_input", []string{`"$"`}},
		{"unknown template", `{"name": "refund", "namespace": "ecommerce"}`, 404, "template_not_found",
			[]string{"ecommerce_order_processing@1.0.0"}},
		{"unknown namespace", `{"name": "refund", "namespace": "bank"}`, 404, "template_not_found",
			[]string{"no template is loaded under namespace bank"}},
		{"duplicate", strings.Replace(guideBody, `"version"`, `"idempotency_key": "order-7", "version"`, 1),
			409, "duplicate_task", []string{`"task_id":"` + first + `"`}},
		{"oversized", `{"name": "x", "namespace": "y", "reason": "` + strings.Repeat("a", 5000) + `"}`,
			413, "body_too_large", []string{"4096"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := a.do("POST", "/api/v1/tasks", c.body)
			want(t, rec, c.status, c.code, nil)
			for _, m := range c.mentions {
				if !strings.Contains(rec.Body.String(), m) {
					t.Errorf("body lacks %s: %s", m, rec.Body)
				}
			}
		})
	}
	if tasks, _ := a.eng.List(t.Context(), tasker.TaskFilter{}); len(tasks) != 1 {
		t.Errorf("%d tasks stored, want only the first: refusals store nothing", len(tasks))
	}
}

func TestMethodsRoutesAndIDs(t *testing.T) {
	a := newAPI(t, nil, orders.Handlers{}, true)
	rec := a.do("PUT", "/api/v1/tasks", `{}`)
	want(t, rec, http.StatusMethodNotAllowed, "method_not_allowed", nil)
	if got := rec.Header().Get("Allow"); got != "GET, POST" {
		t.Errorf("Allow = %q, want \"GET, POST\"", got)
	}
	rec = a.do("POST", "/v1/tasks/0190f5e2-6a1b-7c3d-8e4f-5a6b7c8d9e0f", ``)
	want(t, rec, http.StatusMethodNotAllowed, "method_not_allowed", nil)
	if got := rec.Header().Get("Allow"); got != "DELETE, GET" {
		t.Errorf("Allow = %q, want \"DELETE, GET\"", got)
	}
	want(t, a.do("GET", "/api/v1/nope", ""), http.StatusNotFound, "route_not_found", nil)
	for _, path := range []string{"/api/v1/tasks/nope", "/api/v1/tasks/nope/workflow_steps", "/v1/tasks/1/workflow_steps/x/audit"} {
		want(t, a.do("GET", path, ""), http.StatusBadRequest, "invalid_id", nil)
	}
	unknown := "/api/v1/tasks/0190f5e2-6a1b-7c3d-8e4f-5a6b7c8d9e0f"
	want(t, a.do("GET", unknown, ""), http.StatusNotFound, "task_not_found", nil)
	want(t, a.do("DELETE", unknown, ""), http.StatusNotFound, "task_not_found", nil)
	want(t, a.do("POST", unknown+"/retry", ""), http.StatusNotFound, "task_not_found", nil)
	id := a.submit(orders.TokenSuccess, "")
	a.wait(id)
	want(t, a.do("GET", "/api/v1/tasks/"+id+"/workflow_steps/nope", ""), http.StatusNotFound, "step_not_found", nil)
	want(t, a.do("DELETE", "/api/v1/tasks/"+id, ""), http.StatusConflict, "illegal_transition", nil)
	want(t, a.do("POST", "/api/v1/tasks/"+id+"/retry", `{"by": "ops", "bogus": 1}`), http.StatusBadRequest, "invalid_request", nil)
	want(t, a.do("POST", "/api/v1/tasks/"+id+"/retry", ""), http.StatusConflict, "illegal_transition", nil)
}

func TestListPagesAndFilters(t *testing.T) {
	a := newAPI(t, nil, orders.Handlers{}, true)
	var ids []string
	for i := range 7 {
		token := orders.TokenSuccess
		if i%3 == 0 {
			token = orders.TokenDeclined
		}
		id := a.submit(token, fmt.Sprintf(`"tags": ["batch", "n%d"]`, i))
		a.wait(id)
		ids = append(ids, id)
	}
	var all []string
	pages := 0
	for cursor := ""; ; pages++ {
		var page taskerhttp.TaskPage
		want(t, a.do("GET", "/api/v1/tasks?limit=3&cursor="+cursor, ""), http.StatusOK, "", &page)
		for _, task := range page.Tasks {
			all = append(all, task.ID)
			if task.Steps != nil {
				t.Errorf("listed task has steps")
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if !slices.Equal(all, ids) || pages != 2 {
		t.Errorf("pages of 3 (%d more after the first) = %v, want %v", pages, all, ids)
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"state=error", []string{ids[0], ids[3], ids[6]}},
		{"state=error&state=cancelled&tag=n3", []string{ids[3]}},
		{"initiator=api:checkout&tag=n1", []string{ids[1]}},
		{"initiator=someone", nil},
		{"state=complete,pending&tag=batch&tag=n4", []string{ids[4]}},
		{"namespace=ecommerce&name=ecommerce_order_processing&source_system=web&limit=2", ids[:2]},
		{"namespace=bank", nil},
	} {
		var page taskerhttp.TaskPage
		want(t, a.do("GET", "/v1/tasks?"+c.query, ""), http.StatusOK, "", &page)
		var got []string
		for _, task := range page.Tasks {
			got = append(got, task.ID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("GET /tasks?%s = %v, want %v", c.query, got, c.want)
		}
	}
	for _, q := range []string{"limit=101", "limit=0", "limit=x", "state=done", "colour=red"} {
		want(t, a.do("GET", "/api/v1/tasks?"+q, ""), http.StatusBadRequest, "invalid_query", nil)
	}
}
