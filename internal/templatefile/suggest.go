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
// to the first word.
func closest(w string, words []string) string {
	best, bestDist := "", max(len(w)/3, 1)+1
	for _, c := range words {
		if d := editDistance(w, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
