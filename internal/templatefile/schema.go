package templatefile

import (
	"encoding/json"
	"fmt"

	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"
)

// inputSchema reads and compiles the template's input_schema.
func (p *parser) inputSchema(m *yamlMapping) (json.RawMessage, *gojsonschema.Schema) {
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
