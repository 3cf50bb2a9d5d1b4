package exampleutil

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gotasker/tasker"
)

// FromInput, as a source of a Calculation, names the task input's even_number.
const FromInput = "input.even_number"

// EvenNumberFlag declares -even-number on fs, the input of the arithmetic
// workflows (linear, diamond, tree, mixed_dag), and returns the function
// that builds the task input {"even_number": n}.
func EvenNumberFlag(fs *flag.FlagSet) func() (any, error) {
	n := fs.Int64("even-number", 6, "the task input's even_number (an odd one fails the first step)")
	return func() (any, error) { return map[string]int64{"even_number": *n}, nil }
}

// Value is the result of a Calculator step: the operation, its operands in
// the order of the step's sources, and the result.
type Value struct {
	Operation string  `json:"operation"`
	Operands  []int64 `json:"operands"`
	Result    int64   `json:"result"`
}

// Op is an arithmetic operation on a step's operands.
type Op struct {
	// Name describes the operation, such as "square" or "add 25".
	Name string
	// Apply computes the result; false means it overflows int64.
	Apply func(xs []int64) (int64, bool)
}

// Square is x², of the first operand.
func Square() Op {
	return Op{Name: "square", Apply: func(xs []int64) (int64, bool) { return mul(xs[0], xs[0]) }}
}

// Add is x + k, of the first operand.
func Add(k int64) Op {
	return Op{Name: "add " + strconv.FormatInt(k, 10), Apply: func(xs []int64) (int64, bool) { return add(xs[0], k) }}
}

// Mul is x × k, of the first operand.
func Mul(k int64) Op {
	return Op{Name: "multiply by " + strconv.FormatInt(k, 10), Apply: func(xs []int64) (int64, bool) { return mul(xs[0], k) }}
}

// Sum is the sum of all the operands.
func Sum() Op {
	return Op{Name: "sum", Apply: func(xs []int64) (int64, bool) {
		var s int64
		for _, x := range xs {
			var ok bool
			if s, ok = add(s, x); !ok {
				return 0, false
			}
		}
		return s, true
	}}
}

func add(a, b int64) (int64, bool) {
	s := a + b
	return s, (s > a) == (b > 0)
}

func mul(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	p := a * b
	return p, p/b == a && !(a == -1 && b == math.MinInt64) && !(b == -1 && a == math.MinInt64)
}

// Calculation is the handler.initialization of a Calculator step: the
// operation, its constant operand (for add and multiply), and where its
// operands come from, in order: FromInput (the task input's even_number,
// which must be even, as Tasker's examples require) or the name of an
// upstream Calculator step (its Value's result). For example:
//
//	initialization: {operation: add, operand: 25, operands: [diamond_start]}
type Calculation struct {
	Operation string   `json:"operation"` // square, add, multiply or sum
	Operand   int64    `json:"operand"`
	Operands  []string `json:"operands"`
}

// op returns the operation c names.
func (c Calculation) op() (Op, error) {
	switch {
	case len(c.Operands) == 0:
		return Op{}, fmt.Errorf("no operands")
	case c.Operation == "square":
		return Square(), nil
	case c.Operation == "add":
		return Add(c.Operand), nil
	case c.Operation == "multiply":
		return Mul(c.Operand), nil
	case c.Operation == "sum":
		return Sum(), nil
	}
	return Op{}, fmt.Errorf("unknown operation %q", c.Operation)
}

// Calculator is the handler of the arithmetic workflows' steps: it reads
// its Calculation from the step's initialization, its operands from the
// task input or upstream results, and returns a Value. An odd input, an
// overflow and a bad initialization are permanent errors.
func Calculator() tasker.StepHandler {
	return tasker.HandlerFunc(func(ctx context.Context, step *tasker.StepContext) (any, error) {
		var c Calculation
		err := step.Initialization(&c)
		op, opErr := c.op()
		if err = cmp.Or(err, opErr); err != nil {
			return nil, &tasker.StepError{Type: tasker.ErrorPermanent, Code: "BAD_INITIALIZATION",
				Message: "step " + step.StepName() + ": " + err.Error(), Err: err}
		}
		xs := make([]int64, len(c.Operands))
		for i, src := range c.Operands {
			if xs[i], err = operand(step, src); err != nil {
				return nil, err
			}
		}
		r, ok := op.Apply(xs)
		if !ok {
			return nil, &tasker.StepError{Type: tasker.ErrorValidation, Code: "OVERFLOW",
				Message: fmt.Sprintf("%s of %v overflows int64", op.Name, xs)}
		}
		return Value{Operation: op.Name, Operands: xs, Result: r}, nil
	})
}

// Arithmetic returns the Example of an arithmetic workflow: every step of
// its template is a Calculator, and -even-number sets the input.
func Arithmetic(name string, templateYAML []byte) *Example {
	return &Example{Name: name, TemplateFile: "examples/" + name + "/template.yaml",
		TemplateYAML: templateYAML, Default: Calculator(), Flags: EvenNumberFlag}
}

// operand reads one operand of a Calculator step from src.
func operand(step *tasker.StepContext, src string) (int64, error) {
	if src != FromInput {
		var v Value
		err := step.DependencyResult(src, &v)
		return v.Result, err
	}
	var n int64
	if err := step.Input(strings.TrimPrefix(FromInput, "input."), &n); err != nil {
		return 0, &tasker.StepError{Type: tasker.ErrorValidation, Code: "NO_EVEN_NUMBER", Message: err.Error(), Err: err}
	}
	if n%2 != 0 {
		return 0, &tasker.StepError{Type: tasker.ErrorValidation, Code: "NOT_EVEN",
			Message: fmt.Sprintf("task input even_number must be even, got %d", n)}
	}
	return n, nil
}
