package kernel

import (
	"context"
	"fmt"
)

// Well-known extension points. The module that owns a point defines the value type it
// expects; the kernel defines the types of points several modules share.
const (
	// PointCatalogue: CatalogueEntry values, the citizen services listed by the portal.
	PointCatalogue = "catalogue.service"
	// PointPortlet: portlet types (defined by the portal).
	PointPortlet = "portal.portlet"
	// PointWorkflowTask: workflow task types (defined by the workflow engine).
	PointWorkflowTask = "workflow.task"
	// PointSuiteSection: sections of suite files (defined by the suites module).
	PointSuiteSection = "suite.section"
	// PointCitizenData: personal-data providers for export and deletion (kernel.citizen).
	PointCitizenData = "citizen.data"
	// PointCitizenSpace: SpaceLink values, the pages a module adds to a citizen's space
	// ("my appointments", "my requests"), listed on /compte.
	PointCitizenSpace = "citizen.space"
	// PointResources: ResourceSource values, the resources of a type that roles may be
	// granted on one by one in the back office (a form, a site, a meeting point).
	PointResources = "kernel.resources"
)

// ResourceSource lists an organisation's resources of one type, the type its module's
// permissions declare (Permission.ResourceType), so that the role editor can grant them on
// one resource.
type ResourceSource interface {
	// ResourceType is the type ("form"), as in Permission.ResourceType.
	ResourceType() string
	// ResourceTitle is the locale key of the type's name ("Form").
	ResourceTitle() string
	// Resources lists the organisation's resources of the type, ordered for display; ID
	// is what Resource.ID carries in permission checks.
	Resources(ctx context.Context, orgID int64) ([]ResourceItem, error)
}

// ResourceItem is one resource a role may be granted on.
type ResourceItem struct {
	ID, Title string
}

// SpaceLink is a page of the citizen's space contributed by a module.
type SpaceLink struct {
	Title string // locale key
	Hint  string // locale key, optional
	Path  string
	Order int
}

// CatalogueEntry is a citizen service a module offers (a form, an appointment service,
// street-issue reporting…), listed and searched by the portal's service catalogue.
type CatalogueEntry struct {
	Key      string // stable key, "example.hello"
	Title    string // locale key
	Summary  string // locale key
	Path     string // where the service starts
	Keywords []string
}

// CatalogueSource lists entries that change at run time (forms published by
// administrators): put one as the Value of a PointCatalogue extension.
type CatalogueSource interface {
	Entries(ctx context.Context, orgID int64) ([]CatalogueEntry, error)
}

// Contributions returns the values contributed to point, checking each is a T.
func Contributions[T any](all []Declared, point string) ([]T, error) {
	var out []T
	for _, d := range all {
		for _, e := range d.Parts.Extensions {
			if e.Point != point {
				continue
			}
			v, ok := e.Value.(T)
			if !ok {
				return nil, fmt.Errorf("module %s contributes a %T to %s, which expects a %T", d.ID, e.Value, point, *new(T))
			}
			out = append(out, v)
		}
	}
	return out, nil
}
