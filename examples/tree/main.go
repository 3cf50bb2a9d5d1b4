// Command tree runs Tasker's tree workflow once: a root, two branches with
// two leaves each, all converging on a final step (6 → 36 → (46 → 92 ‖ 51)
// ‖ (108 → 216 ‖ 113) → 472), and prints the outcome and each step's timing.
// Every step is an exampleutil.Calculator: its operation and operands are
// its handler.initialization in template.yaml:
//
//	go run ./examples/tree
//	go run ./examples/tree -store memory
//	go run ./examples/tree -fail tree_branch_right   # fails for good
package main

import (
	"context"
	_ "embed"
	"io"

	"github.com/gotasker/tasker/internal/exampleutil"
)

//go:embed template.yaml
var templateYAML []byte

func main() { exampleutil.Main("tree", run) }

func run(ctx context.Context, args []string, out io.Writer) error {
	return exampleutil.Arithmetic("tree", templateYAML).Run(ctx, args, out)
}
