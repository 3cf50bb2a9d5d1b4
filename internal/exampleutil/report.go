package exampleutil

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gotasker/tasker"
)

// ResultWidth bounds how much of a step's result Report prints.
const ResultWidth = 80

// Report prints the task's outcome, then one line per step (names padded
// to the longest, at least 24 wide) with its state,
// attempts, and the start and end of its latest attempt as offsets from the
// task's start, and the start of its result; a failed attempt's error
// follows its step's line. where says where the task is stored.
func Report(w io.Writer, t *tasker.Task, where string) {
	fmt.Fprintf(w, "task %s %s/%s: %s (stored in %s)\n", t.ID, t.Namespace, t.Name, t.State, where)
	width := 24
	for _, s := range t.Steps {
		width = max(width, len(s.Name))
	}
	fmt.Fprintf(w, "%-*s %-18s %8s %9s %9s  %s\n", width, "step", "state", "attempts", "start", "end", "result")
	for _, s := range t.Steps {
		line := fmt.Sprintf("%-*s %-18s %8d %9s %9s  %s", width, s.Name, s.State, s.Attempts,
			offset(t.StartedAt, s.StartedAt), offset(t.StartedAt, s.FinishedAt), excerpt(string(s.Result), ResultWidth))
		fmt.Fprintln(w, strings.TrimRight(line, " "))
		if s.LastError != nil {
			fmt.Fprintf(w, "  last error (attempt %d): %s [%s]: %s\n", s.LastError.Attempt,
				s.LastError.Type, s.LastError.Code, s.LastError.Message)
		}
	}
}

// offset returns at - from rounded to the microsecond, or "-" when at is
// zero (the step has not started or not ended).
func offset(from, at time.Time) string {
	if at.IsZero() {
		return "-"
	}
	return at.Sub(from).Round(time.Microsecond).String()
}

// excerpt returns s cut to at most n runes, "…" marking a cut.
func excerpt(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
