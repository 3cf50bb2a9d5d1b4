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
		exampletest.Case{Name: "converges", State: tasker.TaskComplete,
			Results: map[string]string{
				"tree_root":              `{"operation":"square","operands":[6],"result":36}`,
				"tree_branch_left":       `{"operation":"add 10","operands":[36],"result":46}`,
				"tree_branch_right":      `{"operation":"multiply by 3","operands":[36],"result":108}`,
				"tree_leaf_d":            `{"operation":"multiply by 2","operands":[46],"result":92}`,
				"tree_leaf_e":            `{"operation":"add 5","operands":[46],"result":51}`,
				"tree_leaf_f":            `{"operation":"multiply by 2","operands":[108],"result":216}`,
				"tree_leaf_g":            `{"operation":"add 5","operands":[108],"result":113}`,
				"tree_final_convergence": `{"operation":"sum","operands":[92,51,216,113],"result":472}`,
			},
			Output: []string{`hierarchical_tree: complete`, `(?m)^tree_final_convergence\s+complete\s+1\s.*"result":472\}$`}},
		exampletest.Case{Name: "branch fails", Args: []string{"-fail", "tree_branch_right"}, State: tasker.TaskFailed,
			// What runs beside the failed branch depends on timing: it is not checked.
			Steps: map[string]tasker.StepState{"tree_root": tasker.StepComplete, "tree_branch_right": tasker.StepFailed,
				"tree_leaf_f": tasker.StepPending, "tree_leaf_g": tasker.StepPending, "tree_final_convergence": tasker.StepPending},
			Output: []string{`hierarchical_tree: error`, `(?m)^tree_leaf_g\s+pending\s+0\s+-\s+-$`}},
	)
}
