package httpstep

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gotasker/tasker"
)

// Retryable reports whether a response of status is worth another attempt:
// 408 Request Timeout, 429 Too Many Requests and every 5xx.
func Retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500 && status <= 599
}

// RetryAfter returns how long h's Retry-After asks to wait, from now:
// either delay-seconds or an HTTP-date. It returns zero when the header is
// absent, malformed, negative or in the past.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 || secs > int64(1<<63-1)/int64(time.Second) {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil || !at.After(now) {
		return 0
	}
	return at.Sub(now)
}

// statusError classifies a non-2xx response.
func statusError(req *http.Request, resp *http.Response, body []byte, now time.Time) *tasker.StepError {
	cause := &StatusError{Method: req.Method, URL: req.URL.Redacted(), StatusCode: resp.StatusCode,
		Status: resp.Status, Body: excerpt(body)}
	e := &tasker.StepError{Message: cause.Error(), Code: "HTTP_" + strconv.Itoa(resp.StatusCode), Err: cause,
		Type: tasker.ErrorPermanent}
	if Retryable(resp.StatusCode) {
		e.Type, e.Retryable, e.RetryAfter = tasker.ErrorRetryable, true, RetryAfter(resp.Header, now)
	}
	return e
}

// transportError classifies a failure to get a response: the step's
// context ending (the error then wraps ctx.Err() and its cause), a timeout,
// or another network error, all retryable.
func transportError(ctx context.Context, req *http.Request, err error) *tasker.StepError {
	e := &tasker.StepError{Type: tasker.ErrorRetryable, Retryable: true, Err: err, Code: "HTTP_NETWORK"}
	switch {
	case ctx.Err() != nil:
		e.Code, e.Err = "HTTP_CANCELLED", ctx.Err()
		if cause := context.Cause(ctx); cause != ctx.Err() {
			e.Err = fmt.Errorf("%w: %w", ctx.Err(), cause)
		}
	case isTimeout(err):
		e.Code = "HTTP_TIMEOUT"
	}
	e.Message = fmt.Sprintf("%s %s: %v", req.Method, req.URL.Redacted(), e.Err)
	return e
}
