// Package httpstep calls HTTP services from a tasker step, as Tasker's API
// handler mixin does: it performs a request and classifies the response
// into a result or a *tasker.StepError the engine knows how to retry.
//
//   - 2xx: the body, raw (Do) or decoded from JSON (GetJSON, PostJSON);
//   - 408, 429 and 5xx: a retryable tasker.ErrorRetryable failure whose
//     RetryAfter is the response's Retry-After (seconds or an HTTP-date);
//   - any other status: a permanent tasker.ErrorPermanent failure;
//   - a network error or timeout: a retryable failure;
//   - the step's context ending: a retryable failure wrapping its cause.
//
// A failure's Code names the status ("HTTP_503") and its Message includes
// a bounded excerpt of the body; errors.As finds the *StatusError behind it.
package httpstep

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gotasker/tasker"
)

// DefaultMaxBody bounds the response body a Client reads when its MaxBody
// is zero.
const DefaultMaxBody = 10 << 20

// ExcerptLen bounds the excerpt of a body a failure's message includes.
const ExcerptLen = 256

// Client performs requests for step handlers. Its zero value uses
// http.DefaultClient and requires absolute URLs. A Client is safe for
// concurrent use as long as its fields are not changed.
type Client struct {
	// HTTP performs the requests; nil means http.DefaultClient. Its
	// Timeout, if any, bounds each request and is reported as retryable.
	HTTP *http.Client
	// BaseURL, when set, is what relative request URLs and paths are
	// resolved against, such as "http://billing-service/v1/".
	BaseURL string
	// Header is added to every request, such as an Authorization or an
	// Idempotency-Key (see tasker.StepContext.IdempotencyKey).
	Header http.Header
	// MaxBody bounds the response body read; zero means DefaultMaxBody. A
	// longer body is a permanent failure.
	MaxBody int64
}

// Response is a 2xx response, its body read in full.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// Result returns the body as a step result: as JSON when it is valid JSON,
// otherwise as a string.
func (r *Response) Result() any {
	if json.Valid(r.Body) {
		return json.RawMessage(r.Body)
	}
	return string(r.Body)
}

// StatusError is the cause of a failure for a non-2xx status.
type StatusError struct {
	Method     string
	URL        string
	StatusCode int
	Status     string // such as "503 Service Unavailable"
	Body       string // an excerpt of at most ExcerptLen bytes
}

// Error returns "METHOD URL: STATUS: BODY".
func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %s: %s", e.Method, e.URL, e.Status, e.Body)
}

// Do sends req with ctx, resolving a relative URL against BaseURL and
// adding Header, and returns the 2xx response with its body read. Any
// other outcome is a *tasker.StepError, classified as the package comment
// says.
func (c *Client) Do(ctx context.Context, req *http.Request) (*Response, error) {
	req, err := c.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, transportError(ctx, req, err)
	}
	defer resp.Body.Close()
	body, err := c.read(ctx, req, resp)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, statusError(req, resp, body, time.Now())
	}
	return &Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// GetJSON sends GET path (resolved against BaseURL) and decodes the 2xx
// response's JSON body into v. A body that is not JSON is a permanent
// failure.
func (c *Client) GetJSON(ctx context.Context, path string, v any) error {
	return c.SendJSON(ctx, http.MethodGet, path, nil, v)
}

// PostJSON sends POST path with body encoded as JSON and decodes the 2xx
// response's JSON body into v; a nil v ignores the body.
func (c *Client) PostJSON(ctx context.Context, path string, body, v any) error {
	return c.SendJSON(ctx, http.MethodPost, path, body, v)
}

// SendJSON sends a request of method to path with body (if not nil)
// encoded as JSON and decodes the 2xx response's JSON body into v (if not
// nil).
func (c *Client) SendJSON(ctx context.Context, method, path string, body, v any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("httpstep: encode request body: %w", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, r)
	if err != nil {
		return fmt.Errorf("httpstep: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(ctx, req)
	if err != nil || v == nil {
		return err
	}
	if err := json.Unmarshal(resp.Body, v); err != nil {
		return &tasker.StepError{Type: tasker.ErrorPermanent, Code: "HTTP_BAD_JSON", Err: err,
			Message: fmt.Sprintf("%s %s: %d response is not the JSON expected (%v): %s",
				req.Method, req.URL.Redacted(), resp.StatusCode, err, excerpt(resp.Body))}
	}
	return nil
}

// prepare returns req bound to ctx, its URL resolved and c.Header added.
func (c *Client) prepare(ctx context.Context, req *http.Request) (*http.Request, error) {
	req = req.Clone(ctx)
	if !req.URL.IsAbs() && c.BaseURL != "" {
		base, err := url.Parse(c.BaseURL)
		if err != nil {
			return nil, fmt.Errorf("httpstep: BaseURL: %w", err)
		}
		req.URL = base.ResolveReference(req.URL)
		req.Host = ""
	}
	for k, vs := range c.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return req, nil
}

// read reads resp's body, up to the client's bound.
func (c *Client) read(ctx context.Context, req *http.Request, resp *http.Response) ([]byte, error) {
	limit := c.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, transportError(ctx, req, err)
	}
	if int64(len(body)) > limit {
		return nil, &tasker.StepError{Type: tasker.ErrorPermanent, Code: "HTTP_BODY_TOO_LARGE",
			Message: fmt.Sprintf("%s %s: %s: body longer than %d bytes", req.Method, req.URL.Redacted(), resp.Status, limit)}
	}
	return body, nil
}

// excerpt returns at most ExcerptLen bytes of body as valid UTF-8, "…"
// marking a cut.
func excerpt(body []byte) string {
	s := string(body)
	if len(s) > ExcerptLen {
		s = strings.ToValidUTF8(s[:ExcerptLen], "") + "…"
	}
	return strings.TrimSpace(s)
}

// isTimeout reports whether err is a timeout.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &t) && t.Timeout()
}
