package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"testing"
)

func TestRunPrintsOutcomeAndTimings(t *testing.T) {
	for _, c := range []struct {
		args   []string
		want   []string
		failed bool // the task does not complete: run returns an error (exit status 1)
	}{
		{nil, []string{`: complete \(stored in`, `process_payment\s+complete\s+1\s`, `"total":118.77`,
			`confirmation: "Order Confirmation - ORD-20260218-ABC" sent to customer@example.com`}, false},
		{[]string{"-token", "tok_test_declined"}, []string{`: error`, `process_payment\s+error\s+1\s`,
			`permanent_error \[PAYMENT_DECLINED\]`, `create_order\s+pending\s+0\s+-\s+-`}, true},
		{[]string{"-empty-cart"}, []string{`: error`, `validate_cart\s+error\s+1\s`, `EMPTY_CART`}, true},
	} {
		var out bytes.Buffer
		db := filepath.Join(t.TempDir(), "orders.db")
		args := append([]string{"-db", db, "-payment-latency", "0", "-inventory-latency", "0"}, c.args...)
		if err := run(context.Background(), args, &out); (err != nil) != c.failed {
			t.Fatalf("run %v: %v, want an error: %v", c.args, err, c.failed)
		}
		for _, w := range c.want {
			if !regexp.MustCompile(w).Match(out.Bytes()) {
				t.Errorf("run %v: output lacks %q:\n%s", c.args, w, out.String())
			}
		}
	}
}
