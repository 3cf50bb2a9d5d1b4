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
		exampletest.Case{Name: "fans out and in", State: tasker.TaskComplete, Args: []string{"-even-number", "8"},
			Results: map[string]string{
				"dag_init":          `{"operation":"square","operands":[8],"result":64}`,
				"dag_process_left":  `{"operation":"add 10","operands":[64],"result":74}`,
				"dag_process_right": `{"operation":"multiply by 3","operands":[64],"result":192}`,
				"dag_validate":      `{"operation":"sum","operands":[74,192],"result":266}`,
				"dag_transform":     `{"operation":"multiply by 2","operands":[74],"result":148}`,
				"dag_analyze":       `{"operation":"add 5","operands":[192],"result":197}`,
				"dag_finalize":      `{"operation":"sum","operands":[266,148,197],"result":611}`,
			},
			Output: []string{`complex_dag: complete`, `(?m)^dag_finalize\s+complete\s+1\s.*"result":611\}$`}},
		exampletest.Case{Name: "join fails", Args: []string{"-fail", "dag_validate", "-store", "sqlite"}, State: tasker.TaskFailed,
			Steps: map[string]tasker.StepState{"dag_process_left": tasker.StepComplete, "dag_process_right": tasker.StepComplete,
				"dag_validate": tasker.StepFailed, "dag_finalize": tasker.StepPending},
			Output: []string{`complex_dag: error`, `(?m)^dag_validate\s+error\s+1\s`, `(?m)^dag_finalize\s+pending\s+0\s+-\s+-$`}},
	)
}
