package exampleutil

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/gotasker/tasker"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const pairYAML = `
name: pair
namespace_name: examples
version: "1.0.0"
steps:
  - name: first
    handler:
      callable: calc
      initialization: {operation: square, operands: [input.even_number]}
  - name: second
    handler:
      callable: calc
      initialization: {operation: add, operand: 1, operands: [first]}
    dependencies: [first]
  - name: total
    handler:
      callable: calc
      initialization: {operation: sum, operands: [first, second]}
    dependencies: [first, second]
  - name: shown
    handler: {callable: show}
    dependencies: [total]
`

// pair is an Example of three Calculator steps, n², n²+1 and their sum,
// and one that formats the sum.
func pair() *Example {
	ex := Arithmetic("pair", []byte(pairYAML))
	ex.Handlers = map[string]tasker.StepHandler{"show": tasker.HandlerFunc(
		func(ctx context.Context, step *tasker.StepContext) (any, error) {
			var v Value
			err := step.DependencyResult("total", &v)
			return fmt.Sprintf("total=%d", v.Result), err
		})}
	ex.Summary = func(w io.Writer, t *tasker.Task) { io.WriteString(w, "summary of "+string(t.State)+"\n") }
	return ex
}

func TestRunInMemory(t *testing.T) {
	for _, c := range []struct {
		args    []string
		wantErr bool
		want    []string
	}{
		{[]string{"-store", "memory"}, false, []string{`examples/pair: complete \(stored in memory\)`,
			`(?m)^second\s+complete\s+1\s+\S+\s+\S+  \{"operation":"add 1","operands":\[36\],"result":37\}$`,
			`"operation":"sum","operands":\[36,37\],"result":73`, `(?m)^shown\s+complete\s+1\s.*"total=73"$`, `(?m)^summary of complete$`}},
		{[]string{"-store", "memory", "-fail", "second"}, true, []string{`: error \(stored in memory\)`,
			`(?m)^second\s+error\s+1\s`, `last error \(attempt 1\): permanent_error \[FAILED_ON_PURPOSE\]`,
			`(?m)^total\s+pending\s+0\s+-\s+-$`, `summary of error`}},
		{[]string{"-store", "memory", "-even-number", "3037000500"}, true, []string{
			`validation_error \[OVERFLOW\]: square of \[3037000500\] overflows int64`}},
		{nil, false, []string{`stored in sqlite \S+, a temporary file removed on exit`}},
	} {
		var out bytes.Buffer
		err := pair().Run(context.Background(), c.args, &out)
		var inc *IncompleteError
		if c.wantErr != errors.As(err, &inc) || !c.wantErr && err != nil {
			t.Errorf("Run %v = %v, want an *IncompleteError: %v", c.args, err, c.wantErr)
		}
		for _, w := range c.want {
			if !regexp.MustCompile(w).MatchString(out.String()) {
				t.Errorf("Run %v: output lacks %q:\n%s", c.args, w, out.String())
			}
		}
		if code := ExitCode("pair", err, io.Discard); code != map[bool]int{false: 0, true: 1}[c.wantErr] {
			t.Errorf("Run %v: exit code %d", c.args, code)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-store", "disk"}, 2, "pair: -store must be memory or sqlite, not \"disk\"\n"},
		{[]string{"-store", "memory", "-db", "x.db"}, 2, "pair: -db needs -store sqlite\n"},
		{[]string{"-fail", "third"}, 2, "pair: -fail \"third\": the template has no such step\n"},
		{[]string{"extra"}, 2, "pair: unexpected arguments [\"extra\"]\n"},
		{[]string{"-no-such-flag"}, 2, "pair: flag provided but not defined: -no-such-flag\n"},
		{[]string{"-help"}, 0, ""},
	} {
		var out, stderr bytes.Buffer
		err := pair().Run(context.Background(), c.args, &out)
		if code := ExitCode("pair", err, &stderr); code != c.code || stderr.String() != c.want {
			t.Errorf("Run %v: exit %d, stderr %q; want %d, %q", c.args, code, stderr.String(), c.code, c.want)
		}
		if c.code == 0 && !strings.Contains(out.String(), "-even-number") {
			t.Errorf("-help printed no usage:\n%s", out.String())
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
	}{
		{nil, 0}, {flag.ErrHelp, 0}, {&UsageError{Err: errors.New("bad")}, 2},
		{&IncompleteError{TaskID: "t1", State: tasker.TaskFailed}, 1}, {errors.New("store broke"), 1},
	} {
		var stderr bytes.Buffer
		if got := ExitCode("x", c.err, &stderr); got != c.code {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.code)
		}
		if c.code != 0 && stderr.String() != "x: "+c.err.Error()+"\n" {
			t.Errorf("ExitCode(%v) printed %q", c.err, stderr.String())
		}
	}
}

func TestBadInitialization(t *testing.T) {
	ex := Arithmetic("pair", []byte(strings.Replace(pairYAML, "operation: sum", "operation: divide", 1)))
	ex.Handlers = map[string]tasker.StepHandler{"show": Calculator()}
	var out bytes.Buffer
	err := ex.Run(context.Background(), []string{"-store", "memory"}, &out)
	for _, w := range []string{`(?m)^second\s+complete\s`,
		`(?m)^total\s+error\s+1\s`, `permanent_error \[BAD_INITIALIZATION\]: step total: unknown operation "divide"`} {
		if !regexp.MustCompile(w).MatchString(out.String()) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	if ExitCode("pair", err, io.Discard) != 1 {
		t.Errorf("Run = %v, want a failed task", err)
	}
}

func TestOverflowChecks(t *testing.T) {
	const maxInt = 1<<63 - 1
	for _, c := range []struct {
		op   Op
		xs   []int64
		want int64
		ok   bool
	}{
		{Square(), []int64{-3037000499}, 9223372030926249001, true},
		{Square(), []int64{3037000500}, 0, false},
		{Add(1), []int64{maxInt}, 0, false},
		{Add(-1), []int64{-maxInt - 1}, 0, false},
		{Add(-5), []int64{3}, -2, true},
		{Mul(-1), []int64{-maxInt - 1}, 0, false},
		{Mul(0), []int64{maxInt}, 0, true},
		{Sum(), []int64{maxInt, 1}, 0, false},
		{Sum(), []int64{1, 2, 3}, 6, true},
	} {
		got, ok := c.op.Apply(c.xs)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("%s %v = %d, %v; want %d, %v", c.op.Name, c.xs, got, ok, c.want, c.ok)
		}
	}
}
