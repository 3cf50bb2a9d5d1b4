// Command mixed_dag runs Tasker's mixed DAG workflow once: seven steps of
// fan-out and fan-in, where validate joins both paths while transform and
// analyze each follow one (6 → 36 → 46 ‖ 108 → 154 ‖ 92 ‖ 113 → 359), and
// prints the outcome and each step's timing.
// Every step is an exampleutil.Calculator: its operation and operands are
// its handler.initialization in template.yaml:
//
//	go run ./examples/mixed_dag
//	go run ./examples/mixed_dag -store memory -even-number 8
//	go run ./examples/mixed_dag -fail dag_analyze   # fails for good
package main

import (
	"context"
	_ "embed"
	"io"

	"github.com/gotasker/tasker/internal/exampleutil"
)

//go:embed template.yaml
var templateYAML []byte

func main() { exampleutil.Main("mixed_dag", run) }

func run(ctx context.Context, args []string, out io.Writer) error {
	return exampleutil.Arithmetic("mixed_dag", templateYAML).Run(ctx, args, out)
}
