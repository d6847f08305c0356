package forms

import (
	"context"
	"strconv"

	"parvis.org/parvis/kernel"
)

// formResources lists the organisation's forms for the role editor: the forms'
// permissions may be granted on one form (kernel.PointResources).
type formResources struct{ m *Module }

func (formResources) ResourceType() string  { return "form" }
func (formResources) ResourceTitle() string { return "forms.resource" }

func (r formResources) Resources(ctx context.Context, orgID int64) ([]kernel.ResourceItem, error) {
	forms, err := listForms(ctx, r.m.db.Read(), orgID, false)
	if err != nil {
		return nil, err
	}
	out := make([]kernel.ResourceItem, 0, len(forms))
	for _, f := range forms {
		out = append(out, kernel.ResourceItem{ID: strconv.FormatInt(f.ID, 10), Title: f.Title})
	}
	return out, nil
}
