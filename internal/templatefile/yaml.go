package templatefile

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// parser walks the YAML node tree of one template file and collects every
// problem it finds as a *Problem.
type parser struct {
	file      string
	errs      []*Problem
	warns     []*Problem
	nodes     int                 // YAML nodes visited, aliases expanded
	exhausted bool                // nodes passed MaxNodes
	active    map[*yaml.Node]bool // containers being expanded, to stop alias loops
}

func newParser(file string) *parser {
	return &parser{file: file, active: make(map[*yaml.Node]bool)}
}

// errorf records a problem at n (its line; 0 when n is nil) and field. After
// MaxErrors problems it records "too many errors" and then nothing.
func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) {
	if len(p.errs) > MaxErrors {
		return
	}
	if len(p.errs) == MaxErrors {
		p.errs = append(p.errs, &Problem{File: p.file, Msg: "too many errors"})
		return
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Problem{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// warnf records a warning at n and field.
func (p *parser) warnf(n *yaml.Node, field, format string, args ...any) {
	p.warns = append(p.warns, &Problem{File: p.file, Line: n.Line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// problems returns the problems found, in line order. Once the node budget
// is spent only that is reported: later problems would be artefacts.
func (p *parser) problems() []*Problem {
	if p.exhausted {
		return []*Problem{{File: p.file, Msg: fmt.Sprintf(
			"template too large: more than %d YAML nodes, aliases expanded", MaxNodes)}}
	}
	slices.SortStableFunc(p.errs, func(a, b *Problem) int { return cmp.Compare(a.Line, b.Line) })
	return p.errs
}

// visit follows an alias and counts the node against the budget; it returns
// nil once the budget is spent.
func (p *parser) visit(n *yaml.Node) *yaml.Node {
	if p.nodes++; p.nodes > MaxNodes {
		p.exhausted = true
		return nil
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

var yamlErrPattern = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// yamlParserProblems are the messages of yaml.v3's parser errors, as opposed
// to its scanner errors. yaml.v3 v3.0.1 reports the line of a parser error
// 0-based, and of a scanner error 1-based.
var yamlParserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// yamlError reports a YAML syntax error, on its line when it names one.
func (p *parser) yamlError(err error) {
	msg := err.Error()
	line := 0
	if m := yamlErrPattern.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.Contains(yamlParserProblems, msg) {
			line++
		}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	p.errs = append(p.errs, &Problem{File: p.file, Line: line, Msg: "YAML syntax error: " + msg})
}

// yamlMapping is a YAML mapping read by parser.mapping: its known
// fields by key.
type yamlMapping struct {
	node *yaml.Node
	path string                // field path of the mapping; "" at the top
	vals map[string]*yaml.Node // values, aliases followed
	keys map[string]*yaml.Node // the key nodes of vals
}

// field returns the field path of key in m.
func (m *yamlMapping) field(key string) string { return joinField(m.path, key) }

// yamlPair is one key and value of a YAML mapping, aliases followed.
type yamlPair struct{ key, val *yaml.Node }

// pairs returns the entries of mapping n in order, merge keys (<<) expanded,
// reporting keys that are not scalars or that repeat.
func (p *parser) pairs(n *yaml.Node, path string) []yamlPair {
	var (
		out    []yamlPair
		merges []*yaml.Node
		seen   = make(map[string]int) // key → line of its first use
	)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := p.visit(n.Content[i]), p.visit(n.Content[i+1])
		if k == nil || v == nil {
			break
		}
		switch {
		case k.ShortTag() == "!!merge":
			merges = append(merges, v)
		case k.Kind != yaml.ScalarNode:
			p.errorf(k, path, "mapping keys must be scalars, got %s", describeNode(k))
		case seen[k.Value] > 0:
			p.errorf(k, joinField(path, k.Value), "duplicate key (first at line %d)", seen[k.Value])
		default:
			seen[k.Value] = max(k.Line, 1)
			out = append(out, yamlPair{k, v})
		}
	}
	for _, m := range merges {
		out = p.merge(out, seen, n, m, path)
	}
	return out
}

// merge adds to out the entries that the merge value m (a mapping or a list
// of mappings) gives the mapping n, unless n already has their keys.
func (p *parser) merge(out []yamlPair, seen map[string]int, n, m *yaml.Node, path string) []yamlPair {
	srcs := []*yaml.Node{m}
	if m.Kind == yaml.SequenceNode {
		srcs = p.items(m)
	}
	for _, src := range srcs {
		if src.Kind != yaml.MappingNode {
			p.errorf(src, path, "merge (<<) needs a mapping or a list of mappings, got %s", describeNode(src))
			continue
		}
		if src == n || p.active[src] {
			p.errorf(src, path, "merge (<<) of a mapping into itself")
			continue
		}
		p.active[src] = true
		for _, kv := range p.pairs(src, path) {
			if seen[kv.key.Value] == 0 {
				seen[kv.key.Value] = max(kv.key.Line, 1)
				out = append(out, kv)
			}
		}
		delete(p.active, src)
	}
	return out
}

// items returns the entries of sequence n, aliases followed.
func (p *parser) items(n *yaml.Node) []*yaml.Node {
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, c := range n.Content {
		if c = p.visit(c); c == nil {
			break
		}
		out = append(out, c)
	}
	return out
}

// toJSON converts the YAML value n at path to JSON, reporting what JSON
// cannot represent.
func (p *parser) toJSON(n *yaml.Node, path string) (json.RawMessage, bool) {
	v, ok := p.jsonValue(n, path)
	if !ok {
		return nil, false
	}
	b, err := MarshalJSON(v)
	if err != nil {
		p.errorf(n, path, "cannot convert to JSON: %v", err)
		return nil, false
	}
	return b, true
}

// MarshalJSON encodes v as JSON without escaping HTML characters (<, >, &)
// and without a trailing newline. json.Marshal's output is kept when it has
// no \u00 escape at all, the usual case and one allocation; otherwise v is
// encoded again without HTML escaping.
func MarshalJSON(v any) (json.RawMessage, error) {
	if out, err := json.Marshal(v); err != nil || !bytes.Contains(out, []byte(`\u00`)) {
		return out, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// jsonValue converts n, whose aliases are already followed, to a value that
// encoding/json can marshal.
func (p *parser) jsonValue(n *yaml.Node, path string) (any, bool) {
	if n.Kind == yaml.ScalarNode {
		return p.jsonScalar(n, path)
	}
	if p.active[n] {
		p.errorf(n, path, "alias refers to a value that contains it")
		return nil, false
	}
	p.active[n] = true
	defer delete(p.active, n)
	switch n.Kind {
	case yaml.MappingNode:
		obj := make(map[string]any, len(n.Content)/2)
		for _, kv := range p.pairs(n, path) {
			v, ok := p.jsonValue(kv.val, joinField(path, kv.key.Value))
			if !ok {
				return nil, false
			}
			obj[kv.key.Value] = v
		}
		return obj, !p.exhausted
	case yaml.SequenceNode:
		arr := make([]any, 0, len(n.Content))
		for i, item := range p.items(n) {
			v, ok := p.jsonValue(item, fmt.Sprintf("%s[%d]", path, i))
			if !ok {
				return nil, false
			}
			arr = append(arr, v)
		}
		return arr, !p.exhausted
	}
	p.errorf(n, path, "unsupported YAML node")
	return nil, false
}

// jsonScalar converts a YAML scalar to a JSON string, number, boolean or null.
func (p *parser) jsonScalar(n *yaml.Node, path string) (any, bool) {
	switch n.ShortTag() {
	case "!!str", "!!timestamp", "!!binary":
		return n.Value, true
	case "!!null":
		return nil, true
	case "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			p.errorf(n, path, "%s is not a valid %s", n.Value, describeNode(n))
			return nil, false
		}
		if f, ok := v.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
			p.errorf(n, path, "%s is not a JSON number", n.Value)
			return nil, false
		}
		return v, true
	}
	p.errorf(n, path, "unsupported YAML tag %s", n.Tag)
	return nil, false
}

// describeNode names the kind of a YAML value for messages: "a mapping", "null"…
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return "null"
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	default:
		return tag
	}
}

// describeNodeValue is describeNode, with the value of a scalar.
func describeNodeValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !isNullNode(n) {
		return fmt.Sprintf("%s %q", describeNode(n), n.Value)
	}
	return describeNode(n)
}

func isNullNode(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// joinField appends key to the field path path.
func joinField(path, key string) string {
	if path == "" {
		return quoteFieldKey(key)
	}
	return path + "." + quoteFieldKey(key)
}

// quoteFieldKey renders a mapping key for a field path, quoting odd ones.
func quoteFieldKey(key string) string {
	if key == "" || strings.ContainsAny(key, ".[] \t\n\"") {
		return fmt.Sprintf("%q", key)
	}
	return key
}
