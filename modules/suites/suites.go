// Package suites installs ready-made services from suite files: declarative, versioned
// YAML documents saying which modules a service needs and what to create — units, roles,
// workflows, sites, pages, news… — with references by stable keys. Applying is idempotent:
// each item a suite created is recorded with content hashes, so applying again changes
// nothing, a newer version updates what it created, and whatever the town changed by hand
// is reported as a conflict, never overwritten. Sections come from modules through the
// kernel.PointSuiteSection extension point; this package carries adapters for the kernel's
// identity part, the workflow engine, the portal, forms and appointments. It also exports a town's services as
// a suite file, serves a back-office catalogue, and contributes `parvis doctor`.
package suites

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/audit"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/modules/appointments"
	"parvis.org/parvis/modules/forms"
	"parvis.org/parvis/modules/portal"
	"parvis.org/parvis/modules/workflow"
)

// ID of the module.
const ID = "suites"

// PermManage lets an agent install, upload and export suites.
const PermManage = "suites.manage"

func init() { kernel.Register(&Module{}) }

//go:embed migrations templates locales builtin
var files embed.FS

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err)
	}
	return f
}

// Module is the suites module.
type Module struct {
	env  *kernel.Env
	db   *store.DB
	log  *slog.Logger
	auth *auth.Store

	mu  sync.RWMutex
	reg *registry
}

var (
	_ kernel.Module      = (*Module)(nil)
	_ kernel.Provisioner = (*Module)(nil)
	_ kernel.Declarer    = (*Module)(nil)
	_ kernel.Assembler   = (*Module)(nil)
	_ kernel.Starter     = (*Module)(nil)
	_ kernel.Commander   = (*Module)(nil)
)

// Info implements kernel.Module.
func (*Module) Info() kernel.Info {
	return kernel.Info{ID: ID, Version: "0.1.0", Title: "suites.title", New: func() kernel.Module { return &Module{} }}
}

// Provision keeps the kernel's services.
func (m *Module) Provision(ctx context.Context, env *kernel.Env) error {
	m.env, m.db, m.log = env, env.DB, env.Log
	m.auth = &auth.Store{DB: env.DB}
	return nil
}

func (m *Module) now() time.Time { return m.env.Clock.Now().UTC().Truncate(time.Microsecond) }

// sections are the adapters this module contributes, for the modules compiled in.
func (m *Module) sections() []kernel.Extension {
	var secs []Section
	secs = append(secs, &settingsSection{m: m}, &unitsSection{m: m}, &rolesSection{m: m}, &agentsSection{m: m})
	if wf, ok := kernel.Service[workflow.Engine](m.env); ok {
		secs = append(secs, &workflowsSection{m: m, wf: wf})
	}
	if p, ok := kernel.Service[*portal.Module](m.env); ok {
		secs = append(secs, &sitesSection{m: m, p: p}, &pagesSection{m: m, p: p}, &newsSection{m: m, p: p})
	}
	out := make([]kernel.Extension, len(secs))
	for i, s := range secs {
		out[i] = kernel.Extension{Point: kernel.PointSuiteSection, Value: s}
	}
	return out
}

// adapters are the sections over modules that publish no service of their own: forms and
// appointments are found through the workflow resource types they contribute, whose
// provider is the module itself.
func (m *Module) adapters(all []kernel.Declared) ([]Section, error) {
	rts, err := kernel.Contributions[workflow.ResourceType](all, workflow.PointResourceType)
	if err != nil {
		return nil, err
	}
	var out []Section
	for _, rt := range rts {
		switch p := rt.Provider.(type) {
		case *forms.Module:
			out = append(out, &formsSection{m: m, f: p})
		case *appointments.Module:
			out = append(out, &meetingPointsSection{m: m, a: p}, &servicesSection{m: m, a: p})
		}
	}
	return out, nil
}

// Declare lists what the module brings.
func (m *Module) Declare() kernel.Parts {
	h := func(f http.HandlerFunc) http.Handler { return f }
	return kernel.Parts{
		Migrations:  sub("migrations"),
		Templates:   sub("templates"),
		Locales:     sub("locales"),
		Permissions: []kernel.Permission{{Name: PermManage, Title: "suites.perm.manage"}},
		Routes: []kernel.Route{
			{Area: kernel.Public, Method: "GET", Pattern: "/api/suites/schema.json", Handler: h(m.serveSchema)},
			{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/suites", Perm: PermManage, Handler: h(m.catalogue)},
			{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/suites/plan", Perm: PermManage, Handler: h(m.preview)},
			{Area: kernel.BackOffice, Method: "POST", Pattern: "/admin/suites/install", Perm: PermManage, Handler: h(m.install)},
			{Area: kernel.BackOffice, Method: "POST", Pattern: "/admin/suites/upload", Perm: PermManage, Handler: h(m.upload)},
			{Area: kernel.BackOffice, Method: "POST", Pattern: "/admin/suites/export", Perm: PermManage, Handler: h(m.exportForm)},
		},
		Menu:       []kernel.MenuItem{{Section: "kernel.menu.admin", Title: "suites.menu", Path: "/admin/suites", Perm: PermManage, Order: 870}},
		Extensions: m.sections(),
	}
}

// Assemble collects every module's sections and builds the schema.
func (m *Module) Assemble(all []kernel.Declared) error {
	secs, err := kernel.Contributions[Section](all, kernel.PointSuiteSection)
	if err != nil {
		return err
	}
	more, err := m.adapters(all)
	if err != nil {
		return err
	}
	secs = append(secs, more...)
	reg, err := newRegistry(all, secs, func(name string) bool {
		_, err := m.Find(context.Background(), 0, name)
		return err == nil
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.reg = reg
	m.mu.Unlock()
	return nil
}

func (m *Module) registry() *registry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.reg
}

// Start applies the suite named by --suite / PARVIS_SUITE to the default organisation.
// Applying is idempotent, so doing it at every start is safe; conflicts are logged.
func (m *Module) Start(ctx context.Context) error {
	name := m.env.Config.Suite
	if name == "" {
		return nil
	}
	ctx = audit.WithActor(ctx, "suite:"+name)
	org, err := m.auth.DefaultOrgID(ctx, m.db.Read())
	if err != nil {
		return err
	}
	ctx = audit.WithOrg(ctx, org)
	s, err := m.Find(ctx, org, name)
	if err != nil {
		return fmt.Errorf("suite %s: %s", name, m.describe("en", err))
	}
	plan, err := m.Apply(ctx, org, s, false)
	if err != nil {
		return fmt.Errorf("suite %s: %s", name, m.describe("en", err))
	}
	m.log.Info("suite applied", "suite", name, "version", s.Version, "created", plan.Count(Create), "updated", plan.Count(Update),
		"unchanged", plan.Count(Unchanged), "conflicts", plan.Count(Conflict))
	for _, st := range plan.Steps {
		if st.Action == Conflict {
			m.log.Warn("suite item left as the town has it", "suite", st.Suite, "section", st.Section, "key", st.Key,
				"reason", m.env.I18n.T("en", st.Reason, "suite", st.Other))
		}
	}
	return nil
}

// serviceOf fetches a service another module publishes.
func serviceOf[T any](m *Module) (T, bool) { return kernel.Service[T](m.env) }
