package tasker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzValidateInput feeds arbitrary task inputs to the guide's input_schema:
// validation must never panic, and must either accept the input or return
// an *InputError whose every violation has a JSON path.
func FuzzValidateInput(f *testing.F) {
	tmpl, err := LoadTemplateFile("testdata/templates/valid/ecommerce_order_processing.yaml")
	if err != nil {
		f.Fatal(err)
	}
	seeds, err := filepath.Glob("testdata/inputs/*.json")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed inputs: %v", err)
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := tmpl.validateInput(data)
		if err == nil {
			return
		}
		var ie *InputError
		if !errors.As(err, &ie) || !errors.Is(err, ErrInvalidInput) || len(ie.Violations) == 0 {
			t.Fatalf("error %v is not an *InputError with violations", err)
		}
		for _, v := range ie.Violations {
			if !strings.HasPrefix(v.Path, "$") || v.Message == "" {
				t.Fatalf("violation %+v lacks a JSON path or a message", v)
			}
		}
	})
}
