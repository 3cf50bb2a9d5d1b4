package tasker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
)

// wideRun returns the run of a fresh task of a fan-out: roots steps with
// no dependency, then width steps after the first root.
func wideRun(t *testing.T, roots, width int) *run {
	t.Helper()
	var b strings.Builder
	b.WriteString("name: w\nnamespace_name: t\nversion: \"1.0.0\"\nsteps:\n")
	for i := range roots {
		fmt.Fprintf(&b, "  - {name: r%d, handler: {callable: t.h}}\n", i)
	}
	for i := range width {
		fmt.Fprintf(&b, "  - {name: s%d, handler: {callable: t.h}, dependencies: [r0]}\n", i)
	}
	tmpl, err := ParseTemplate("w.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	rec := &store.Task{ID: "task", Namespace: "t", Name: "w", Version: "1.0.0", State: string(TaskPending)}
	r := newRun(context.Background(), rec, tmpl)
	t.Cleanup(func() { r.cancel(nil) })
	return r
}

// claims returns the steps of ws claimed in the turn's write, in order,
// and checks that each appears in writes as a claim.
func claims(t *testing.T, ws []work, writes []store.Change) []string {
	t.Helper()
	claimed := make(map[string]bool)
	for _, ch := range writes {
		if ch.Step != "" && ch.To == string(StepInProgress) {
			claimed[ch.Step] = true
		}
	}
	var out []string
	for _, w := range ws {
		if w.claimed == nil {
			continue
		}
		name := w.r.spec(w.step).Name
		if !claimed[name] {
			t.Errorf("work for %s is marked claimed, but the write holds no claim of it", name)
		}
		out = append(out, name)
	}
	if len(out) != len(claimed) {
		t.Errorf("the write claims %d steps, the work %d", len(claimed), len(out))
	}
	return out
}

// TestBeginClaimsAheadForIdleWorkers: a task's beginning claims its first
// root for its own worker and up to spare more for idle workers, in the
// same write; the rest stay unclaimed, for the workers that take them.
func TestBeginClaimsAheadForIdleWorkers(t *testing.T) {
	for _, tc := range []struct{ spare, want int }{{0, 1}, {2, 3}, {10, 4}} {
		r := wideRun(t, 4, 0)
		r.startTurn()
		eff := r.begin(time.Now(), nil, tc.spare)
		if got := claims(t, eff.work, eff.writes); len(got) != tc.want {
			t.Errorf("spare %d: claimed %v, want %d roots", tc.spare, got, tc.want)
		}
		if len(eff.work) != 4 {
			t.Errorf("spare %d: %d roots ready, want 4", tc.spare, len(eff.work))
		}
		if r.inflight != 1+4 {
			t.Errorf("spare %d: %d turns in flight, want the beginning and the 4 roots", tc.spare, r.inflight)
		}
	}
}

// TestOutcomeClaimsAheadForIdleWorkers: a completion that makes many
// dependents ready claims, in its own write, the one its worker goes on
// with and up to spare more, each of those a turn of its own; the others
// wait for the write to be durable, unclaimed.
func TestOutcomeClaimsAheadForIdleWorkers(t *testing.T) {
	const width = 6
	for _, tc := range []struct{ spare, want int }{{0, 1}, {3, 4}, {10, width}} {
		r := wideRun(t, 1, width)
		r.startTurn()
		begun := r.begin(time.Now(), nil, 0)
		claim := *begun.work[0].claimed
		turns := r.inflight
		eff := r.outcome(0, claim, outcome{result: []byte(`{}`)}, time.Now(), nil, tc.spare)
		got := claims(t, eff.work, eff.writes)
		if len(got) != tc.want {
			t.Errorf("spare %d: claimed %v, want %d dependents", tc.spare, got, tc.want)
		}
		if eff.writes[0].Step != "r0" || eff.writes[0].To != string(StepComplete) {
			t.Errorf("spare %d: the write starts with %+v, want r0's completion", tc.spare, eff.writes[0])
		}
		if eff.settle {
			t.Errorf("spare %d: the turn settles, want it to go on with the first claim", tc.spare)
		}
		// The first claim takes over the outcome's turn; each other is new.
		if r.inflight != turns+tc.want-1 {
			t.Errorf("spare %d: %d turns in flight, want %d", tc.spare, r.inflight, turns+tc.want-1)
		}
		// The dependents claimed ahead are not released again once the
		// write is durable; the others are, unclaimed.
		more, _ := r.stored(eff.release, eff.settle, nil, time.Now())
		if len(more) != width-tc.want {
			t.Errorf("spare %d: %d dependents released once durable, want %d", tc.spare, len(more), width-tc.want)
		}
		for _, w := range more {
			if w.claimed != nil {
				t.Errorf("spare %d: %s released claimed", tc.spare, w.r.spec(w.step).Name)
			}
		}
	}
}
