package tasker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/xeipuuv/gojsonschema"
)

// validateInput checks a task input against the template's input_schema. It
// returns nil or an *InputError listing every violation, sorted by path. An
// empty input counts as {}; input that is not JSON is one violation at "$".
// Without a schema any JSON value is valid.
func (t *Template) validateInput(input json.RawMessage) error {
	if len(bytes.TrimSpace(input)) == 0 {
		input = json.RawMessage("{}")
	}
	if vs := schemaViolations(t.schema, input); len(vs) > 0 {
		return &InputError{Template: t.String(), Violations: vs}
	}
	return nil
}

// validateResult checks a step's result against its result_schema and
// returns every violation, sorted by path; nil when the result is valid.
// A result that is not JSON is one violation at "$". Without a schema any
// JSON value is valid.
func (s *StepSpec) validateResult(raw json.RawMessage) []Violation {
	return schemaViolations(s.resultSchema, raw)
}

// schemaViolations checks the JSON document raw against schema, which may
// be nil, and returns every violation sorted by path; nil when raw is valid.
func schemaViolations(schema *gojsonschema.Schema, raw json.RawMessage) []Violation {
	if !json.Valid(raw) {
		var doc any
		err := json.Unmarshal(raw, &doc) // not nil: raw is not valid JSON
		return []Violation{{Path: "$", Message: "invalid JSON: " + err.Error()}}
	}
	if schema == nil {
		return nil
	}
	res, err := schema.Validate(gojsonschema.NewBytesLoader(raw))
	if err != nil {
		return []Violation{{Path: "$", Message: "invalid JSON: " + err.Error()}}
	}
	if res.Valid() {
		return nil
	}
	// Decoded only to name the violations' paths.
	var doc any
	_ = json.Unmarshal(raw, &doc)
	vs := make([]Violation, 0, len(res.Errors()))
	for _, re := range res.Errors() {
		vs = append(vs, Violation{Path: violationPath(doc, re), Message: re.Description()})
	}
	slices.SortStableFunc(vs, func(a, b Violation) int { return strings.Compare(a.Path, b.Path) })
	return vs
}

// violationPath returns the JSON path of the value a schema error is about.
// Errors about a property (missing, not allowed, badly named) are reported
// by the schema library at the enclosing object; they are moved to the
// property itself.
func violationPath(doc any, re gojsonschema.ResultError) string {
	// The context is "(root)" and then keys and array indexes; NUL does not
	// occur in keys in practice, so it splits them unambiguously.
	parts := strings.Split(re.Context().String("\x00"), "\x00")[1:]
	switch re.(type) {
	case *gojsonschema.RequiredError, *gojsonschema.AdditionalPropertyNotAllowedError, *gojsonschema.InvalidPropertyNameError:
		if prop, ok := re.Details()["property"].(string); ok {
			parts = append(parts, prop)
		}
	}
	return formatJSONPath(doc, parts)
}

var jsonIdentPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// formatJSONPath renders a path into doc as "$.key[3].other", looking at doc to
// tell array indexes from object keys. Keys that are not identifiers are
// written ["like this"].
func formatJSONPath(doc any, parts []string) string {
	var b strings.Builder
	b.WriteString("$")
	cur := doc
	for _, part := range parts {
		if arr, ok := cur.([]any); ok {
			if i, err := strconv.Atoi(part); err == nil && i >= 0 && i < len(arr) {
				fmt.Fprintf(&b, "[%d]", i)
				cur = arr[i]
				continue
			}
		}
		if obj, ok := cur.(map[string]any); ok {
			cur = obj[part]
		} else {
			cur = nil
		}
		if jsonIdentPattern.MatchString(part) {
			b.WriteString("." + part)
		} else {
			fmt.Fprintf(&b, "[%q]", part)
		}
	}
	return b.String()
}
