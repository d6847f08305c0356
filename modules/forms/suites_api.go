package forms

import "context"

// Read access for the suites module, which installs and exports forms as suite items: the
// organisation's forms, and a form's latest version with whether it is the published one.

// Forms lists the organisation's forms, published or not.
func (m *Module) Forms(ctx context.Context, orgID int64) ([]Form, error) {
	return listForms(ctx, m.db.Read(), orgID, false)
}

// Latest returns a form and its latest version (the draft being edited, or the published
// one when no draft follows it). A missing form is an errs.NotFound error.
func (m *Module) Latest(ctx context.Context, orgID int64, key string) (Form, Version, error) {
	f, err := getForm(ctx, m.db.Read(), orgID, key)
	if err != nil {
		return f, Version{}, err
	}
	v, err := getVersion(ctx, m.db.Read(), f.ID, 0)
	return f, v, err
}
