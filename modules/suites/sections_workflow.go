package suites

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/modules/workflow"
)

// workflowsSection installs workflow definitions through workflow.Engine. An item is the
// engine's own definition document (states, actions, templates, routing), with units named
// by key instead of id in routing and in actions' units.
type workflowsSection struct {
	m  *Module
	wf workflow.Engine
}

func (s *workflowsSection) Key() string     { return "workflows" }
func (s *workflowsSection) Module() string  { return "workflow" }
func (s *workflowsSection) Order() int      { return 40 }
func (s *workflowsSection) Needs() []string { return []string{"units"} }
func (s *workflowsSection) Schema() map[string]any {
	obj := map[string]any{"type": "object"}
	return object([]string{"title", "states", "actions"}, map[string]any{
		"title":     nonEmpty(),
		"states":    map[string]any{"type": "array", "minItems": 1, "items": obj},
		"actions":   arrayOf(obj),
		"templates": map[string]any{"type": "object", "additionalProperties": obj},
		"routing": map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
			"default_unit": keyRef(),
			"rules": arrayOf(map[string]any{"type": "object", "required": []string{"when", "unit"}, "additionalProperties": false,
				"properties": map[string]any{"when": obj, "unit": keyRef()}}),
		}},
	})
}

// unitRefs lists where a definition names units: (path, key, setter of the id).
func unitRefs(data map[string]any, f func(path, key string, set func(any))) {
	if rt, ok := data["routing"].(map[string]any); ok {
		if k, ok := rt["default_unit"].(string); ok && k != "" {
			f("routing.default_unit", k, func(v any) { rt["default_unit"] = v })
		}
		rules, _ := rt["rules"].([]any)
		for i, x := range rules {
			if rule, ok := x.(map[string]any); ok {
				if k, ok := rule["unit"].(string); ok {
					f(fmt.Sprintf("routing.rules[%d].unit", i), k, func(v any) { rule["unit"] = v })
				}
			}
		}
	}
	actions, _ := data["actions"].([]any)
	for i, x := range actions {
		a, ok := x.(map[string]any)
		if !ok {
			continue
		}
		units, _ := a["units"].([]any)
		for j, u := range units {
			if k, ok := u.(string); ok {
				f(fmt.Sprintf("actions[%d].units[%d]", i, j), k, func(v any) { units[j] = v })
			}
		}
	}
}

func (s *workflowsSection) Refs(it Item) []Ref {
	var out []Ref
	unitRefs(it.Data, func(path, key string, _ func(any)) {
		out = append(out, Ref{Section: "units", Key: key, Path: path})
	})
	return out
}

// definition builds the engine's definition of an item; unknown units (not created yet,
// when verifying) get the placeholder id.
func definition(it Item, r Resolver, placeholder int64) (*workflow.Definition, error) {
	data := Normalize(it.Data) // a deep copy
	var missing error
	unitRefs(data, func(path, key string, set func(any)) {
		id, ok := r.ID("units", key)
		if !ok && placeholder == 0 {
			missing = fmt.Errorf("%s: unit %q is not created yet", path, key)
		}
		if ok {
			set(id64(id))
		} else {
			set(placeholder)
		}
	})
	if missing != nil {
		return nil, missing
	}
	data["key"] = it.Key
	b, _ := json.Marshal(data)
	return workflow.ParseDefinition(b, "json")
}

func (s *workflowsSection) Check(items []Item, _ map[string][]Item) []Problem {
	var ps []Problem
	for _, it := range items {
		if _, err := definition(it, &resolver{}, 1); err != nil {
			ps = append(ps, workflowProblems(it.Path, err)...)
		}
	}
	return ps
}

func workflowProblems(path string, err error) []Problem {
	var ve *workflow.ValidationError
	if !errors.As(err, &ve) {
		return []Problem{{Path: path, Key: "suites.error.workflow", Args: []any{"detail", err.Error()}}}
	}
	var ps []Problem
	for _, p := range ve.Problems {
		pp := path
		if p.Path != "" {
			pp += "." + p.Path
		}
		ps = append(ps, Problem{Path: pp, Key: "suites.error.workflow", Args: []any{"detail", p.Message}})
	}
	return ps
}

// errVerified rolls back the transaction in which a definition was checked.
var errVerified = errors.New("verified")

// Verify runs the engine's own validation (task types, permissions, templates) in a
// transaction that is rolled back, so a bad definition stops the apply before any write.
func (s *workflowsSection) Verify(ctx context.Context, org int64, items []Item, r Resolver) []Problem {
	var ps []Problem
	for _, it := range items {
		def, err := definition(it, r, 1)
		if err == nil {
			err = s.m.db.InTx(ctx, func(tx *store.Tx) error {
				if _, err := s.wf.SaveDefinition(ctx, tx, org, def); err != nil {
					return err
				}
				return errVerified
			})
		}
		if err != nil && !errors.Is(err, errVerified) {
			ps = append(ps, workflowProblems(it.Path, err)...)
		}
	}
	return ps
}

func (s *workflowsSection) Ident(_ context.Context, _ int64, it Item, _ Resolver) string {
	return it.Key
}

func (s *workflowsSection) List(ctx context.Context, org int64) ([]Resource, error) {
	defs, err := s.wf.Definitions(ctx, org)
	if err != nil {
		return nil, err
	}
	out := make([]Resource, len(defs))
	for i, d := range defs {
		out[i] = Resource{ID: d.Key, Key: d.Key, Ident: d.Key}
	}
	return out, nil
}

func (s *workflowsSection) Read(ctx context.Context, org int64, id string, r Resolver) (map[string]any, error) {
	d, err := s.wf.Definition(ctx, org, id)
	if err != nil {
		return nil, err
	}
	data := Normalize(d)
	delete(data, "key")
	delete(data, "version")
	// Ids back to keys.
	if rt, ok := data["routing"].(map[string]any); ok {
		if v, ok := rt["default_unit"].(float64); ok {
			rt["default_unit"] = keyOf(r, "units", int64(v))
		}
		rules, _ := rt["rules"].([]any)
		for _, x := range rules {
			if rule, ok := x.(map[string]any); ok {
				if v, ok := rule["unit"].(float64); ok {
					rule["unit"] = keyOf(r, "units", int64(v))
				}
			}
		}
	}
	actions, _ := data["actions"].([]any)
	for _, x := range actions {
		if a, ok := x.(map[string]any); ok {
			units, _ := a["units"].([]any)
			for j, u := range units {
				if v, ok := u.(float64); ok {
					units[j] = keyOf(r, "units", int64(v))
				}
			}
		}
	}
	return data, nil
}

func (s *workflowsSection) Write(ctx context.Context, org int64, _ string, it Item, r Resolver) (string, error) {
	def, err := definition(it, r, 0)
	if err != nil {
		return "", err
	}
	err = s.m.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := s.wf.SaveDefinition(ctx, tx, org, def)
		return err
	})
	if errs.CodeOf(err) == errs.Invalid {
		return "", fmt.Errorf("workflow %s: %w", it.Key, err)
	}
	return it.Key, err
}
