package suites

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"parvis.org/parvis/kernel"
)

// adapterModules names the module behind each section this binary knows of, for a clear
// message when that module is not compiled in (forms and appointments contribute their
// own sections once they publish them).
var adapterModules = map[string]string{
	"settings": "kernel.auth", "units": "kernel.auth", "roles": "kernel.auth", "agents": "kernel.auth",
	"workflows": "workflow", "sites": "portal", "pages": "portal", "news": "portal",
	"forms": "forms", "appointment_services": "appointments", "meeting_points": "appointments",
}

// personal sections hold personal data (agents' names and addresses): never exported
// unless asked for by name.
var personal = map[string]bool{"agents": true}

// registry is what the binary knows: the sections contributed, the modules compiled in,
// the permissions declared, and the JSON Schema built from all of it.
type registry struct {
	sections  map[string]Section
	modules   map[string]bool
	perms     map[string]bool
	schemaDoc map[string]any
	schema    *jsonschema.Schema
	// knownSuite tells whether an include names a built-in or uploaded suite.
	knownSuite func(name string) bool
}

func newRegistry(all []kernel.Declared, secs []Section, knownSuite func(string) bool) (*registry, error) {
	r := &registry{sections: map[string]Section{}, modules: map[string]bool{}, perms: map[string]bool{kernel.PermAnyAgent: true}, knownSuite: knownSuite}
	for _, d := range all {
		r.modules[d.ID] = true
		for _, p := range d.Parts.Permissions {
			r.perms[p.Name] = true
		}
	}
	for _, s := range secs {
		if headerFields[s.Key()] {
			return nil, fmt.Errorf("suite section %q clashes with a header field", s.Key())
		}
		if _, dup := r.sections[s.Key()]; dup {
			return nil, fmt.Errorf("suite section %q contributed twice", s.Key())
		}
		r.sections[s.Key()] = s
	}
	r.schemaDoc = r.buildSchema()
	b, _ := json.Marshal(r.schemaDoc)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		return nil, fmt.Errorf("suite schema: %w", err)
	}
	if r.schema, err = c.Compile(SchemaID); err != nil {
		return nil, fmt.Errorf("suite schema: %w", err)
	}
	return r, nil
}

// SchemaID identifies the suite file schema.
const SchemaID = "https://parvis.org/schemas/suite-1.json"

// KeyPattern is what item keys and suite names look like.
const KeyPattern = `^[a-z0-9]+([-_][a-z0-9]+)*$`

func (r *registry) buildSchema() map[string]any {
	props := map[string]any{
		"format":      map[string]any{"type": "integer", "minimum": 1, "maximum": Format, "description": "version of the suite file format"},
		"name":        map[string]any{"type": "string", "pattern": KeyPattern, "description": "stable name of the suite"},
		"version":     map[string]any{"type": "string", "pattern": `^[0-9]+(\.[0-9]+){0,2}$`, "description": "version of the suite, as 1.2.0"},
		"title":       map[string]any{"type": "string", "minLength": 1},
		"description": map[string]any{"type": "string"},
		"requires":    map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "uniqueItems": true, "description": "modules the suite needs"},
		"include":     map[string]any{"type": "array", "items": map[string]any{"type": "string", "pattern": KeyPattern}, "uniqueItems": true, "description": "suites applied first"},
	}
	for _, k := range r.sectionKeys() {
		props[k] = map[string]any{"type": "array", "items": r.sections[k].Schema()}
	}
	return map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  SchemaID,
		"title":                "Parvis suite file",
		"type":                 "object",
		"required":             []string{"format", "name", "version", "title"},
		"additionalProperties": false,
		"properties":           props,
	}
}

// sectionKeys lists the sections in apply order.
func (r *registry) sectionKeys() []string {
	keys := make([]string, 0, len(r.sections))
	for k := range r.sections {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		oa, ob := r.sections[keys[a]].Order(), r.sections[keys[b]].Order()
		if oa != ob {
			return oa < ob
		}
		return keys[a] < keys[b]
	})
	return keys
}

func (r *registry) missingModules(req []string) []string {
	var out []string
	for _, m := range req {
		if !r.modules[m] {
			out = append(out, m)
		}
	}
	return out
}

// object is a JSON Schema object with a required key and the given properties; no others.
func object(required []string, props map[string]any) map[string]any {
	p := map[string]any{"key": map[string]any{"type": "string", "pattern": KeyPattern}}
	for k, v := range props {
		p[k] = v
	}
	return map[string]any{"type": "object", "required": append([]string{"key"}, required...), "additionalProperties": false, "properties": p}
}

func str() map[string]any                     { return map[string]any{"type": "string"} }
func nonEmpty() map[string]any                { return map[string]any{"type": "string", "minLength": 1} }
func keyRef() map[string]any                  { return map[string]any{"type": "string", "pattern": KeyPattern} }
func boolean() map[string]any                 { return map[string]any{"type": "boolean"} }
func arrayOf(v map[string]any) map[string]any { return map[string]any{"type": "array", "items": v} }
func enum(vals ...string) map[string]any      { return map[string]any{"type": "string", "enum": vals} }
