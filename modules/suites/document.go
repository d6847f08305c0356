package suites

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Format is the newest suite file format this binary reads.
const Format = 1

// Suite is a parsed suite file.
type Suite struct {
	File   string
	Source []byte
	Header
	// Items by section key, in file order.
	Items map[string][]Item
	file  *ast.File
}

// Header is what a suite file says about itself.
type Header struct {
	Format      int      `json:"format"`
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Requires    []string `json:"requires,omitempty"`
	// Include names other suites applied first (the demo town includes rendez-vous).
	Include []string `json:"include,omitempty"`
}

var headerFields = map[string]bool{"format": true, "name": true, "version": true, "title": true, "description": true, "requires": true, "include": true}

// Invalid lists a suite file's problems. Nothing was written.
type Invalid struct{ Problems []Problem }

func (e *Invalid) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s:%d:%d: %s: %s %v", p.File, p.Line, p.Col, p.Path, p.Key, p.Args)
	}
	return b.String()
}

// problems collects the problems of one file, placing each at its line and column.
type problems struct {
	file string
	ast  *ast.File
	list []Problem
}

func (ps *problems) add(path, key string, args ...any) {
	p := Problem{File: ps.file, Path: path, Key: key, Args: args}
	p.Line, p.Col = position(ps.ast, path)
	ps.list = append(ps.list, p)
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sort.SliceStable(ps.list, func(a, b int) bool { return ps.list[a].Line < ps.list[b].Line })
	return &Invalid{Problems: ps.list}
}

// position finds the line and column of a YAML path: the key's position for a field,
// the node's for a list item, falling back on the nearest parent found.
func position(f *ast.File, path string) (int, int) {
	for f != nil && path != "" {
		if i := strings.LastIndex(path, "."); i > 0 && !strings.Contains(path[i:], "[") {
			if parent := nodeAt(f, path[:i]); parent != nil {
				if mv := fieldOf(parent, strings.Trim(path[i+1:], "'")); mv != nil {
					if tk := mv.Key.GetToken(); tk != nil && tk.Position != nil {
						return tk.Position.Line, tk.Position.Column
					}
				}
			}
		}
		if n := nodeAt(f, path); n != nil {
			if tk := n.GetToken(); tk != nil && tk.Position != nil {
				return tk.Position.Line, tk.Position.Column
			}
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			break
		}
		path = path[:i]
	}
	return 1, 1
}

func nodeAt(f *ast.File, path string) ast.Node {
	if path == "$" {
		if len(f.Docs) > 0 {
			return f.Docs[0].Body
		}
		return nil
	}
	p, err := yaml.PathString(path)
	if err != nil {
		return nil
	}
	n, err := p.FilterFile(f)
	if err != nil {
		return nil
	}
	return n
}

// fieldOf finds the entry of a mapping node by key.
func fieldOf(n ast.Node, name string) *ast.MappingValueNode {
	switch m := n.(type) {
	case *ast.MappingNode:
		for _, v := range m.Values {
			if v.Key != nil && v.Key.GetToken() != nil && v.Key.GetToken().Value == name {
				return v
			}
		}
	case *ast.MappingValueNode:
		if m.Key != nil && m.Key.GetToken() != nil && m.Key.GetToken().Value == name {
			return m
		}
	}
	return nil
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// pointerToPath turns a JSON pointer ("/units/0/name") into a YAML path ("$.units[0].name").
func pointerToPath(ptr []string) string {
	var b strings.Builder
	b.WriteString("$")
	for _, t := range ptr {
		if _, err := strconv.Atoi(t); err == nil {
			b.WriteString("[" + t + "]")
		} else if plainKey.MatchString(t) {
			b.WriteString("." + t)
		} else {
			b.WriteString(".'" + t + "'")
		}
	}
	return b.String()
}

// parse reads a suite file and checks what needs no database: YAML syntax, format version,
// known sections, the JSON Schema, duplicate keys, references inside the file, each
// section's own checks. known tells whether a reference to another suite's item resolves.
func (r *registry) parse(file string, src []byte, known func(section, key string) bool) (*Suite, error) {
	ps := &problems{file: file}
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		var ye yaml.Error
		p := Problem{File: file, Line: 1, Col: 1, Path: "$", Key: "suites.error.syntax", Args: []any{"detail", err.Error()}}
		if errors.As(err, &ye) {
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				p.Line, p.Col = tk.Position.Line, tk.Position.Column
			}
			p.Args = []any{"detail", ye.GetMessage()}
		}
		return nil, &Invalid{Problems: []Problem{p}}
	}
	ps.ast = f
	js, err := yaml.YAMLToJSON(src)
	if err != nil {
		ps.add("$", "suites.error.syntax", "detail", err.Error())
		return nil, ps.err()
	}
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil || doc == nil {
		ps.add("$", "suites.error.not_mapping")
		return nil, ps.err()
	}
	// A newer format may mean anything: stop before reading further.
	if v, ok := doc["format"].(float64); ok && v > Format {
		ps.add("$.format", "suites.error.format_newer", "found", v, "max", Format)
		return nil, ps.err()
	}
	for k := range doc {
		if !headerFields[k] && r.sections[k] == nil {
			if mod, ok := adapterModules[k]; ok {
				ps.add("$."+k, "suites.error.section_module", "section", k, "module", mod)
			} else {
				ps.add("$."+k, "suites.error.unknown_section", "section", k, "known", strings.Join(r.sectionKeys(), ", "))
			}
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		ps.add("$", "suites.error.syntax", "detail", err.Error())
		return nil, ps.err()
	}
	if err := r.schema.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		for _, u := range leaves(ve.BasicOutput()) {
			ps.add(pointerToPath(splitPointer(u.InstanceLocation)), "suites.error.schema", "detail", u.Error.String())
		}
		return nil, ps.err()
	}

	s := &Suite{File: file, Source: src, file: f, Items: map[string][]Item{}}
	hb, _ := json.Marshal(doc)
	_ = json.Unmarshal(hb, &s.Header)
	if missing := r.missingModules(s.Requires); len(missing) > 0 {
		ps.add("$.requires", "suites.error.modules_missing", "missing", strings.Join(missing, ", "))
	}
	for _, name := range s.Include {
		if !r.knownSuite(name) {
			ps.add("$.include", "suites.error.unknown_include", "name", name)
		}
	}
	for key, sec := range r.sections {
		raw, _ := doc[key].([]any)
		seen := map[string]string{}
		for i, x := range raw {
			obj := x.(map[string]any) // the schema made sure
			path := fmt.Sprintf("$.%s[%d]", key, i)
			k := obj["key"].(string)
			if first, dup := seen[k]; dup {
				ps.add(path+".key", "suites.error.duplicate_key", "key", k, "first", first)
				continue
			}
			l, _ := position(f, path+".key")
			seen[k] = fmt.Sprintf("%s:%d", file, l)
			data := map[string]any{}
			for fk, fv := range obj {
				if fk != "key" {
					data[fk] = fv
				}
			}
			s.Items[key] = append(s.Items[key], Item{Section: key, Key: k, Data: data, Path: path})
		}
		_ = sec
	}
	// References: to an item of this file, or of a suite already applied.
	for _, key := range r.sectionKeys() {
		for _, it := range s.Items[key] {
			for _, ref := range r.sections[key].Refs(it) {
				if r.sections[ref.Section] == nil {
					ps.add(it.Path+"."+ref.Path, "suites.error.section_module", "section", ref.Section, "module", adapterModules[ref.Section])
					continue
				}
				if !s.has(ref.Section, ref.Key) && (known == nil || !known(ref.Section, ref.Key)) {
					ps.add(it.Path+"."+ref.Path, "suites.error.missing_ref", "section", ref.Section, "key", ref.Key)
				}
			}
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	for _, key := range r.sectionKeys() {
		for _, p := range r.sections[key].Check(s.Items[key], s.Items) {
			ps.add(p.Path, p.Key, p.Args...)
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	if _, err := r.ordered(s); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Suite) has(section, key string) bool {
	for _, it := range s.Items[section] {
		if it.Key == key {
			return true
		}
	}
	return false
}

// leaves keeps the most precise schema errors: those no other error is nested under.
func leaves(out *OutputUnitAlias) []OutputUnitAlias {
	var withErr []OutputUnitAlias
	for _, u := range out.Errors {
		if u.Error != nil {
			withErr = append(withErr, u)
		}
	}
	var keep []OutputUnitAlias
	for i, u := range withErr {
		deeper := false
		for j, v := range withErr {
			if i != j && strings.HasPrefix(v.KeywordLocation, u.KeywordLocation+"/") {
				deeper = true
				break
			}
		}
		if !deeper {
			keep = append(keep, u)
		}
	}
	return keep
}

// OutputUnitAlias shortens the jsonschema type name.
type OutputUnitAlias = jsonschema.OutputUnit

func splitPointer(p string) []string {
	if p == "" || p == "/" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range parts {
		parts[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
	}
	return parts
}

// ordered returns the items in the order they are applied: sections by Order, and inside a
// section parents before the items referring to them (pages under pages).
func (r *registry) ordered(s *Suite) ([]Item, error) {
	var out []Item
	for _, key := range r.sectionKeys() {
		items := s.Items[key]
		done := map[string]bool{}
		for len(done) < len(items) {
			progress := false
			for _, it := range items {
				if done[it.Key] {
					continue
				}
				ready := true
				for _, ref := range r.sections[key].Refs(it) {
					if ref.Section == key && !done[ref.Key] && s.has(key, ref.Key) {
						ready = false
					}
				}
				if ready {
					done[it.Key] = true
					out = append(out, it)
					progress = true
				}
			}
			if !progress {
				ps := &problems{file: s.File, ast: s.file}
				for _, it := range items {
					if !done[it.Key] {
						ps.add(it.Path, "suites.error.cycle", "key", it.Key)
					}
				}
				return nil, ps.err()
			}
		}
	}
	return out, nil
}
