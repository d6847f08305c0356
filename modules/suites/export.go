package suites

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/goccy/go-yaml"

	"parvis.org/parvis/kernel/errs"
)

func yamlUnmarshal(b []byte, v any) error { return yaml.Unmarshal(b, v) }

// ExportOptions choose what Export writes.
type ExportOptions struct {
	// Only lists the sections to export (the sections they refer to come along); empty means
	// every section except those holding personal data (agents).
	Only                              []string
	Name, Version, Title, Description string
}

// Export writes org's services as a suite file: keys are those the suites that created
// the items gave them, or derived from names; no ids, no personal data, no secrets.
func (m *Module) Export(ctx context.Context, org int64, opt ExportOptions) ([]byte, error) {
	reg := m.registry()
	want := map[string]bool{}
	var add func(k string) error
	add = func(k string) error {
		sec := reg.sections[k]
		if sec == nil {
			return errs.New(errs.Invalid, "suites.error.unknown_section", "section", k, "known", fmt.Sprint(reg.sectionKeys()))
		}
		if want[k] {
			return nil
		}
		want[k] = true
		for _, n := range sec.Needs() {
			if reg.sections[n] != nil {
				if err := add(n); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, k := range opt.Only {
		if err := add(k); err != nil {
			return nil, err
		}
	}
	if len(opt.Only) == 0 {
		for _, k := range reg.sectionKeys() {
			if !personal[k] {
				want[k] = true
			}
		}
	}
	recs, err := m.records(ctx, m.db.Read(), org)
	if err != nil {
		return nil, err
	}
	res := newResolver(recs)
	lists := map[string][]Resource{}
	// Keys first, for every section, so references resolve whatever the order.
	for _, k := range reg.sectionKeys() {
		if !want[k] {
			continue
		}
		list, err := reg.sections[k].List(ctx, org)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", k, err)
		}
		sort.Slice(list, func(a, b int) bool {
			return id64(list[a].ID) < id64(list[b].ID) || list[a].ID < list[b].ID && id64(list[a].ID) == id64(list[b].ID)
		})
		used := map[string]bool{}
		for _, r := range list {
			if key := res.Key(k, r.ID); key != "" {
				used[key] = true
			}
		}
		for _, r := range list {
			if res.Key(k, r.ID) != "" {
				continue
			}
			key := r.Key
			for n := 2; used[key]; n++ {
				key = r.Key + "-" + strconv.Itoa(n)
			}
			used[key] = true
			res.set(k, key, r.ID)
		}
		lists[k] = list
	}
	if opt.Name == "" {
		opt.Name = "export"
	}
	if opt.Version == "" {
		opt.Version = "1.0.0"
	}
	if opt.Title == "" {
		opt.Title = opt.Name
	}
	doc := yaml.MapSlice{{Key: "format", Value: Format}, {Key: "name", Value: opt.Name}, {Key: "version", Value: opt.Version}, {Key: "title", Value: opt.Title}}
	if opt.Description != "" {
		doc = append(doc, yaml.MapItem{Key: "description", Value: opt.Description})
	}
	mods := map[string]bool{}
	var body yaml.MapSlice
	for _, k := range reg.sectionKeys() {
		if !want[k] || len(lists[k]) == 0 {
			continue
		}
		mods[reg.sections[k].Module()] = true
		var items []yaml.MapSlice
		for _, r := range lists[k] {
			data, err := reg.sections[k].Read(ctx, org, r.ID, res)
			if err != nil {
				return nil, fmt.Errorf("export %s %s: %w", k, r.ID, err)
			}
			items = append(items, ordered(res.Key(k, r.ID), data))
		}
		sort.Slice(items, func(a, b int) bool { return items[a][0].Value.(string) < items[b][0].Value.(string) })
		body = append(body, yaml.MapItem{Key: k, Value: items})
	}
	var req []string
	for mod := range mods {
		req = append(req, mod)
	}
	sort.Strings(req)
	if len(req) > 0 {
		doc = append(doc, yaml.MapItem{Key: "requires", Value: req})
	}
	doc = append(doc, body...)
	return yaml.MarshalWithOptions(doc, yaml.IndentSequence(true), yaml.UseLiteralStyleIfMultiline(true))
}

// ordered writes an item with its key first and the other fields sorted.
func ordered(key string, data map[string]any) yaml.MapSlice {
	out := yaml.MapSlice{{Key: "key", Value: key}}
	names := make([]string, 0, len(data))
	for k := range data {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		out = append(out, yaml.MapItem{Key: k, Value: sortedValue(data[k])})
	}
	return out
}

// sortedValue turns nested maps into sorted MapSlices so the output never depends on map
// iteration order.
func sortedValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		names := make([]string, 0, len(x))
		for k := range x {
			names = append(names, k)
		}
		sort.Strings(names)
		out := yaml.MapSlice{}
		for _, k := range names {
			out = append(out, yaml.MapItem{Key: k, Value: sortedValue(x[k])})
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = sortedValue(e)
		}
		return out
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	}
	return v
}
