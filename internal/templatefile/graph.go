package templatefile

import (
	"slices"
	"strconv"
	"strings"
)

// link resolves the dependencies of every step to indexes, fills in the
// dependents, and reports duplicate names, bad dependencies and cycles.
func (p *parser) link(t *File, srcs []stepSource) {
	t.ByName = p.indexSteps(t.Steps, srcs)
	for i, s := range t.Steps {
		p.resolveDeps(t, s, srcs[i].deps)
	}
	for _, cycle := range stepCycles(t.Steps) {
		p.reportCycle(t, srcs, cycle)
	}
	p.checkTypes(t, srcs)
}

// indexSteps maps each step name to the index of its first step, reporting
// later steps of the same name.
func (p *parser) indexSteps(steps []*Step, srcs []stepSource) map[string]int {
	byName := make(map[string]int, len(steps))
	for i, s := range steps {
		if srcs[i].name == nil {
			continue
		}
		if j, dup := byName[s.Name]; dup {
			p.errorf(srcs[i].name, stepField(i, "name"), "duplicate step name %q (first at line %d)",
				s.Name, srcs[j].name.Line)
			continue
		}
		byName[s.Name] = i
	}
	return byName
}

// resolveDeps links s to the steps it depends on. A bad entry is reported
// and left out of the graph.
func (p *parser) resolveDeps(t *File, s *Step, deps []depRef) {
	seen := make(map[string]bool, len(deps))
	for _, d := range deps {
		j, known := t.ByName[d.name]
		switch {
		case d.name == s.Name:
			p.errorf(d.node, d.field, "step %q depends on itself", s.Name)
		case seen[d.name]:
			p.errorf(d.node, d.field, "duplicate dependency %q", d.name)
		case !known:
			p.errorf(d.node, d.field, "unknown step %q", d.name)
		default:
			s.Deps = append(s.Deps, j)
			t.Steps[j].Dependents = append(t.Steps[j].Dependents, s.Index)
		}
		seen[d.name] = true
	}
}

// reportCycle reports a cycle, given in execution order starting at its
// first step in the file, at the dependency that closes it.
func (p *parser) reportCycle(t *File, srcs []stepSource, cycle []int) {
	first, last := t.Steps[cycle[0]], t.Steps[cycle[len(cycle)-1]]
	names := make([]string, 0, len(cycle)+1)
	for _, i := range cycle {
		names = append(names, t.Steps[i].Name)
	}
	names = append(names, first.Name)
	for _, d := range srcs[cycle[0]].deps {
		if d.name == last.Name {
			p.errorf(d.node, d.field, "dependency cycle: %s", strings.Join(names, " -> "))
			return
		}
	}
	p.errorf(srcs[cycle[0]].node, stepField(cycle[0], "dependencies"), "dependency cycle: %s",
		strings.Join(names, " -> "))
}

// stepCycles returns one cycle of each strongly connected component of the
// step graph that has more than one step, in file order of their first
// steps. Each cycle is the shortest through the component's first step, in
// execution order: each step is a dependency of the next, and the last is a
// dependency of the first.
func stepCycles(steps []*Step) [][]int {
	comps := stepComponents(steps)
	slices.SortFunc(comps, func(a, b []int) int { return slices.Min(a) - slices.Min(b) })
	out := make([][]int, 0, len(comps))
	for _, c := range comps {
		out = append(out, shortestCycle(steps, c))
	}
	return out
}

// stepComponents returns the strongly connected components of more than one
// step, by Tarjan's algorithm, iteratively so that long chains of steps
// cannot exhaust the stack.
func stepComponents(steps []*Step) [][]int {
	type frame struct{ v, next int }
	var (
		order   = make([]int, len(steps)) // discovery order from 1; 0 = unseen
		low     = make([]int, len(steps))
		onStack = make([]bool, len(steps))
		stack   []int
		comps   [][]int
		counter int
	)
	discover := func(v int) frame {
		counter++
		order[v], low[v] = counter, counter
		stack, onStack[v] = append(stack, v), true
		return frame{v: v}
	}
	for root := range steps {
		if order[root] != 0 {
			continue
		}
		calls := []frame{discover(root)}
		for len(calls) > 0 {
			f := &calls[len(calls)-1]
			if ds := steps[f.v].Dependents; f.next < len(ds) {
				w := ds[f.next]
				f.next++
				switch {
				case order[w] == 0:
					calls = append(calls, discover(w))
				case onStack[w]:
					low[f.v] = min(low[f.v], order[w])
				}
				continue
			}
			v := f.v
			calls = calls[:len(calls)-1]
			if len(calls) > 0 {
				u := calls[len(calls)-1].v
				low[u] = min(low[u], low[v])
			}
			if low[v] != order[v] {
				continue
			}
			at := len(stack) - 1
			for stack[at] != v {
				at--
			}
			for _, w := range stack[at:] {
				onStack[w] = false
			}
			if len(stack)-at > 1 {
				comps = append(comps, slices.Clone(stack[at:]))
			}
			stack = stack[:at]
		}
	}
	return comps
}

// shortestCycle finds, by breadth-first search within the strongly connected
// component comp, the shortest cycle through its first step.
func shortestCycle(steps []*Step, comp []int) []int {
	start := slices.Min(comp)
	parent := make(map[int]int, len(comp))
	for _, v := range comp {
		parent[v] = -1
	}
	queue := []int{start}
	parent[start] = start
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range steps[v].Dependents {
			if w == start {
				return bfsPath(parent, start, v)
			}
			if p, in := parent[w]; in && p == -1 {
				parent[w] = v
				queue = append(queue, w)
			}
		}
	}
	return []int{start} // unreachable: a component has a cycle through every step
}

// bfsPath returns the steps from start to v by their BFS parents.
func bfsPath(parent map[int]int, start, v int) []int {
	var path []int
	for ; v != start; v = parent[v] {
		path = append(path, v)
	}
	path = append(path, start)
	slices.Reverse(path)
	return path
}

// stepField returns the field path of key in step i.
func stepField(i int, key string) string {
	return "steps[" + strconv.Itoa(i) + "]." + key
}
