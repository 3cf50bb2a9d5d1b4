package main

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/gotasker/tasker"
)

// Namespace and callable shared by every generated template.
const (
	benchNamespace = "bench"
	benchCallable  = "bench.step"
)

// shapeNames lists the shapes in the order "-shape all" runs them.
var shapeNames = []string{"diamond", "wide", "chain", "tree", "many"}

// sizes holds the shape parameters given on the command line.
type sizes struct {
	width  int // wide: parallel steps between the first and the last
	length int // chain: sequential steps
	depth  int // tree: levels below the root
}

// shape is a workload: the DAG every task follows, how many tasks run by
// default, and how they are submitted. Every shape but many runs its tasks
// serially, so that a task's latency is that of the shape on an idle engine;
// many is the concurrent load. The defaults give runs of 5,000 to 10,000
// steps with the default sizes.
type shape struct {
	name         string
	param        string // "width", "length", "depth" or ""
	size         int    // the value of param; 0 when there is none
	steps        []stepDef
	defaultTasks int
	// submitters is how many goroutines submit tasks by default; 0 means
	// serial: each task is submitted once the previous one has completed.
	submitters int
}

// stepDef is one generated step: its name and the steps it waits for.
type stepDef struct {
	name string
	deps []string
}

// newShape returns the shape called name, sized by sz.
func newShape(name string, sz sizes) (shape, error) {
	switch name {
	case "diamond":
		return shape{name: name, steps: diamondSteps(), defaultTasks: 1000}, nil
	case "wide":
		if sz.width < 1 {
			return shape{}, fmt.Errorf("-width must be at least 1, got %d", sz.width)
		}
		return shape{name: name, param: "width", size: sz.width, steps: wideSteps(sz.width),
			defaultTasks: 10}, nil
	case "chain":
		if sz.length < 1 {
			return shape{}, fmt.Errorf("-length must be at least 1, got %d", sz.length)
		}
		return shape{name: name, param: "length", size: sz.length, steps: chainSteps(sz.length),
			defaultTasks: 50}, nil
	case "tree":
		if sz.depth < 0 || sz.depth > maxDepth {
			return shape{}, fmt.Errorf("-depth must be between 0 and %d, got %d", maxDepth, sz.depth)
		}
		return shape{name: name, param: "depth", size: sz.depth, steps: treeSteps(sz.depth),
			defaultTasks: 50}, nil
	case "many":
		return shape{name: name, steps: diamondSteps(), defaultTasks: 1000,
			submitters: 4 * runtime.GOMAXPROCS(0)}, nil
	}
	return shape{}, fmt.Errorf("unknown shape %q: want %s or all", name, strings.Join(shapeNames, ", "))
}

// maxDepth bounds -depth: a tree of depth 16 already has 131071 steps.
const maxDepth = 16

// templateName is the name of the shape's template.
func (s shape) templateName() string { return "bench_" + s.name }

// template parses the shape's generated YAML, as a user's file would be.
func (s shape) template() (*tasker.Template, error) {
	t, err := tasker.ParseTemplate(s.templateName()+".yaml", s.yaml())
	if err != nil {
		return nil, fmt.Errorf("shape %s: generated template: %w", s.name, err)
	}
	return t, nil
}

// yaml renders the shape as a task template, one flow-style line a step so
// that a 100,000-step shape stays within the loader's size limits. Every
// step calls benchCallable; the no-op handlers never fail, so the default
// retry policy never comes into play.
func (s shape) yaml() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nnamespace_name: %s\nversion: \"1.0.0\"\n", s.templateName(), benchNamespace)
	fmt.Fprintf(&b, "description: \"taskerbench %s\"\nsteps:\n", s.name)
	for _, st := range s.steps {
		fmt.Fprintf(&b, "  - {name: %s, handler: {callable: %s}", st.name, benchCallable)
		if len(st.deps) > 0 {
			fmt.Fprintf(&b, ", dependencies: [%s]", strings.Join(st.deps, ", "))
		}
		b.WriteString("}\n")
	}
	return []byte(b.String())
}

// diamondSteps is the guide's workflow: a → (b ‖ c) → d → e.
func diamondSteps() []stepDef {
	return []stepDef{
		{name: "validate_cart"},
		{name: "process_payment", deps: []string{"validate_cart"}},
		{name: "update_inventory", deps: []string{"validate_cart"}},
		{name: "create_order", deps: []string{"process_payment", "update_inventory"}},
		{name: "send_confirmation", deps: []string{"create_order"}},
	}
}

// wideSteps is one step, then width steps in parallel, then one step that
// waits for all of them: width+2 steps.
func wideSteps(width int) []stepDef {
	steps := make([]stepDef, 0, width+2)
	steps = append(steps, stepDef{name: "start"})
	middle := make([]string, width)
	for i := range middle {
		middle[i] = fmt.Sprintf("p%d", i+1)
		steps = append(steps, stepDef{name: middle[i], deps: []string{"start"}})
	}
	return append(steps, stepDef{name: "finish", deps: middle})
}

// chainSteps is length steps, each waiting for the one before.
func chainSteps(length int) []stepDef {
	steps := make([]stepDef, length)
	for i := range steps {
		steps[i].name = fmt.Sprintf("s%d", i+1)
		if i > 0 {
			steps[i].deps = []string{steps[i-1].name}
		}
	}
	return steps
}

// treeSteps is a binary fan-out tree: a root, two children each, down to
// depth levels below the root, 2^(depth+1)-1 steps. Nothing converges: the
// task completes when every leaf has.
func treeSteps(depth int) []stepDef {
	steps := make([]stepDef, 1<<(depth+1)-1)
	for i := range steps {
		steps[i].name = fmt.Sprintf("n%d", i)
		if i > 0 {
			steps[i].deps = []string{steps[(i-1)/2].name}
		}
	}
	return steps
}
