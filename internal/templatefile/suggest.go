package templatefile

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// unknownField reports the key k, which is not one of allowed, suggesting
// the closest allowed field when it is close enough to be a typo.
func (p *parser) unknownField(k *yaml.Node, field string, allowed []string) {
	if s := closest(k.Value, allowed); s != "" {
		p.errorf(k, field, "unknown field %q (did you mean %q?)", k.Value, s)
		return
	}
	p.errorf(k, field, "unknown field %q (want one of %s)", k.Value, strings.Join(allowed, ", "))
}

// closest returns the word of words nearest to w by edit distance, if at
// most a third of w's length (and at least 1) away; otherwise "". Ties go
// to the first word. A word longer than 64 bytes is no typo of a field name:
// it gets no suggestion, and costs no time.
func closest(w string, words []string) string {
	if len(w) > 64 {
		return ""
	}
	best, bestDist := "", max(len(w)/3, 1)+1
	for _, c := range words {
		if d := editDistance(w, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b,
// in bytes: insertions, deletions, substitutions and transpositions of
// adjacent bytes each count 1.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
