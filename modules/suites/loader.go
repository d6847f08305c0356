package suites

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"parvis.org/parvis/kernel/errs"
)

// Summary describes a suite of the catalogue.
type Summary struct {
	Header
	Builtin  bool
	Missing  []string // required modules not compiled in
	Problems error    // why it cannot be applied, if it cannot
}

// builtinNames lists the suites shipped in the binary.
func builtinNames() []string {
	entries, _ := fs.ReadDir(files, "builtin")
	var out []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// source returns a suite file by name: built in, or uploaded in org.
func (m *Module) source(ctx context.Context, org int64, name string) (string, []byte, error) {
	if b, err := fs.ReadFile(files, "builtin/"+name+".yaml"); err == nil {
		return name + ".yaml", b, nil
	}
	var doc string
	err := m.db.Read().QueryRowContext(ctx, `SELECT document FROM suites_uploads WHERE org_id = ? AND name = ?`, org, name).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, errs.New(errs.NotFound, "suites.error.no_suite", "name", name)
	}
	if err != nil {
		return "", nil, err
	}
	return name + ".yaml", []byte(doc), nil
}

// Find loads and checks a built-in or uploaded suite by name.
func (m *Module) Find(ctx context.Context, org int64, name string) (*Suite, error) {
	file, src, err := m.source(ctx, org, name)
	if err != nil {
		return nil, err
	}
	return m.Load(ctx, org, file, src)
}

// Load parses and checks a suite file; references may point at items of suites already
// applied in org. It writes nothing.
func (m *Module) Load(ctx context.Context, org int64, file string, src []byte) (*Suite, error) {
	reg := m.registry()
	if reg == nil {
		return nil, fmt.Errorf("suites: not assembled")
	}
	var recs map[rkey]record
	if org != 0 {
		var err error
		if recs, err = m.records(ctx, m.db.Read(), org); err != nil {
			return nil, err
		}
	}
	reg2 := *reg
	reg2.knownSuite = func(name string) bool {
		_, _, err := m.source(ctx, org, name)
		return err == nil
	}
	var incs []*Suite
	loaded := false
	s, err := reg2.parse(file, src, func(section, key string) bool {
		if _, ok := recs[rkey{section, key}]; ok {
			return true
		}
		if !loaded { // parsed once per load, not once per reference
			incs, loaded = m.included(ctx, org, src), true
		}
		for _, inc := range incs {
			if inc.has(section, key) {
				return true
			}
		}
		return false
	})
	return s, err
}

// included loads the suites src includes (those that load), so a suite may refer to what
// the suites it includes create.
func (m *Module) included(ctx context.Context, org int64, src []byte) []*Suite {
	var h struct {
		Include []string `yaml:"include"`
	}
	if err := yamlUnmarshal(src, &h); err != nil {
		return nil
	}
	var out []*Suite
	for _, name := range h.Include {
		if inc, err := m.Find(ctx, org, name); err == nil {
			out = append(out, inc)
		}
	}
	return out
}

// ReadFile loads a suite from a path on disk, or a built-in or uploaded one by name.
func (m *Module) ReadFile(ctx context.Context, org int64, arg string) (*Suite, error) {
	if strings.ContainsAny(arg, "/\\.") {
		src, err := os.ReadFile(arg)
		if err != nil {
			return nil, err
		}
		return m.Load(ctx, org, filepath.Base(arg), src)
	}
	return m.Find(ctx, org, arg)
}

// Catalogue lists the built-in suites and those uploaded in org.
func (m *Module) Catalogue(ctx context.Context, org int64) ([]Summary, error) {
	var out []Summary
	add := func(name string, builtin bool) {
		sum := Summary{Builtin: builtin}
		s, err := m.Find(ctx, org, name)
		if err != nil {
			sum.Name, sum.Title, sum.Problems = name, name, err
			var inv *Invalid
			if errors.As(err, &inv) {
				for _, p := range inv.Problems {
					if p.Key == "suites.error.modules_missing" {
						sum.Missing = strings.Split(fmt.Sprint(p.Args[1]), ", ")
					}
				}
			}
			_, src, _ := m.source(ctx, org, name)
			var h Header
			if yamlUnmarshal(src, &h) == nil && h.Title != "" {
				sum.Header = h
			}
		} else {
			sum.Header = s.Header
		}
		out = append(out, sum)
	}
	for _, n := range builtinNames() {
		add(n, true)
	}
	rows, err := m.db.Read().QueryContext(ctx, `SELECT name FROM suites_uploads WHERE org_id = ? ORDER BY name`, org)
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		add(n, false)
	}
	return out, rows.Err()
}
