package main

import (
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/exampleutil/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	exampletest.Check(t, run, templateYAML,
		exampletest.Case{Name: "combines", State: tasker.TaskComplete,
			Results: map[string]string{
				"diamond_start":    `{"operation":"square","operands":[6],"result":36}`,
				"diamond_branch_b": `{"operation":"add 25","operands":[36],"result":61}`,
				"diamond_branch_c": `{"operation":"multiply by 2","operands":[36],"result":72}`,
				"diamond_end":      `{"operation":"sum","operands":[61,72],"result":133}`,
			},
			Output: []string{`parallel_computation: complete`, `(?m)^diamond_end\s+complete\s+1\s.*"result":133\}$`}},
		exampletest.Case{Name: "branch fails", Args: []string{"-fail", "diamond_branch_c", "-even-number", "2"},
			State: tasker.TaskFailed,
			// Whether the sibling branch ran depends on timing: it is not checked.
			Steps: map[string]tasker.StepState{"diamond_start": tasker.StepComplete,
				"diamond_branch_c": tasker.StepFailed, "diamond_end": tasker.StepPending},
			Results: map[string]string{"diamond_start": `{"operation":"square","operands":[2],"result":4}`},
			Output:  []string{`parallel_computation: error`, `(?m)^diamond_branch_c\s+error\s+1\s`, `FAILED_ON_PURPOSE`}},
	)
}
