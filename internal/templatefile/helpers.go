package templatefile

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// alias returns the key of m to read: key, or its alias when only that is
// given. Both given is reported.
func (p *parser) alias(m *yamlMapping, key, alias string) string {
	k, a := m.vals[key], m.vals[alias]
	switch {
	case k != nil && a != nil:
		p.errorf(a, m.field(alias), "is an alias of %s: give one of them, not both", key)
	case a != nil:
		return alias
	}
	return key
}

// enum returns the string at key, def when absent, reporting a value that
// is not one of allowed.
func (p *parser) enum(m *yamlMapping, key, def string, allowed ...string) string {
	s, n := p.str(m, key, false)
	if n == nil {
		return def
	}
	if !slices.Contains(allowed, s) {
		p.errorf(n, m.field(key), "must be one of %s, got %q", strings.Join(allowed, ", "), s)
		return def
	}
	return s
}

// strList returns the list of strings at key; nil when absent or malformed.
func (p *parser) strList(m *yamlMapping, key string) []string {
	n := m.value(key)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, m.field(key), "must be a list of strings, got %s", describeNode(n))
		return nil
	}
	var out []string
	for i, item := range p.items(n) {
		if item.Kind != yaml.ScalarNode || item.ShortTag() != "!!str" {
			p.errorf(item, fmt.Sprintf("%s[%d]", m.field(key), i), "must be a string, got %s", describeNode(item))
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

// intRange returns the integer at key, def when absent or malformed,
// reporting a value outside lo..hi.
func (p *parser) intRange(m *yamlMapping, key string, def, lo, hi int) int {
	v, ok := p.integer(m, key)
	if !ok {
		return def
	}
	if v < int64(lo) || v > int64(hi) {
		p.errorf(m.vals[key], m.field(key), "must be between %d and %d, got %d", lo, hi, v)
		return def
	}
	return int(v)
}

// minutes returns the positive number of minutes at key as a duration; 0
// when absent or malformed.
func (p *parser) minutes(m *yamlMapping, key string) time.Duration {
	d, ok := p.duration(m, key, time.Minute)
	if ok && d <= 0 {
		p.errorf(m.vals[key], m.field(key), "must be positive, got %d", d/time.Minute)
		return 0
	}
	return d
}

// timestamp returns the RFC 3339 timestamp at key; zero when absent or
// malformed.
func (p *parser) timestamp(m *yamlMapping, key string) time.Time {
	n := m.value(key)
	if n == nil {
		return time.Time{}
	}
	tag := n.ShortTag()
	t, err := time.Parse(time.RFC3339, n.Value)
	if n.Kind != yaml.ScalarNode || (tag != "!!str" && tag != "!!timestamp") || err != nil {
		p.errorf(n, m.field(key), "must be an RFC 3339 timestamp such as 2024-01-15T10:00:00Z, got %s", describeNodeValue(n))
		return time.Time{}
	}
	return t
}

// list returns the items of the list at key, reporting a value that is not
// a list; nil when absent.
func (p *parser) list(m *yamlMapping, key, what string) []*yaml.Node {
	n := m.value(key)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, m.field(key), "must be a list of %s, got %s", what, describeNode(n))
		return nil
	}
	return p.items(n)
}

// block returns the mapping at key, nil when absent or malformed.
func (p *parser) block(m *yamlMapping, key string, allowed []string) *yamlMapping {
	n := m.value(key)
	if n == nil {
		return nil
	}
	return p.mapping(n, m.field(key), allowed)
}

// warnLegacy warns of each legacy field of the given kind in m: Tasker
// accepts and ignores it, and so do we.
func (p *parser) warnLegacy(m *yamlMapping, kind string) {
	for key, reads := range legacyFields[kind] {
		if n := m.keys[key]; n != nil {
			p.warnf(n, m.field(key), "ignored, as Tasker ignores it: Tasker reads %s", reads)
		}
	}
}
