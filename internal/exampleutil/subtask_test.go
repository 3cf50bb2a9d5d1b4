package exampleutil

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/gotasker/tasker"
)

const (
	outerYAML = `
name: outer
namespace_name: examples
version: "1.0.0"
steps:
  - {name: call, handler: {callable: outer.call}}
  - {name: after, handler: {callable: outer.after}, dependencies: [call]}
`
	innerYAML = `
name: inner
namespace_name: other
version: "1.0.0"
steps:
  - {name: after, handler: {callable: inner.after}}
`
)

// nested is an Example whose step call starts a task of another template,
// on one worker; both templates have a step named after.
func nested(cfg *tasker.Config) *Example {
	done := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) { return "done", nil })
	return &Example{Name: "nested", TemplateFile: "outer.yaml", TemplateYAML: []byte(outerYAML),
		Subtemplates: []Subtemplate{{File: "inner.yaml", YAML: []byte(innerYAML)}}, Config: cfg,
		Handlers: map[string]tasker.StepHandler{
			"outer.call": tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
				child, err := sc.Subtask(ctx, tasker.SubmitRequest{Namespace: "other", Name: "inner"})
				if err != nil {
					return nil, err
				}
				return child.Step("after").Result, nil
			}),
			"outer.after": done, "inner.after": done,
		}}
}

// TestSubtemplates: the subtemplate's callables get handlers, the
// sub-task is printed after the task, -fail fails the task's own step of
// that name only, and Config reaches the engine.
func TestSubtemplates(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{nil, 0, []string{`(?m)^call\s+complete\s+1\s.*"done"$`,
			`(?m)^after\s+complete\s+1\s.*"done"\n\nsub-task of step call:\ntask \S+ other/inner: complete \(stored in memory\)\n.*\n^after\s+complete\s+1\s`}},
		{[]string{"-fail", "after"}, 1, []string{`(?m)^task \S+ examples/outer: error `, `(?m)^after\s+error\s+1\s`,
			`(?m)^task \S+ other/inner: complete `}},
	} {
		var out bytes.Buffer
		err := nested(&tasker.Config{Workers: 1}).Run(context.Background(), append([]string{"-store", "memory"}, c.args...), &out)
		if code := ExitCode("nested", err, io.Discard); code != c.code {
			t.Errorf("Run %v: exit %d (%v), want %d", c.args, code, err, c.code)
		}
		for _, w := range c.want {
			if !regexp.MustCompile(w).MatchString(out.String()) {
				t.Errorf("Run %v: output lacks %q:\n%s", c.args, w, out.String())
			}
		}
	}
	err := nested(&tasker.Config{Workers: -1}).Run(context.Background(), []string{"-store", "memory"}, io.Discard)
	var usage *UsageError
	if err == nil || errors.As(err, &usage) || !strings.Contains(err.Error(), "Workers must not be negative") {
		t.Errorf("Run with Config.Workers -1 = %v, want the engine's refusal", err)
	}
}
