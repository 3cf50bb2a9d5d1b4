package tasker

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gotasker/tasker/internal/templatefile"
)

func FuzzParseTemplate(f *testing.F) {
	// Seeds: every template under testdata/templates (valid, invalid, and
	// the Tasker-format ones, which use every field of the format).
	files, err := filepath.Glob("testdata/templates/*/*.y*ml")
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, "testdata/templates/several_problems.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tpl, err := ParseTemplate("fuzz.yaml", data)
		if err != nil {
			if tpl != nil {
				t.Fatal("got a template and an error")
			}
			if !errors.Is(err, ErrInvalidTemplate) {
				t.Fatalf("error does not wrap ErrInvalidTemplate: %v", err)
			}
			return
		}
		if err := checkTemplateDAG(tpl); err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
	})
}

// checkTemplateDAG checks everything a loaded template promises the engine.
func checkTemplateDAG(t *Template) error {
	if len(t.Steps) == 0 {
		return errors.New("no steps")
	}
	if !templatefile.NamePattern.MatchString(t.Name) || !templatefile.NamePattern.MatchString(t.Namespace) ||
		len(t.Namespace) > templatefile.MaxNamespaceLen || !templatefile.VersionPattern.MatchString(t.Version) {
		return fmt.Errorf("bad identity %q", t.String())
	}
	if (t.InputSchema == nil) != (t.schema == nil) || (t.InputSchema != nil && !json.Valid(t.InputSchema)) {
		return fmt.Errorf("input schema %s, compiled %v", t.InputSchema, t.schema != nil)
	}
	if len(t.byName) != len(t.Steps) {
		return fmt.Errorf("%d names for %d steps", len(t.byName), len(t.Steps))
	}
	dependents := make([][]int, len(t.Steps))
	for i, s := range t.Steps {
		if err := checkTemplateStep(t, i, s); err != nil {
			return fmt.Errorf("step %d %q: %w", i, s.Name, err)
		}
		for _, d := range s.deps {
			dependents[d] = append(dependents[d], i)
		}
	}
	for i, s := range t.Steps {
		if !slices.Equal(s.dependents, dependents[i]) {
			return fmt.Errorf("step %q: dependents %v, want %v", s.Name, s.dependents, dependents[i])
		}
	}
	return checkTemplateAcyclic(t.Steps)
}

// checkTemplateStep checks one step in isolation and its dependency indexes.
func checkTemplateStep(t *Template, i int, s *StepSpec) error {
	if s.index != i || t.byName[s.Name] != i || t.Step(s.Name) != s {
		return fmt.Errorf("index %d, by name %d", s.index, t.byName[s.Name])
	}
	if !templatefile.NamePattern.MatchString(s.Name) || s.Callable == "" {
		return fmt.Errorf("name %q, callable %q", s.Name, s.Callable)
	}
	var init map[string]any
	if err := json.Unmarshal(s.Initialization, &init); err != nil || init == nil {
		return fmt.Errorf("initialization %s is not a JSON object", s.Initialization)
	}
	if _, err := s.Retry.validate(); err != nil || s.Timeout < 0 {
		return fmt.Errorf("retry %+v (%v), timeout %v", s.Retry, err, s.Timeout)
	}
	if len(s.deps) != len(s.Dependencies) {
		return fmt.Errorf("deps %v for dependencies %q", s.deps, s.Dependencies)
	}
	seen := map[int]bool{}
	for k, d := range s.deps {
		if d < 0 || d >= len(t.Steps) || d == i || seen[d] || t.Steps[d].Name != s.Dependencies[k] {
			return fmt.Errorf("bad dependency %d (%q)", d, s.Dependencies[k])
		}
		seen[d] = true
	}
	return nil
}

// checkTemplateAcyclic runs Kahn's algorithm: every step must be reached.
func checkTemplateAcyclic(steps []*StepSpec) error {
	waiting := make([]int, len(steps))
	var ready []int
	for i, s := range steps {
		if waiting[i] = len(s.deps); waiting[i] == 0 {
			ready = append(ready, i)
		}
	}
	done := 0
	for len(ready) > 0 {
		i := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		done++
		for _, d := range steps[i].dependents {
			if waiting[d]--; waiting[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	if done != len(steps) {
		return fmt.Errorf("cycle: only %d of %d steps can run", done, len(steps))
	}
	return nil
}
