package httpstep_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/httpstep"
	"github.com/gotasker/tasker/store/memory"
)

const fetchYAML = `
name: fetch
namespace_name: http_examples
version: "1.0.0"
steps:
  - name: fetch_user
    handler: {callable: fetch_user}
    retry: {retryable: true, max_attempts: 3, backoff: none}
`

// runFetch runs one task whose step GETs /users/1 from a server that
// answers with statuses, one per request (the last one repeated), and
// returns the task and how many requests the server saw.
func runFetch(t *testing.T, statuses ...int) (*tasker.Task, int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(hits.Add(1))
		status := statuses[min(n, len(statuses))-1]
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"id":"1","name":"Ada","request":%d}`, n)
	}))
	defer srv.Close()
	client := &httpstep.Client{HTTP: srv.Client(), BaseURL: srv.URL}

	eng, err := tasker.New(memory.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := tasker.ParseTemplate("fetch.yaml", []byte(fetchYAML))
	if err != nil {
		t.Fatal(err)
	}
	err = errors.Join(eng.Register("fetch_user", tasker.HandlerFunc(
		func(ctx context.Context, step *tasker.StepContext) (any, error) {
			var user struct{ Name string }
			err := client.GetJSON(ctx, "/users/1", &user)
			return map[string]string{"greeting": "hello " + user.Name}, err
		})), eng.AddTemplates(tmpl), eng.Start(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Stop(context.Background())
	id, err := eng.Submit(t.Context(), tasker.SubmitRequest{Namespace: "http_examples", Name: "fetch"})
	if err != nil {
		t.Fatal(err)
	}
	task, err := eng.Wait(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return task, hits.Load()
}

func TestEngineRetriesA503(t *testing.T) {
	task, hits := runFetch(t, 503, 200)
	s := task.Step("fetch_user")
	if task.State != tasker.TaskComplete || s.Attempts != 2 || hits != 2 || string(s.Result) != `{"greeting":"hello Ada"}` {
		t.Fatalf("task %s, step %s after %d attempts (%d requests): %s", task.State, s.State, s.Attempts, hits, s.Result)
	}
	if f := s.LastError; f == nil || f.Attempt != 1 || f.Code != "HTTP_503" || f.Type != tasker.ErrorRetryable || !f.Retryable {
		t.Errorf("first attempt's failure: %+v", f)
	}
}

func TestEngineFailsA404ForGood(t *testing.T) {
	task, hits := runFetch(t, 404)
	s := task.Step("fetch_user")
	if task.State != tasker.TaskFailed || s.State != tasker.StepFailed || s.Attempts != 1 || hits != 1 {
		t.Fatalf("task %s, step %s after %d attempts (%d requests)", task.State, s.State, s.Attempts, hits)
	}
	if f := s.LastError; f == nil || f.Code != "HTTP_404" || f.Type != tasker.ErrorPermanent || f.Retryable {
		t.Errorf("failure: %+v", f)
	}
}
