// Command diamond runs Tasker's diamond workflow once: a start step, two
// branches in parallel, and an end step that combines them (6 → 36 →
// (61 ‖ 72) → 133), and prints the outcome and each step's timing.
// Every step is an exampleutil.Calculator: its operation and operands are
// its handler.initialization in template.yaml:
//
//	go run ./examples/diamond
//	go run ./examples/diamond -store memory -even-number 10
//	go run ./examples/diamond -fail diamond_branch_c   # fails for good
package main

import (
	"context"
	_ "embed"
	"io"

	"github.com/gotasker/tasker/internal/exampleutil"
)

//go:embed template.yaml
var templateYAML []byte

func main() { exampleutil.Main("diamond", run) }

func run(ctx context.Context, args []string, out io.Writer) error {
	return exampleutil.Arithmetic("diamond", templateYAML).Run(ctx, args, out)
}
