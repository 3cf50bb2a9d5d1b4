package tasker

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func minimalTemplateYAML(name, version string) []byte {
	return []byte("name: " + name + "\nnamespace_name: shop\nversion: \"" + version + "\"\n" +
		"steps:\n  - name: s\n    handler:\n      callable: shop.S\n")
}

func TestLoadTemplatesFS(t *testing.T) {
	fsys := fstest.MapFS{
		"orders.yaml":           {Data: minimalTemplateYAML("orders", "1.0.0")},
		"orders/v2.yml":         {Data: minimalTemplateYAML("orders", "2.0.0")},
		"a/deep/refunds.yaml":   {Data: minimalTemplateYAML("refunds", "1.0.0")},
		"README.md":             {Data: []byte("not a template")},
		"notes.yaml.bak":        {Data: []byte("::: not yaml")},
		"shipping.yaml/ignored": {Data: []byte("a directory named like a template")},
		".hidden/orders.yaml":   {Data: []byte("::: a hidden directory")},
		"a/.draft.yaml":         {Data: []byte("::: a hidden file")},
	}
	ts, err := LoadTemplates(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tpl := range ts {
		got = append(got, tpl.Source+" "+tpl.String())
	}
	want := []string{
		"a/deep/refunds.yaml shop/refunds@1.0.0",
		"orders.yaml shop/orders@1.0.0",
		"orders/v2.yml shop/orders@2.0.0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestLoadTemplatesFSEmpty(t *testing.T) {
	ts, err := LoadTemplates(fstest.MapFS{"README.md": {Data: []byte("x")}})
	if ts != nil || err != nil {
		t.Errorf("got %v, %v; want nothing", ts, err)
	}
}

func TestLoadTemplatesFSAllOrNothing(t *testing.T) {
	fsys := fstest.MapFS{
		"good.yaml": {Data: minimalTemplateYAML("good", "1.0.0")},
		"bad1.yaml": {Data: []byte("name: bad\n")},
		"bad2.yml":  {Data: []byte("steps: [\n")},
	}
	ts, err := LoadTemplates(fsys)
	if ts != nil || !errors.Is(err, ErrInvalidTemplate) {
		t.Fatalf("got %v, %v; want no templates and an invalid-template error", ts, err)
	}
	files := map[string]bool{}
	for _, te := range templateErrors(t, err) {
		files[te.File] = true
	}
	if !files["bad1.yaml"] || !files["bad2.yml"] || len(files) != 2 {
		t.Errorf("problems in files %v, want bad1.yaml and bad2.yml:\n%v", files, err)
	}
}

func TestLoadTemplatesFSDuplicate(t *testing.T) {
	fsys := fstest.MapFS{
		"one.yaml": {Data: minimalTemplateYAML("orders", "1.0.0")},
		"two.yaml": {Data: minimalTemplateYAML("orders", "1.0.0")},
		"new.yaml": {Data: minimalTemplateYAML("orders", "1.0.1")},
	}
	ts, err := LoadTemplates(fsys)
	if ts != nil || !errors.Is(err, ErrDuplicateTemplate) {
		t.Fatalf("got %v, %v; want ErrDuplicateTemplate", ts, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "two.yaml") || !strings.Contains(msg, "first defined in one.yaml") {
		t.Errorf("error %q does not name both files", msg)
	}
}

func TestLoadTemplateDir(t *testing.T) {
	dir := filepath.Join("testdata", "templates", "valid")
	ts, err := LoadTemplateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := templateSources(ts)
	var want []string
	for _, name := range []string{"anchors.yaml", "backoffs.yaml", "defaults.yml", "ecommerce_order_processing.yaml",
		"environments.yaml", "legacy_fields.yaml", "step_types.yaml", "tasker_fields.yaml"} {
		want = append(want, filepath.Join(dir, name))
	}
	if !slices.Equal(got, want) {
		t.Errorf("sources %q, want %q", got, want)
	}
}

// templateSources returns the Source of each template.
func templateSources(ts []*Template) []string {
	var out []string
	for _, tpl := range ts {
		out = append(out, tpl.Source)
	}
	return out
}

func TestLoadTemplateDirSkipsHidden(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"orders.yaml":            minimalTemplateYAML("orders", "1.0.0"),
		".orders.yaml.swp.yaml":  []byte("::: an editor's hidden file"),
		".git/hooks/bad.yaml":    []byte("name: [\n"),
		"sub/.draft.yml":         []byte("name: draft\n"),
		"sub/.cache/orders.yaml": minimalTemplateYAML("orders", "1.0.0"),
		"sub/refunds.yml":        minimalTemplateYAML("refunds", "1.0.0"),
	}
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ts, err := LoadTemplateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := templateSources(ts)
	want := []string{filepath.Join(dir, "orders.yaml"), filepath.Join(dir, "sub", "refunds.yml")}
	if !slices.Equal(got, want) {
		t.Errorf("sources %q, want %q", got, want)
	}
}

func TestLoadTemplateDirInvalid(t *testing.T) {
	dir := filepath.Join("testdata", "templates", "invalid")
	ts, err := LoadTemplateDir(dir)
	if ts != nil || !errors.Is(err, ErrInvalidTemplate) {
		t.Fatalf("got %v, %v; want an invalid-template error", ts, err)
	}
	problems := templateErrors(t, err)
	if len(problems) != len(invalidTemplateCases) {
		t.Errorf("got %d problems, want one per file, %d", len(problems), len(invalidTemplateCases))
	}
	for _, te := range problems {
		if !strings.HasPrefix(te.File, dir+string(filepath.Separator)) {
			t.Errorf("file %q does not include the directory %q", te.File, dir)
		}
	}
}

func TestLoadTemplateDirMissing(t *testing.T) {
	ts, err := LoadTemplateDir(filepath.Join("testdata", "no_such_dir"))
	if ts != nil || err == nil || errors.Is(err, ErrInvalidTemplate) {
		t.Errorf("got %v, %v; want an I/O error", ts, err)
	}
}
