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
		exampletest.Case{Name: "squares", State: tasker.TaskComplete,
			Results: map[string]string{
				"linear_step_1": `{"operation":"square","operands":[6],"result":36}`,
				"linear_step_2": `{"operation":"square","operands":[36],"result":1296}`,
				"linear_step_3": `{"operation":"square","operands":[1296],"result":1679616}`,
				"linear_step_4": `{"operation":"square","operands":[1679616],"result":2821109907456}`,
			},
			Output: []string{`mathematical_sequence: complete \(stored in sqlite `,
				`(?m)^linear_step_4\s+complete\s+1\s+\d\S*\s+\d\S*\s+\{"operation":"square","operands":\[1679616\],"result":2821109907456\}$`}},
		exampletest.Case{Name: "odd", Args: []string{"-even-number", "7"}, State: tasker.TaskFailed,
			Steps: map[string]tasker.StepState{"linear_step_1": tasker.StepFailed, "linear_step_2": tasker.StepPending,
				"linear_step_3": tasker.StepPending, "linear_step_4": tasker.StepPending},
			Output: []string{`: error \(stored in`, `validation_error \[NOT_EVEN\]: task input even_number must be even, got 7`,
				`(?m)^linear_step_4\s+pending\s+0\s+-\s+-\s*$`}},
		exampletest.Case{Name: "fail", Args: []string{"-fail", "linear_step_3", "-even-number", "4"}, State: tasker.TaskFailed,
			Steps: map[string]tasker.StepState{"linear_step_1": tasker.StepComplete, "linear_step_2": tasker.StepComplete,
				"linear_step_3": tasker.StepFailed, "linear_step_4": tasker.StepPending},
			Results: map[string]string{"linear_step_2": `{"operation":"square","operands":[16],"result":256}`},
			Output:  []string{`permanent_error \[FAILED_ON_PURPOSE\]`}},
	)
}
