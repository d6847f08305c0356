package forms

import (
	"context"
	"embed"
	"fmt"
	"strings"

	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/modules/workflow"
)

// The two examples shipped: definition bundles (a form and its workflow), so the suites module
// can install them too.
//
//go:embed examples/*.yaml
var examples embed.FS

// Example returns a shipped bundle: "bulky" (bulky-item pickup) or "terrace" (café-terrace
// permit, with a correction loop, an authorisation PDF and acceptance after silenceDays of
// silence; 0 keeps the default 60 days).
func Example(name string, silenceDays int) ([]byte, error) {
	file := map[string]string{"bulky": "examples/bulky.yaml", "terrace": "examples/terrace.yaml"}[name]
	if file == "" {
		return nil, fmt.Errorf("forms: no example %q", name)
	}
	b, err := examples.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if silenceDays > 0 {
		b = []byte(strings.Replace(string(b), "delay: 60d", fmt.Sprintf("delay: %dd", silenceDays), 1))
	}
	return b, nil
}

// InstallExamples imports and publishes both examples in organisation orgID (0: the first)
// when it has no form yet. routes optionally routes bulky-item requests by postcode prefix to
// units ("75011" → unit id); others go to defaultUnit.
func (m *Module) InstallExamples(ctx context.Context, orgID int64, routes map[string]int64, defaultUnit int64) error {
	if orgID == 0 {
		if err := m.db.Read().QueryRowContext(ctx, `SELECT MIN(id) FROM auth_orgs`).Scan(&orgID); err != nil {
			return err
		}
	}
	var n int
	if err := m.db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM forms_forms WHERE org_id = ?`, orgID).Scan(&n); err != nil || n > 0 {
		return err
	}
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		for _, name := range []string{"bulky", "terrace"} {
			b, err := Example(name, 0)
			if err != nil {
				return err
			}
			bundle, err := ParseBundle(b, "yaml")
			if err != nil {
				return err
			}
			if name == "bulky" && (len(routes) > 0 || defaultUnit != 0) {
				def, err := workflow.ParseDefinition(bundle.Workflow, "json")
				if err != nil {
					return err
				}
				def.Routing = &workflow.Routing{DefaultUnit: defaultUnit}
				for prefix, unit := range routes {
					def.Routing.Rules = append(def.Routing.Rules, workflow.Rule{When: workflow.Condition{Field: "adresse_postcode", Op: "prefix", Value: prefix}, Unit: unit})
				}
				if bundle.Workflow, err = def.Marshal("json"); err != nil {
					return err
				}
			}
			j, err := bundleJSON(bundle)
			if err != nil {
				return err
			}
			if _, err := m.ImportForm(ctx, tx, orgID, j, "json"); err != nil {
				return fmt.Errorf("example %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range []string{"encombrants", "terrasse"} {
		if _, err := m.Publish(ctx, orgID, k); err != nil {
			return err
		}
	}
	return nil
}
