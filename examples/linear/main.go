// Command linear runs Tasker's linear workflow once: four steps in a chain,
// each squaring the result of the one before (6 → 36 → 1296 → 1679616 →
// 2821109907456), and prints the outcome and each step's timing.
// Every step is an exampleutil.Calculator: its operation and operands are
// its handler.initialization in template.yaml:
//
//	go run ./examples/linear
//	go run ./examples/linear -even-number 4 -store memory
//	go run ./examples/linear -even-number 7          # fails: not even
//	go run ./examples/linear -fail linear_step_3     # fails for good
package main

import (
	"context"
	_ "embed"
	"io"

	"github.com/gotasker/tasker/internal/exampleutil"
)

//go:embed template.yaml
var templateYAML []byte

func main() { exampleutil.Main("linear", run) }

func run(ctx context.Context, args []string, out io.Writer) error {
	return exampleutil.Arithmetic("linear", templateYAML).Run(ctx, args, out)
}
