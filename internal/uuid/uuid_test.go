package uuid

import (
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
	"time"
)

var v7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewV7Format(t *testing.T) {
	now := time.Now()
	for range 1000 {
		if id := NewV7(now); !v7.MatchString(id) {
			t.Fatalf("NewV7 = %q, want 8-4-4-4-12 lowercase hex, version 7, variant 10", id)
		}
	}
}

func TestNewV7Timestamp(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 34, 56, 789_654_321, time.UTC)
	id := NewV7(now)
	b, err := hex.DecodeString(strings.ReplaceAll(id, "-", "")[:12])
	if err != nil {
		t.Fatalf("NewV7 = %q: %v", id, err)
	}
	var ms int64
	for _, c := range b {
		ms = ms<<8 | int64(c)
	}
	if want := now.UnixMilli(); ms != want {
		t.Errorf("NewV7(%v) = %q holds %d ms, want %d", now, id, ms, want)
	}
}

func TestNewV7OrderedAcrossMilliseconds(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := NewV7(t0)
	for i := 1; i <= 2000; i++ {
		// Random bits below the millisecond must not break the order, even
		// between neighbouring milliseconds and across byte carries.
		at := t0.Add(time.Duration(i) * time.Millisecond)
		id := NewV7(at)
		if id <= prev {
			t.Fatalf("NewV7(%v) = %q, not after %q of the millisecond before", at, id, prev)
		}
		prev = id
	}
}

func TestNewV7Unique(t *testing.T) {
	now := time.Now() // one millisecond: only the random bits tell them apart
	seen := make(map[string]bool, 10000)
	for range 10000 {
		id := NewV7(now)
		if seen[id] {
			t.Fatalf("NewV7 returned %q twice", id)
		}
		seen[id] = true
	}
}
