package suites

import (
	"context"
	"encoding/json"
	"errors"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/modules/forms"
)

// formsSection installs forms through the forms module's Go API. An item is the form's
// definition document (the forms module's own format: title, settings, steps…) keyed by
// the form key, naming its workflow by key, plus "published": whether citizens fill the
// latest version (true unless said otherwise) or it stays a draft.
type formsSection struct {
	m *Module
	f *forms.Module
}

func (s *formsSection) Key() string     { return "forms" }
func (s *formsSection) Module() string  { return forms.ID }
func (s *formsSection) Order() int      { return 45 }
func (s *formsSection) Needs() []string { return []string{"workflows"} }
func (s *formsSection) Schema() map[string]any {
	obj := map[string]any{"type": "object"}
	return object([]string{"title", "steps"}, map[string]any{
		"published":   map[string]any{"type": "boolean", "description": "citizens fill the form (default true); false keeps it a draft"},
		"title":       nonEmpty(),
		"description": str(),
		"workflow":    keyRef(),
		"settings":    obj,
		"steps":       map[string]any{"type": "array", "minItems": 1, "items": obj},
	})
}

func (s *formsSection) Refs(it Item) []Ref {
	if k, _ := it.Data["workflow"].(string); k != "" {
		return []Ref{{Section: "workflows", Key: k, Path: "workflow"}}
	}
	return nil
}

// published says whether an item asks for the form to be published (the default).
func published(it Item) bool {
	p, ok := it.Data["published"].(bool)
	return !ok || p
}

// formDefinition builds the forms module's definition of an item, strictly (unknown fields
// are refused by the forms module's parser).
func formDefinition(it Item) (*forms.Definition, error) {
	data := Normalize(it.Data)
	delete(data, "published")
	data["key"] = it.Key
	b, _ := json.Marshal(data)
	return forms.ParseDefinition(b, "json")
}

// formProblems places the forms module's problems under the item's path.
func formProblems(path string, err error) []Problem {
	var ve *forms.ValidationError
	if !errors.As(err, &ve) {
		return []Problem{{Path: path, Key: "suites.error.form", Args: []any{"detail", err.Error()}}}
	}
	var ps []Problem
	for _, p := range ve.Problems {
		pp := path
		if p.Path != "" {
			pp += "." + p.Path
		}
		switch {
		case p.Message != "":
			ps = append(ps, Problem{Path: pp, Key: "suites.error.form", Args: []any{"detail", p.Message}})
		case p.Key != "":
			ps = append(ps, Problem{Path: pp, Key: p.Key, Args: p.Args})
		default:
			ps = append(ps, Problem{Path: pp, Key: "suites.error.form", Args: []any{"detail", p.Code}})
		}
	}
	return ps
}

func (s *formsSection) Check(items []Item, _ map[string][]Item) []Problem {
	var ps []Problem
	for _, it := range items {
		def, err := formDefinition(it)
		if err == nil {
			err = def.Validate()
		}
		if err != nil {
			ps = append(ps, formProblems(it.Path, err)...)
		}
	}
	return ps
}

func (s *formsSection) Ident(_ context.Context, _ int64, it Item, _ Resolver) string { return it.Key }

func (s *formsSection) List(ctx context.Context, org int64) ([]Resource, error) {
	list, err := s.f.Forms(ctx, org)
	if err != nil {
		return nil, err
	}
	out := make([]Resource, len(list))
	for i, f := range list {
		out[i] = Resource{ID: f.Key, Key: f.Key, Ident: f.Key}
	}
	return out, nil
}

// isPublished: citizens fill the latest version, and the form is not closed.
func isPublished(f forms.Form, v forms.Version) bool {
	return f.Published > 0 && f.Published == v.Version && f.ClosedAt == nil
}

func (s *formsSection) Read(ctx context.Context, org int64, id string, _ Resolver) (map[string]any, error) {
	f, v, err := s.f.Latest(ctx, org, id)
	if err != nil {
		return nil, err
	}
	data := defData(v.Def)
	data["published"] = isPublished(f, v)
	return data, nil
}

// defData is a definition in suite form: no key, no version number.
func defData(d *forms.Definition) map[string]any {
	data := Normalize(d)
	delete(data, "key")
	delete(data, "version")
	return data
}

func (s *formsSection) Write(ctx context.Context, org int64, _ string, it Item, _ Resolver) (string, error) {
	def, err := formDefinition(it)
	if err != nil {
		return "", err
	}
	f, v, err := s.f.Latest(ctx, org, it.Key)
	if err != nil && errs.CodeOf(err) != errs.NotFound {
		return "", err
	}
	// Saving the same document again would only make a new, identical version.
	if err != nil || hashOf(defData(v.Def)) != hashOf(defData(def)) {
		if err := s.m.db.InTx(ctx, func(tx *store.Tx) error {
			_, err := s.f.SaveForm(ctx, tx, org, def)
			return err
		}); err != nil {
			return "", err
		}
		if f, v, err = s.f.Latest(ctx, org, it.Key); err != nil {
			return "", err
		}
	}
	switch {
	case published(it) && !isPublished(f, v):
		if _, err := s.f.Publish(ctx, org, it.Key); err != nil {
			return "", err
		}
	case !published(it) && isPublished(f, v):
		// Back to a draft: citizens stop filling it; publishing again reopens it.
		if err := s.f.Close(ctx, org, it.Key); err != nil {
			return "", err
		}
	}
	return it.Key, nil
}
