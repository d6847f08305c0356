package appointments

import (
	"context"
	"strconv"

	"parvis.org/parvis/kernel"
)

// placeResources lists the organisation's meeting points for the role editor: the
// planning right may be granted on one meeting point (kernel.PointResources, planning.go).
type placeResources struct{ m *Module }

func (placeResources) ResourceType() string  { return "place" }
func (placeResources) ResourceTitle() string { return "appointments.resource_place" }

func (r placeResources) Resources(ctx context.Context, orgID int64) ([]kernel.ResourceItem, error) {
	places, err := r.m.Places(ctx, orgID, 0)
	if err != nil {
		return nil, err
	}
	out := make([]kernel.ResourceItem, 0, len(places))
	for _, p := range places {
		out = append(out, kernel.ResourceItem{ID: strconv.FormatInt(p.ID, 10), Title: p.Name})
	}
	return out, nil
}
