package taskerhttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/taskerhttp"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guideBody is the body of the guide's Step 3 curl command, verbatim.
const guideBody = orders.CurlBody

// api is a handler on an engine running the guide's workflow, and the
// OpenAPI document every response it gives is checked against.
type api struct {
	t   *testing.T
	eng *tasker.Engine
	h   http.Handler
}

// newEngine returns an engine with the guide's template and handlers, not
// started; it is stopped when the test ends.
func newEngine(t *testing.T, h orders.Handlers) *tasker.Engine {
	t.Helper()
	return newEngineOn(t, memory.New(), h)
}

// newEngineOn is newEngine on the store st.
func newEngineOn(t *testing.T, st store.Store, h orders.Handlers) *tasker.Engine {
	t.Helper()
	eng, err := orders.NewEngine(st, &tasker.Config{Workers: 8}, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.StopAndCancel(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return eng
}

// newAPI starts an engine (unless start is false) and mounts the handler.
func newAPI(t *testing.T, opts *taskerhttp.Options, h orders.Handlers, start bool) *api {
	t.Helper()
	eng := newEngine(t, h)
	if start {
		if err := eng.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	handler, err := taskerhttp.New(eng, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &api{t: t, eng: eng, h: handler}
}

// do serves one request and checks the response against the OpenAPI
// document; hdr is pairs of header names and values.
func (a *api) do(method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	a.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	checkAgainstSpec(a.t, req, rec)
	return rec
}

// want checks rec's status and, for an error, its code; it decodes the
// body into v when v is not nil.
func want(t *testing.T, rec *httptest.ResponseRecorder, status int, code string, v any) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if code != "" {
		var e taskerhttp.ErrorResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code != code {
			t.Fatalf("error code = %q (%v), want %q; body %s", e.Error.Code, err, code, rec.Body)
		}
	}
	if v != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("decode %s: %v", rec.Body, err)
		}
	}
}

// spec is the OpenAPI document, loaded once for every test.
var spec = sync.OnceValues(func() (*specCheck, error) {
	b, err := taskerhttp.OpenAPI()
	if err != nil {
		return nil, err
	}
	doc, err := libopenapi.NewDocument(b)
	if err != nil {
		return nil, err
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	errSchema := model.Model.Components.Schemas.GetOrZero("Error").Schema()
	return &specCheck{v: v, errSchema: errSchema}, nil
})

type specCheck struct {
	mu        sync.Mutex // the validator is not documented as safe for concurrent use
	v         validator.Validator
	errSchema *base.Schema
}

// checkAgainstSpec fails the test unless the response is one the document
// describes for the request. A route or method the document has no
// operation for (404 of an unknown route, 405) must still be an Error.
func checkAgainstSpec(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	sc, err := spec()
	if err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	resp := rec.Result()
	resp.Body = readCloser{bytes.NewReader(rec.Body.Bytes())}
	if rec.Code == http.StatusMethodNotAllowed || strings.Contains(rec.Body.String(), `"route_not_found"`) {
		if ok, errs := schema_validation.NewSchemaValidator().ValidateSchemaBytes(sc.errSchema, rec.Body.Bytes()); !ok {
			t.Errorf("%s %s → %d: body is not an Error: %v", req.Method, req.URL, rec.Code, errs[0])
		}
		return
	}
	if ok, errs := sc.v.ValidateHttpResponse(req, resp); !ok {
		for _, e := range errs {
			t.Errorf("%s %s → %d does not match the OpenAPI document: %s %v\n%s",
				req.Method, req.URL, rec.Code, e.Error(), e.SchemaValidationErrors, rec.Body)
		}
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// wait waits, at most 30 s, for the task to end.
func (a *api) wait(id string) *tasker.Task {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	task, err := a.eng.Wait(ctx, id)
	if err != nil {
		a.t.Fatalf("Wait(%s): %v", id, err)
	}
	return task
}

// submit posts the guide's body with the payment token and returns the
// task's ID.
func (a *api) submit(token string, extra string) string {
	a.t.Helper()
	body := strings.Replace(guideBody, "tok_test_success", token, 1)
	if extra != "" {
		body = strings.Replace(body, `"name": "ecommerce_order_processing",`, `"name": "ecommerce_order_processing", `+extra+`,`, 1)
	}
	var task tasker.Task
	want(a.t, a.do("POST", "/api/v1/tasks", body), http.StatusCreated, "", &task)
	return task.ID
}
