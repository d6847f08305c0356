package portal

import (
	"context"
	"strconv"

	"parvis.org/parvis/kernel"
)

// siteResources lists the organisation's sites for the role editor: the portal's
// permissions may be granted on one site (kernel.PointResources).
type siteResources struct{ m *Module }

func (siteResources) ResourceType() string  { return "site" }
func (siteResources) ResourceTitle() string { return "portal.resource" }

func (r siteResources) Resources(_ context.Context, orgID int64) ([]kernel.ResourceItem, error) {
	var out []kernel.ResourceItem
	for _, s := range r.m.st.Load().sites {
		if s.OrgID == orgID {
			out = append(out, kernel.ResourceItem{ID: strconv.FormatInt(s.ID, 10), Title: s.Name})
		}
	}
	return out, nil
}
