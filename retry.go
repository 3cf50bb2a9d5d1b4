package tasker

import (
	"math/rand/v2"
	"time"

	"github.com/gotasker/tasker/internal/templatefile"
)

// Backoff names how the delay between attempts grows.
type Backoff string

// The backoff strategies a template may name.
const (
	// BackoffExponential waits base·2^(n-1) after the n-th attempt.
	BackoffExponential Backoff = templatefile.BackoffExponential
	// BackoffLinear waits base·n after the n-th attempt.
	BackoffLinear Backoff = templatefile.BackoffLinear
	// BackoffConstant waits base after every attempt.
	BackoffConstant Backoff = templatefile.BackoffConstant
	// BackoffNone retries at once, without a delay.
	BackoffNone Backoff = templatefile.BackoffNone
	// BackoffFibonacci waits base·F(n) after the n-th attempt, where
	// F(1) = F(2) = 1 and F(n) = F(n-1) + F(n-2): base, base, 2·base,
	// 3·base, 5·base…
	BackoffFibonacci Backoff = templatefile.BackoffFibonacci
)

// Defaults for a step whose template omits retry, or omits one of its fields.
const (
	DefaultMaxAttempts = templatefile.DefaultMaxAttempts
	DefaultBackoff     = Backoff(templatefile.DefaultBackoff)
	DefaultBaseDelay   = templatefile.DefaultBaseDelay
	DefaultMaxDelay    = templatefile.DefaultMaxDelay
)

// JitterFraction is the most by which a retry delay is shortened at random:
// a computed delay d becomes a value in [d·(1-JitterFraction), d]. Jitter only
// ever shortens a delay, so it never exceeds the policy's cap.
const JitterFraction = 0.25

// RetryPolicy is a step's retry policy, the template's retry block. The zero
// value is not useful; DefaultRetryPolicy returns the defaults.
type RetryPolicy struct {
	// Retryable reports whether failures of the step may be retried at all.
	Retryable bool
	// MaxAttempts counts every attempt, the first included. Values below 1
	// mean one attempt: the first attempt always runs.
	MaxAttempts int
	// Backoff is how the delay grows between attempts.
	Backoff Backoff
	// BaseDelay is the template's backoff_base_ms.
	BaseDelay time.Duration
	// MaxDelay caps every delay, a handler's RetryAfter included; it is the
	// template's max_backoff_ms. Zero means no cap.
	MaxDelay time.Duration
}

// DefaultRetryPolicy returns the policy of a step whose template omits retry:
// retryable, 3 attempts, exponential backoff from 1 s, capped at 30 s.
func DefaultRetryPolicy() RetryPolicy {
	return newRetryPolicy(templatefile.DefaultRetry())
}

// newRetryPolicy converts a parsed retry block.
func newRetryPolicy(r templatefile.Retry) RetryPolicy {
	return RetryPolicy{
		Retryable:   r.Retryable,
		MaxAttempts: r.MaxAttempts,
		Backoff:     Backoff(r.Backoff),
		BaseDelay:   r.BaseDelay,
		MaxDelay:    r.MaxDelay,
	}
}

// Attempts returns how many attempts the policy allows, at least 1.
func (p RetryPolicy) Attempts() int {
	return max(p.MaxAttempts, 1)
}

// validate reports the first field that is out of range, by its YAML name,
// with the rules that loading a template applies.
func (p RetryPolicy) validate() (field string, err error) {
	return templatefile.Retry{
		Retryable:   p.Retryable,
		MaxAttempts: p.MaxAttempts,
		Backoff:     string(p.Backoff),
		BaseDelay:   p.BaseDelay,
		MaxDelay:    p.MaxDelay,
	}.Check()
}

// ShouldRetry reports whether a failure of attempt n (counted from 1) may be
// followed by another attempt: the step and the failure must both be
// retryable and attempts must remain.
func (p RetryPolicy) ShouldRetry(n int, failureRetryable bool) bool {
	return p.Retryable && failureRetryable && n < p.Attempts()
}

// Delay returns how long to wait after the n-th attempt (counted from 1)
// failed, before jitter: nothing (none), base·n (linear), base·2^(n-1)
// (exponential), base·F(n) (fibonacci) or base (constant), capped at
// MaxDelay. A positive retryAfter, the handler's own request, wins over the
// policy but is capped too.
func (p RetryPolicy) Delay(n int, retryAfter time.Duration) time.Duration {
	n = max(n, 1)
	limit := p.capOr(maxDuration)
	d := retryAfter
	if d <= 0 {
		switch p.Backoff {
		case BackoffNone:
			d = 0
		case BackoffLinear:
			d = mulCapped(p.BaseDelay, int64(n))
		case BackoffConstant:
			d = p.BaseDelay
		case BackoffFibonacci:
			prev := p.BaseDelay // base·F(i-1), with d = base·F(i)
			d = p.BaseDelay
			for i := 2; i < n && d < limit; i++ {
				prev, d = d, addCapped(prev, d)
			}
		default:
			d = p.BaseDelay
			for i := 1; i < n && d < limit; i++ {
				d = mulCapped(d, 2)
			}
		}
	}
	return min(d, limit)
}

// jittered returns d shortened by a random fraction of at most
// JitterFraction; u is a uniform random number in [0, 1).
func jittered(d time.Duration, u float64) time.Duration {
	return d - time.Duration(float64(d)*JitterFraction*u)
}

const maxDuration = time.Duration(1<<63 - 1)

func (p RetryPolicy) capOr(def time.Duration) time.Duration {
	if p.MaxDelay > 0 {
		return p.MaxDelay
	}
	return def
}

// addCapped adds two non-negative durations without overflowing past
// maxDuration.
func addCapped(a, b time.Duration) time.Duration {
	if a > maxDuration-b {
		return maxDuration
	}
	return a + b
}

// mulCapped multiplies without overflowing past maxDuration.
func mulCapped(d time.Duration, n int64) time.Duration {
	if d > 0 && n > 0 && d > maxDuration/time.Duration(n) {
		return maxDuration
	}
	return d * time.Duration(n)
}

// jitter returns d shortened at random, per JitterFraction.
func jitter(d time.Duration) time.Duration { return jittered(d, rand.Float64()) }
