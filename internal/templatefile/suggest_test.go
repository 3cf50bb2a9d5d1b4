package templatefile

import "testing"

func TestClosest(t *testing.T) {
	fields := []string{"name", "description", "handler", "dependencies", "depends_on", "retry", "timeout_seconds"}
	for _, tt := range []struct{ word, want string }{
		{"dependancies", "dependencies"},
		{"dependencys", "dependencies"},
		{"handlr", "handler"},
		{"retries", ""},
		{"retyr", "retry"},
		{"nmae", "name"},
		{"timeout", ""},
		{"namespace", ""},
		{"x", ""},
	} {
		if got := closest(tt.word, fields); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"kitten", "sitting", 3}, {"same", "same", 0}, {"ab", "ba", 1}, {"nmae", "name", 1},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
