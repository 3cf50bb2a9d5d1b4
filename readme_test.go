package tasker_test

import (
	"os"
	"strings"
	"testing"
)

// The README's Quickstart must stay the code Example_quickstart runs.
func TestReadmeQuickstartIsExampleCode(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## Quickstart\n")
	_, code, _ := strings.Cut(section, "```go\n")
	code, _, closed := strings.Cut(code, "```\n")
	if !closed || !strings.Contains(code, "func quickstart(") {
		t.Fatalf("README.md has no Quickstart code block holding func quickstart")
	}
	if !strings.Contains(string(example), code) {
		t.Errorf("README.md's Quickstart is not the code of example_test.go's quickstart:\n%s", code)
	}
}
