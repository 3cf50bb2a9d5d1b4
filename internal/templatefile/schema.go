package templatefile

import (
	"encoding/json"
	"fmt"

	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"
)

// schema reads and compiles the JSON Schema at key in m, such as the
// template's input_schema.
func (p *parser) schema(m *yamlMapping, key string) (json.RawMessage, *gojsonschema.Schema) {
	field := m.field(key)
	n := m.value(key)
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
	schema, err := compileSchema(raw, field)
	if err != nil {
		p.errorf(n, field, "invalid JSON Schema: %v", err)
		return nil, nil
	}
	return raw, schema
}

// compileSchema compiles a JSON Schema, the one at field. References ($ref)
// may point only inside the schema: loading a template never reads other
// files or the network. A panic in the schema library becomes an error,
// since the schema comes from a file.
func compileSchema(raw []byte, field string) (s *gojsonschema.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("schema compiler failed: %v", r)
		}
	}()
	return gojsonschema.NewSchema(localSchemaLoader{gojsonschema.NewBytesLoader(raw), field})
}

// localSchemaLoader is a schema loader whose references cannot leave the
// schema at field.
type localSchemaLoader struct {
	gojsonschema.JSONLoader
	field string
}

// LoaderFactory returns the factory that loads what $ref points to.
func (l localSchemaLoader) LoaderFactory() gojsonschema.JSONLoaderFactory {
	return localOnlyFactory{l.field}
}

// localOnlyFactory is a loader factory that refuses to load anything.
type localOnlyFactory struct{ field string }

// New returns a loader for source that refuses to load it.
func (f localOnlyFactory) New(source string) gojsonschema.JSONLoader {
	return refusedSchemaLoader{localSchemaLoader{gojsonschema.NewReferenceLoader(source), f.field}}
}

// refusedSchemaLoader is a loader of an external reference that refuses to load it.
type refusedSchemaLoader struct{ localSchemaLoader }

// LoadJSON returns an error: external references are not supported.
func (r refusedSchemaLoader) LoadJSON() (any, error) {
	return nil, fmt.Errorf("$ref %v: only references within %s (\"#...\") are supported", r.JsonSource(), r.field)
}
