package httpstep

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve starts a server answering every request with status, header and
// body, closed when the test ends.
func serve(t *testing.T, status int, header map[string]string, body string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return &Client{HTTP: srv.Client(), BaseURL: srv.URL}
}

// stepError returns err as a *tasker.StepError, failing the test if it is not one.
func stepError(t *testing.T, err error) *tasker.StepError {
	t.Helper()
	var se *tasker.StepError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *tasker.StepError", err, err)
	}
	return se
}

func TestStatusClasses(t *testing.T) {
	for _, c := range []struct {
		status    int
		header    map[string]string
		typ       tasker.ErrorType
		retryable bool
		after     time.Duration
	}{
		{400, nil, tasker.ErrorPermanent, false, 0},
		{401, nil, tasker.ErrorPermanent, false, 0},
		{404, map[string]string{"Retry-After": "5"}, tasker.ErrorPermanent, false, 0},
		{409, nil, tasker.ErrorPermanent, false, 0},
		{422, nil, tasker.ErrorPermanent, false, 0},
		{408, nil, tasker.ErrorRetryable, true, 0},
		{429, map[string]string{"Retry-After": "7"}, tasker.ErrorRetryable, true, 7 * time.Second},
		{500, nil, tasker.ErrorRetryable, true, 0},
		{502, map[string]string{"Retry-After": "soon"}, tasker.ErrorRetryable, true, 0},
		{503, map[string]string{"Retry-After": "120"}, tasker.ErrorRetryable, true, 2 * time.Minute},
		{504, nil, tasker.ErrorRetryable, true, 0},
		{304, nil, tasker.ErrorPermanent, false, 0},
	} {
		c1 := serve(t, c.status, c.header, `{"error":"nope"}`)
		var v any
		se := stepError(t, c1.GetJSON(context.Background(), "/things/1", &v))
		code := "HTTP_" + strconv.Itoa(c.status)
		if se.Type != c.typ || se.Retryable != c.retryable || se.RetryAfter != c.after || se.Code != code {
			t.Errorf("%d: got %s %q retryable=%v after=%s; want %s %q %v %s",
				c.status, se.Type, se.Code, se.Retryable, se.RetryAfter, c.typ, code, c.retryable, c.after)
		}
		var st *StatusError
		if !errors.As(se, &st) || st.StatusCode != c.status || st.Method != "GET" || !strings.HasSuffix(st.URL, "/things/1") {
			t.Errorf("%d: cause %#v", c.status, st)
		}
		if c.status != 304 && !strings.Contains(se.Message, `{"error":"nope"}`) {
			t.Errorf("%d: message %q lacks the body", c.status, se.Message)
		}
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	at := time.Now().Add(90 * time.Second).UTC().Truncate(time.Second)
	c := serve(t, 503, map[string]string{"Retry-After": at.Format(http.TimeFormat)}, "busy")
	before := time.Now()
	se := stepError(t, c.GetJSON(context.Background(), "/", nil))
	// RetryAfter was computed between before and now, from a date in whole seconds.
	if lo, hi := at.Sub(time.Now()), at.Sub(before); se.RetryAfter < lo || se.RetryAfter > hi || !se.Retryable {
		t.Errorf("RetryAfter = %s, want in [%s, %s], retryable", se.RetryAfter, lo, hi)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"-3", 0}, {"3", 3 * time.Second}, {" 10 ", 10 * time.Second},
		{"99999999999999999", 0}, {"1.5", 0}, {"tomorrow", 0},
		{"Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second},
		{"Sunday, 01-Mar-26 12:01:00 GMT", time.Minute}, // RFC 850
		{"Sun Mar  1 12:00:05 2026", 5 * time.Second},   // ANSI C
		{"Sun, 01 Mar 2026 11:59:00 GMT", 0},            // past
	} {
		if got := RetryAfter(http.Header{"Retry-After": {c.v}}, now); got != c.want {
			t.Errorf("RetryAfter(%q) = %s, want %s", c.v, got, c.want)
		}
	}
}

func TestSuccess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"method":%q,"path":%q,"key":%q,"type":%q,"body":%s}`, r.Method, r.URL.Path,
			r.Header.Get("Idempotency-Key"), r.Header.Get("Content-Type"), cmp.Or(string(body), "null"))
	}))
	defer srv.Close()
	c := &Client{HTTP: srv.Client(), BaseURL: srv.URL + "/v1/", Header: http.Header{"Idempotency-Key": {"t1/step"}}}
	var got map[string]any
	if err := c.PostJSON(context.Background(), "users", map[string]int{"n": 1}, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"method": "POST", "path": "/v1/users", "key": "t1/step", "type": "application/json",
		"body": map[string]any{"n": float64(1)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PostJSON decoded %v, want %v", got, want)
	}
	req, _ := http.NewRequest(http.MethodDelete, "users/7", nil)
	resp, err := c.Do(context.Background(), req)
	if err != nil || resp.StatusCode != 201 || !strings.Contains(string(resp.Body), `"path":"/v1/users/7"`) {
		t.Fatalf("Do = %+v, %v", resp, err)
	}
	if r, ok := resp.Result().(json.RawMessage); !ok || string(r) != string(resp.Body) {
		t.Errorf("Result() of a JSON body = %#v", resp.Result())
	}
}

func TestRawBody(t *testing.T) {
	c := serve(t, 200, map[string]string{"Content-Type": "text/plain"}, "pong")
	req, _ := http.NewRequest(http.MethodGet, "/ping", nil)
	resp, err := c.Do(context.Background(), req)
	if err != nil || string(resp.Body) != "pong" || resp.Result() != "pong" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("Do = %+v, %v", resp, err)
	}
}

func TestBadJSON(t *testing.T) {
	c := serve(t, 200, nil, "<html>oops</html>")
	var v struct{ ID string }
	se := stepError(t, c.GetJSON(context.Background(), "/users/1", &v))
	if se.Type != tasker.ErrorPermanent || se.Retryable || se.Code != "HTTP_BAD_JSON" ||
		!strings.Contains(se.Message, "<html>oops</html>") {
		t.Errorf("got %+v", se)
	}
}

func TestBodyExcerptIsBounded(t *testing.T) {
	c := serve(t, 500, nil, "é"+strings.Repeat("x", 5000))
	se := stepError(t, c.GetJSON(context.Background(), "/", nil))
	var st *StatusError
	errors.As(se, &st)
	if len(st.Body) > ExcerptLen+len("…") || !strings.HasPrefix(st.Body, "éxxx") || !strings.HasSuffix(st.Body, "…") ||
		len(se.Message) > ExcerptLen+200 {
		t.Errorf("excerpt %d bytes, message %d bytes: %q", len(st.Body), len(se.Message), se.Message)
	}
}

func TestBodyTooLarge(t *testing.T) {
	c := serve(t, 200, nil, strings.Repeat("x", 101))
	c.MaxBody = 100
	se := stepError(t, c.GetJSON(context.Background(), "/", nil))
	if se.Code != "HTTP_BODY_TOO_LARGE" || se.Retryable {
		t.Errorf("got %+v", se)
	}
	c.MaxBody = 101
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	if resp, err := c.Do(context.Background(), req); err != nil || len(resp.Body) != 101 {
		t.Errorf("a body of exactly MaxBody: %v", err)
	}
}

func TestNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c := &Client{BaseURL: srv.URL}
	se := stepError(t, c.GetJSON(context.Background(), "/", nil))
	if se.Type != tasker.ErrorRetryable || !se.Retryable || se.Code != "HTTP_NETWORK" {
		t.Errorf("got %+v", se)
	}
}

// blocking starts a server whose handler signals arrived, then blocks
// until the request's context ends.
func blocking(t *testing.T) (*httptest.Server, chan struct{}) {
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv, arrived
}

func TestTimeout(t *testing.T) {
	srv, _ := blocking(t)
	hc := srv.Client()
	hc.Timeout = 20 * time.Millisecond
	se := stepError(t, (&Client{HTTP: hc, BaseURL: srv.URL}).GetJSON(context.Background(), "/", nil))
	if se.Type != tasker.ErrorRetryable || !se.Retryable || se.Code != "HTTP_TIMEOUT" {
		t.Errorf("got %+v", se)
	}
}

func TestCancelledContext(t *testing.T) {
	srv, arrived := blocking(t)
	c := &Client{HTTP: srv.Client(), BaseURL: srv.URL}
	ctx, cancel := context.WithCancelCause(context.Background())
	stopped := errors.New("engine stopping")
	go func() { <-arrived; cancel(stopped) }()
	err := c.GetJSON(ctx, "/", nil)
	se := stepError(t, err)
	if se.Code != "HTTP_CANCELLED" || !se.Retryable || !errors.Is(err, stopped) || !errors.Is(err, context.Canceled) {
		t.Errorf("got %+v (%v)", se, err)
	}

	done, stop := context.WithCancel(context.Background())
	stop()
	if se := stepError(t, c.GetJSON(done, "/", nil)); se.Code != "HTTP_CANCELLED" {
		t.Errorf("an already cancelled context: %+v", se)
	}
}
