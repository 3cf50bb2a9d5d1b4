package tasker

import (
	"slices"
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	ms := time.Millisecond
	exp := RetryPolicy{Retryable: true, MaxAttempts: 5, Backoff: BackoffExponential, BaseDelay: 100 * ms, MaxDelay: 5000 * ms}
	lin := RetryPolicy{Retryable: true, MaxAttempts: 5, Backoff: BackoffLinear, BaseDelay: 100 * ms, MaxDelay: 250 * ms}
	con := RetryPolicy{Retryable: true, MaxAttempts: 5, Backoff: BackoffConstant, BaseDelay: 70 * ms}
	huge := RetryPolicy{Backoff: BackoffExponential, BaseDelay: time.Hour}
	for _, c := range []struct {
		name       string
		p          RetryPolicy
		n          int
		retryAfter time.Duration
		want       time.Duration
	}{
		{"exponential first", exp, 1, 0, 100 * ms},
		{"exponential second", exp, 2, 0, 200 * ms},
		{"exponential fourth", exp, 4, 0, 800 * ms},
		{"exponential capped", exp, 7, 0, 5000 * ms},
		{"exponential far beyond overflow", exp, 500, 0, 5000 * ms},
		{"uncapped no overflow", huge, 100, 0, maxDuration},
		{"linear", lin, 2, 0, 200 * ms},
		{"linear capped", lin, 3, 0, 250 * ms},
		{"constant", con, 9, 0, 70 * ms},
		{"retry-after wins", exp, 1, 3 * time.Second, 3 * time.Second},
		{"retry-after capped", exp, 1, time.Minute, 5000 * ms},
		{"attempt 0 treated as 1", exp, 0, 0, 100 * ms},
	} {
		if got := c.p.Delay(c.n, c.retryAfter); got != c.want {
			t.Errorf("%s: Delay(%d, %v) = %v, want %v", c.name, c.n, c.retryAfter, got, c.want)
		}
	}
}

// TestRetryDelaysByBackoff lists each backoff's delays after attempts 1 to
// 7, base 100 ms, capped at 1 s.
func TestRetryDelaysByBackoff(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		backoff Backoff
		want    []time.Duration
	}{
		{BackoffNone, []time.Duration{0, 0, 0, 0, 0, 0, 0}},
		{BackoffLinear, []time.Duration{100 * ms, 200 * ms, 300 * ms, 400 * ms, 500 * ms, 600 * ms, 700 * ms}},
		{BackoffExponential, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1000 * ms, 1000 * ms, 1000 * ms}},
		{BackoffFibonacci, []time.Duration{100 * ms, 100 * ms, 200 * ms, 300 * ms, 500 * ms, 800 * ms, 1000 * ms}},
		{BackoffConstant, []time.Duration{100 * ms, 100 * ms, 100 * ms, 100 * ms, 100 * ms, 100 * ms, 100 * ms}},
	} {
		p := RetryPolicy{Retryable: true, MaxAttempts: 8, Backoff: c.backoff, BaseDelay: 100 * ms, MaxDelay: time.Second}
		if _, err := p.validate(); err != nil {
			t.Errorf("%s: validate: %v", c.backoff, err)
		}
		var got []time.Duration
		for n := 1; n <= len(c.want); n++ {
			got = append(got, p.Delay(n, 0))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: delays %v, want %v", c.backoff, got, c.want)
		}
	}
	none := RetryPolicy{Backoff: BackoffNone, BaseDelay: time.Second, MaxDelay: 5 * time.Second}
	if got := none.Delay(1, 2*time.Second); got != 2*time.Second {
		t.Errorf("none with retry-after: %v, want the handler's 2s", got)
	}
	fib := RetryPolicy{Backoff: BackoffFibonacci, BaseDelay: time.Hour}
	if got := fib.Delay(500, 0); got != maxDuration {
		t.Errorf("uncapped fibonacci far beyond overflow: %v, want %v", got, maxDuration)
	}
}

func TestJitterNeverExceedsDelay(t *testing.T) {
	d := 200 * time.Millisecond
	for _, u := range []float64{0, 0.25, 0.5, 0.999999} {
		got := jittered(d, u)
		if got > d || got < 150*time.Millisecond {
			t.Errorf("jittered(%v, %v) = %v, want within [150ms, 200ms]", d, u, got)
		}
	}
	if jittered(d, 0) != d {
		t.Errorf("jittered(d, 0) = %v, want d", jittered(d, 0))
	}
}

func TestShouldRetry(t *testing.T) {
	p := DefaultRetryPolicy()
	if p.MaxAttempts != 3 || !p.Retryable || p.Backoff != BackoffExponential || p.BaseDelay != time.Second || p.MaxDelay != 30*time.Second {
		t.Fatalf("defaults = %+v", p)
	}
	for _, c := range []struct {
		name      string
		p         RetryPolicy
		n         int
		retryable bool
		want      bool
	}{
		{"attempts remain", p, 2, true, true},
		{"last attempt", p, 3, true, false},
		{"failure not retryable", p, 1, false, false},
		{"step not retryable", RetryPolicy{Retryable: false, MaxAttempts: 5}, 1, true, false},
		{"max_attempts 0 means one attempt", RetryPolicy{Retryable: true, MaxAttempts: 0}, 1, true, false},
	} {
		if got := c.p.ShouldRetry(c.n, c.retryable); got != c.want {
			t.Errorf("%s: ShouldRetry(%d, %v) = %v, want %v", c.name, c.n, c.retryable, got, c.want)
		}
	}
	if (RetryPolicy{MaxAttempts: 0}).Attempts() != 1 {
		t.Error("max_attempts 0 must still allow the first attempt")
	}
}

func BenchmarkRetryDelay(b *testing.B) {
	p := DefaultRetryPolicy()
	for i := 0; b.Loop(); i++ {
		_ = jittered(p.Delay(i%10+1, 0), 0.5)
	}
}
