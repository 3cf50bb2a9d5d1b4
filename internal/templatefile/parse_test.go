package templatefile

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseCycles(t *testing.T) {
	step := func(name string, deps ...string) string {
		return "  - name: " + name + "\n    handler: {callable: c}\n    dependencies: [" + strings.Join(deps, ", ") + "]\n"
	}
	head := "name: t\nnamespace_name: n\nversion: 1.0.0\nsteps:\n"
	tests := []struct {
		name  string
		steps []string
		want  []string // one message per cycle
	}{
		{"two steps", []string{step("a", "b"), step("b", "a")}, []string{"dependency cycle: a -> b -> a"}},
		{"two separate cycles", []string{step("a", "b"), step("b", "a"), step("c"), step("d", "e"), step("e", "d", "c")},
			[]string{"dependency cycle: a -> b -> a", "dependency cycle: d -> e -> d"}},
		// One component with several cycles: the shortest through its first
		// step is reported, once.
		{"shortest of a component", []string{step("a", "d", "b"), step("b", "a"), step("c", "b"), step("d", "c")},
			[]string{"dependency cycle: a -> b -> a"}},
		{"downstream of a cycle", []string{step("x"), step("a", "x", "c"), step("b", "a"), step("c", "b"), step("y", "c")},
			[]string{"dependency cycle: a -> b -> c -> a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, probs := Parse("c.yaml", []byte(head+strings.Join(tt.steps, "")))
			var got []string
			for _, te := range probs {
				got = append(got, te.Msg)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParseLongChain checks that a long chain of steps, acyclic or
// closed into one cycle, neither exhausts the stack nor takes long.
func TestParseLongChain(t *testing.T) {
	const n = 20000
	var b strings.Builder
	b.WriteString("name: t\nnamespace_name: n\nversion: 1.0.0\nsteps:\n  - name: s0\n    handler: {callable: c}\n")
	for i := 1; i < n; i++ {
		b.WriteString("  - name: s" + strconv.Itoa(i) + "\n    handler: {callable: c}\n    dependencies: [s" + strconv.Itoa(i-1) + "]\n")
	}
	f, probs := Parse("chain.yaml", []byte(b.String()))
	if len(probs) > 0 {
		t.Fatal(probs[0])
	}
	for i, s := range f.Steps[1:] {
		if !slices.Equal(s.Deps, []int{i}) || !slices.Equal(f.Steps[i].Dependents, []int{i + 1}) {
			t.Fatalf("step %d: deps %v, dependents of its dependency %v", i+1, s.Deps, f.Steps[i].Dependents)
		}
	}
	closed := strings.Replace(b.String(), "  - name: s0\n    handler: {callable: c}\n",
		"  - name: s0\n    handler: {callable: c}\n    dependencies: [s"+strconv.Itoa(n-1)+"]\n", 1)
	_, got := Parse("chain.yaml", []byte(closed))
	if len(got) != 1 || !strings.HasPrefix(got[0].Msg, "dependency cycle: s0 -> s1 -> s2") ||
		!strings.HasSuffix(got[0].Msg, "-> s19999 -> s0") {
		t.Errorf("got %d problems, want one cycle: %.80v", len(got), got)
	}
}

func TestParseRobustness(t *testing.T) {
	head := "name: t\nnamespace_name: n\nversion: 1.0.0\n"
	oneStep := "steps:\n  - name: s\n    handler: {callable: c}\n"
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 'b', 'a'; i <= 'j'; i, prev = i+1, i {
		bomb += string(i) + ": &" + string(i) + " [" + strings.Repeat("*"+string(prev)+", ", 9) + "*" + string(prev) + "]\n"
	}
	tests := []struct {
		name, src string
		msg       string // in the first problem
	}{
		{"empty", "", "empty file"},
		{"blank", "\n\n  \n", "empty file"},
		{"document marker only", "---\n", "a template must be a mapping, got null"},
		{"scalar", "hello\n", "a template must be a mapping, got a string"},
		{"null", "~\n", "a template must be a mapping, got null"},
		{"syntax error in a second document", head + oneStep + "---\n[\n", "YAML syntax error"},
		{"binary garbage", "\x00\x01\x02", "YAML syntax error"},
		{"deep nesting", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), "exceeded max depth"},
		{"alias bomb", head + oneStep + "input_schema:\n  x: &x\n    " + strings.ReplaceAll(bomb, "\n", "\n    ") + "\n  y: *x\n",
			fmt.Sprintf("more than %d YAML nodes", MaxNodes)},
		{"too big", head + oneStep + "description: \"" + strings.Repeat("x", MaxBytes) + "\"\n", "file too large"},
		{"merge into itself", head + oneStep + "input_schema: &m\n  type: object\n  <<: *m\n", "merge (<<) of a mapping into itself"},
		{"merge of a scalar", head + oneStep + "input_schema:\n  <<: 3\n", "merge (<<) needs a mapping"},
		{"non-scalar key", head + oneStep + "input_schema:\n  ? [a, b]\n  : 1\n", "mapping keys must be scalars"},
		{"infinity", head + "steps:\n  - name: s\n    handler:\n      callable: c\n      initialization: {x: .inf}\n", "not a JSON number"},
		{"custom tag", head + "steps:\n  - name: s\n    handler:\n      callable: c\n      initialization: {x: !thing 1}\n", "unsupported YAML tag !thing"},
		{"steps not a list", head + "steps: {a: 1}\n", "must be a list of steps"},
		{"step not a mapping", head + "steps: [a]\n", "must be a mapping, got a string"},
		{"huge integer", head + oneStep + "    timeout_seconds: 99999999999999999\n", "out of range"},
		{"name not a string", "name: [a]\n", "must be a string, got a list"},
		{"handler not a mapping", head + "steps:\n  - name: s\n    handler: c\n", "must be a mapping, got a string"},
		{"dependencies not a list", head + oneStep + "    dependencies: s\n", "must be a list of step names"},
		{"dependency not a name", head + oneStep + "    dependencies: [{a: 1}]\n", "must be a step name, got a mapping"},
		{"empty dependency", head + oneStep + "    dependencies: [\"\"]\n", `must be a step name, got a string ""`},
		{"retry not a mapping", head + oneStep + "    retry: [1]\n", "must be a mapping, got a list"},
		{"schema not a mapping", head + oneStep + "input_schema: [1]\n", "must be a mapping (a JSON Schema object)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, got := Parse("r.yaml", []byte(tt.src))
			if f != nil || len(got) == 0 {
				t.Fatalf("got %v, %v; want problems", f, got)
			}
			if !strings.Contains(got[0].Msg, tt.msg) {
				t.Errorf("got %.300v\nwant a first problem containing %q", got, tt.msg)
			}
		})
	}
}

func TestParseErrorLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: t\nnamespace_name: n\nversion: 1.0.0\nsteps:\n  - name: s\n    handler: {callable: c}\n    dependencies:\n")
	for i := range 500 {
		b.WriteString("      - missing" + strconv.Itoa(i) + "\n")
	}
	_, got := Parse("many.yaml", []byte(b.String()))
	if len(got) != MaxErrors+1 || got[0].Msg != "too many errors" {
		t.Errorf("got %d problems, first %q; want %d, the first \"too many errors\"", len(got), got[0].Msg, MaxErrors+1)
	}
}
