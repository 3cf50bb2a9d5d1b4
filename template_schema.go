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
	"gopkg.in/yaml.v3"
)

// inputSchema reads and compiles the template's input_schema.
func (p *templateParser) inputSchema(m *yamlMapping) (json.RawMessage, *gojsonschema.Schema) {
	const field = "input_schema"
	n := m.value(field)
	if n == nil {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, field, "must be a mapping (a JSON Schema object), got %s", describeNode(n))
		return nil, nil
	}
	raw, ok := p.toJSON(n, field)
	if !ok {
		return nil, nil
	}
	schema, err := compileInputSchema(raw)
	if err != nil {
		p.errorf(n, field, "invalid JSON Schema: %v", err)
		return nil, nil
	}
	return raw, schema
}

// compileInputSchema compiles a JSON Schema. References ($ref) may point only
// inside the schema: loading a template never reads other files or the
// network. A panic in the schema library becomes an error, since the schema
// comes from a file.
func compileInputSchema(raw []byte) (s *gojsonschema.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("schema compiler failed: %v", r)
		}
	}()
	return gojsonschema.NewSchema(localSchemaLoader{gojsonschema.NewBytesLoader(raw)})
}

// localSchemaLoader is a schema loader whose references cannot leave the schema.
type localSchemaLoader struct{ gojsonschema.JSONLoader }

// LoaderFactory returns the factory that loads what $ref points to.
func (localSchemaLoader) LoaderFactory() gojsonschema.JSONLoaderFactory { return localOnlyFactory{} }

// localOnlyFactory is a loader factory that refuses to load anything.
type localOnlyFactory struct{}

// New returns a loader for source that refuses to load it.
func (localOnlyFactory) New(source string) gojsonschema.JSONLoader {
	return refusedSchemaLoader{localSchemaLoader{gojsonschema.NewReferenceLoader(source)}}
}

// refusedSchemaLoader is a loader of an external reference that refuses to load it.
type refusedSchemaLoader struct{ localSchemaLoader }

// LoadJSON returns an error: external references are not supported.
func (r refusedSchemaLoader) LoadJSON() (any, error) {
	return nil, fmt.Errorf("$ref %v: only references within input_schema (\"#...\") are supported", r.JsonSource())
}

// validateInput checks a task input against the template's input_schema. It
// returns nil or an *InputError listing every violation, sorted by path. An
// empty input counts as {}; input that is not JSON is one violation at "$".
// Without a schema any JSON value is valid.
func (t *Template) validateInput(input json.RawMessage) error {
	if len(bytes.TrimSpace(input)) == 0 {
		input = json.RawMessage("{}")
	}
	if !json.Valid(input) {
		var doc any
		err := json.Unmarshal(input, &doc)
		return &InputError{Template: t.String(), Violations: []Violation{{Path: "$", Message: "invalid JSON: " + err.Error()}}}
	}
	if t.schema == nil {
		return nil
	}
	res, err := t.schema.Validate(gojsonschema.NewBytesLoader(input))
	if err != nil {
		return &InputError{Template: t.String(), Violations: []Violation{{Path: "$", Message: "invalid JSON: " + err.Error()}}}
	}
	if res.Valid() {
		return nil
	}
	// Decoded only to name the violations' paths.
	var doc any
	_ = json.Unmarshal(input, &doc)
	vs := make([]Violation, 0, len(res.Errors()))
	for _, re := range res.Errors() {
		vs = append(vs, Violation{Path: violationPath(doc, re), Message: re.Description()})
	}
	slices.SortStableFunc(vs, func(a, b Violation) int { return strings.Compare(a.Path, b.Path) })
	return &InputError{Template: t.String(), Violations: vs}
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
