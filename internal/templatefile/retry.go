package templatefile

import (
	"fmt"
	"time"
)

// The backoff names a retry block may give.
const (
	BackoffExponential = "exponential"
	BackoffLinear      = "linear"
	BackoffConstant    = "constant"
	BackoffNone        = "none"
	BackoffFibonacci   = "fibonacci"
)

// Defaults of a retry block's omitted fields.
const (
	DefaultMaxAttempts = 3
	DefaultBackoff     = BackoffExponential
	DefaultBaseDelay   = 1000 * time.Millisecond
	DefaultMaxDelay    = 30000 * time.Millisecond
)

// Retry is a step's retry block, each omitted field at its default.
type Retry struct {
	Retryable   bool
	MaxAttempts int
	Backoff     string
	BaseDelay   time.Duration // backoff_base_ms
	MaxDelay    time.Duration // max_backoff_ms; zero means no cap
}

// DefaultRetry returns the retry block of a step that has none.
func DefaultRetry() Retry {
	return Retry{
		Retryable:   true,
		MaxAttempts: DefaultMaxAttempts,
		Backoff:     DefaultBackoff,
		BaseDelay:   DefaultBaseDelay,
		MaxDelay:    DefaultMaxDelay,
	}
}

// Check reports the first field of r that is out of range, by its YAML name.
func (r Retry) Check() (field string, err error) {
	switch {
	case r.MaxAttempts < 0:
		return "max_attempts", fmt.Errorf("must not be negative, got %d", r.MaxAttempts)
	case r.BaseDelay < 0:
		return "backoff_base_ms", fmt.Errorf("must not be negative, got %d", r.BaseDelay.Milliseconds())
	case r.MaxDelay < 0:
		return "max_backoff_ms", fmt.Errorf("must not be negative, got %d", r.MaxDelay.Milliseconds())
	}
	switch r.Backoff {
	case BackoffNone, BackoffLinear, BackoffExponential, BackoffFibonacci, BackoffConstant:
		return "", nil
	}
	return "backoff", fmt.Errorf("must be one of none, linear, exponential, fibonacci, constant, got %q", r.Backoff)
}
