package forms

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/citizen"
	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
	"parvis.org/parvis/modules/workflow"
)

func init() { kernel.Register(&Module{}) }

//go:embed migrations templates locales mail static
var files embed.FS

// Module is the forms module.
type Module struct {
	env    *kernel.Env
	db     *store.DB
	log    *slog.Logger
	clock  kernel.Clock
	views  *web.Views
	i18n   *i18n.Bundle
	cfg    *config.Config
	auth   kernel.Authorizer
	audit  kernel.Auditor
	jobs   kernel.Jobs
	mail   kernel.Mailer
	wf     workflow.Engine
	guests citizen.Guests
	units  auth.Directory // nil without kernel/auth: the unit filter then takes nothing

	dir     string           // where uploaded files are kept
	openapi []OpenAPI        // contributions to the API document
	hooks   []func(Response) // test probes called after commit
	defs    sync.Map         // form ID → *Definition of its published (frozen) version
}

var (
	_ kernel.Module          = (*Module)(nil)
	_ kernel.Provisioner     = (*Module)(nil)
	_ kernel.Validator       = (*Module)(nil)
	_ kernel.Declarer        = (*Module)(nil)
	_ kernel.Assembler       = (*Module)(nil)
	_ kernel.Starter         = (*Module)(nil)
	_ workflow.Corrector     = (*Module)(nil)
	_ citizen.DataProvider   = citizenData{}
	_ kernel.CatalogueSource = (*Module)(nil)
)

// Info implements kernel.Module.
func (*Module) Info() kernel.Info {
	return kernel.Info{ID: ID, Version: "1.0.0", Title: "forms.title", New: func() kernel.Module { return &Module{} }}
}

// Provision keeps the kernel's services and adds the job workers.
func (m *Module) Provision(_ context.Context, env *kernel.Env) error {
	m.env, m.db, m.log, m.clock, m.views, m.i18n, m.cfg = env, env.DB, env.Log, env.Clock, env.Views, env.I18n, env.Config
	m.auth, m.audit, m.jobs, m.mail = env.Auth, env.Audit, env.Jobs, env.Mail
	kernel.Provide[Questions](env, m.QuestionsService()) // questions_api.go
	if m.clock == nil {
		m.clock = kernel.SystemClock{}
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.cfg != nil {
		m.dir = filepath.Join(m.cfg.DataDir, "forms")
	}
	if env.Workers != nil {
		river.AddWorker(env.Workers, &sweepWorker{m: m})
		river.AddWorker(env.Workers, &receiptWorker{m: m})
	}
	return nil
}

// Validate fetches the services of other modules (provisioned in any order).
func (m *Module) Validate() error {
	var ok bool
	if m.wf, ok = kernel.Service[workflow.Engine](m.env); !ok {
		return errors.New("forms needs the workflow module")
	}
	if m.guests, ok = kernel.Service[citizen.Guests](m.env); !ok {
		return errors.New("forms needs the citizen module (kernel.citizen)")
	}
	if m.mail == nil || m.jobs == nil || m.audit == nil || m.auth == nil {
		return errors.New("forms needs the kernel's mail, jobs, audit and auth parts")
	}
	m.units, _ = kernel.Service[auth.Directory](m.env)
	m.wf.OnStateChanged(m.stateChanged)
	return nil
}

// Assemble collects the OpenAPI contributions of every module.
func (m *Module) Assemble(all []kernel.Declared) error {
	got, err := kernel.Contributions[OpenAPI](all, PointOpenAPI)
	if err != nil {
		return err
	}
	m.openapi = got
	return nil
}

// Start schedules the periodic sweep (drafts, retention) and creates the demo forms.
func (m *Module) Start(ctx context.Context) error {
	if m.cfg != nil && m.cfg.Demo && m.cfg.Suite == "" { // a suite brings its own forms
		if err := m.InstallExamples(ctx, 0, nil, 0); err != nil {
			m.log.Error("forms demo", "err", err)
		}
	}
	return m.db.InTx(ctx, func(tx *store.Tx) error { return m.scheduleSweep(ctx, tx, m.clock.Now()) })
}

func sub(dir string) fs.FS { f, _ := fs.Sub(files, dir); return f }

// Declare lists what the module brings.
func (m *Module) Declare() kernel.Parts {
	return kernel.Parts{
		Migrations: sub("migrations"),
		Templates:  sub("templates"),
		Locales:    sub("locales"),
		Mail:       sub("mail"),
		Static:     sub("static"),
		Permissions: []kernel.Permission{
			{Name: PermManage, ResourceType: "form", Title: "forms.perm.manage"},
			{Name: PermResponses, ResourceType: "form", Title: "forms.perm.responses"},
			{Name: PermSubmit, Title: "forms.perm.submit"},
		},
		Routes: m.routes(),
		Menu: []kernel.MenuItem{
			{Section: "kernel.menu.services", Title: "forms.menu.forms", Path: "/admin/forms", Perm: PermResponses, Order: 200},
		},
		Extensions: []kernel.Extension{
			{Point: kernel.PointCitizenSpace, Value: kernel.SpaceLink{Title: "forms.mine.title", Path: "/compte/demandes", Order: 10}},
			{Point: workflow.PointResourceType, Value: workflow.ResourceType{Name: ResourceType, Title: "forms.response", Provider: m}},
			{Point: kernel.PointCitizenData, Value: citizen.DataProvider(citizenData{m})},
			{Point: kernel.PointResources, Value: kernel.ResourceSource(formResources{m})},
			{Point: kernel.PointCatalogue, Value: kernel.CatalogueSource(m)},
			{Point: PointOpenAPI, Value: formsOpenAPI()},
		},
	}
}

func (m *Module) routes() []kernel.Route {
	pub := func(method, pattern string, h http.HandlerFunc) kernel.Route {
		return kernel.Route{Area: kernel.Public, Method: method, Pattern: pattern, Handler: h}
	}
	bo := func(method, pattern, perm string, h http.HandlerFunc) kernel.Route {
		return kernel.Route{Area: kernel.BackOffice, Method: method, Pattern: pattern, Perm: perm, Handler: h}
	}
	api := func(method, pattern, perm string, h http.HandlerFunc) kernel.Route {
		return kernel.Route{Area: kernel.API, Method: method, Pattern: pattern, Perm: perm, Handler: h}
	}
	return []kernel.Route{
		pub("GET", "/demarches/{form}", m.start),
		pub("POST", "/demarches/{form}", m.begin),
		pub("GET", "/demarches/{form}/etape/{step}", m.stepPage),
		pub("POST", "/demarches/{form}/etape/{step}", m.stepPost),
		pub("GET", "/demarches/{form}/recapitulatif", m.review),
		pub("POST", "/demarches/{form}/recapitulatif", m.submit),
		pub("GET", "/demarches/{form}/envoye/{ref}", m.confirmation),
		pub("POST", "/demarches/{form}/sauvegarder", m.saveForLater),
		pub("GET", "/demarches/{form}/reprendre/{token}", m.resume),
		pub("GET", "/compte/demandes/{ref}/corriger/{token}", m.correctPage),
		pub("POST", "/compte/demandes/{ref}/corriger/{token}", m.correctPost),
		pub("GET", "/compte/demandes", m.myRequests),
		pub("GET", "/compte/demandes/{ref}", m.myRequest),
		pub("POST", "/compte/demandes/{ref}", m.myMessage),
		pub("GET", "/compte/demandes/{ref}/recu.pdf", m.myReceipt),
		pub("GET", "/compte/demandes/{ref}/documents/{id}", m.myDocument),

		bo("GET", "/admin/forms", PermResponses, m.adminList),
		bo("POST", "/admin/forms", PermManage, m.adminCreate),
		bo("GET", "/admin/forms/{key}/edit", PermManage, m.adminEdit),
		bo("POST", "/admin/forms/{key}/edit", PermManage, m.adminEditPost),
		bo("GET", "/admin/forms/{key}/export", PermManage, m.adminExport),
		bo("GET", "/admin/forms/{key}/responses", PermResponses, m.adminResponses),
		bo("GET", "/admin/forms/{key}/responses.csv", PermResponses, m.exportCSV),
		bo("GET", "/admin/forms/{key}/responses.xlsx", PermResponses, m.exportXLSX),
		bo("GET", "/admin/forms/{key}/files.zip", PermResponses, m.exportZIP),
		bo("GET", "/admin/reponses/{ref}", PermResponses, m.adminResponse),
		bo("POST", "/admin/reponses/{ref}", PermResponses, m.adminMessage),
		bo("GET", "/admin/reponses/{ref}/files/{id}", PermResponses, m.adminFile),

		api("GET", "/api/openapi.json", "", m.apiDocument),
		api("GET", "/api/forms", "", m.apiListForms),
		api("GET", "/api/forms/{key}", "", m.apiGetForm),
		api("POST", "/api/forms/{key}/responses", PermSubmit, m.apiSubmit),
		api("GET", "/api/forms/{key}/responses", PermResponses, m.apiListResponses),
		api("GET", "/api/responses/{ref}", PermResponses, m.apiGetResponse),
		api("POST", "/api/responses/{ref}/actions/{action}", PermResponses, m.apiRunAction),
	}
}

// now is the clock's time in UTC, truncated as the databases store it.
func (m *Module) now() time.Time { return m.clock.Now().UTC().Truncate(time.Microsecond) }

// today is the current date in the instance's zone.
func (m *Module) today() time.Time {
	loc := time.UTC
	if m.cfg != nil && m.cfg.Location != nil {
		loc = m.cfg.Location
	}
	y, mo, d := m.clock.Now().In(loc).Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
}

func (m *Module) t(lang, key string, args ...any) string {
	if m.i18n == nil {
		return key
	}
	return m.i18n.T(lang, key, args...)
}

func (m *Module) lang(r *http.Request) string {
	if m.views != nil && m.views.Lang != nil {
		if l := m.views.Lang(r); l != "" {
			return l
		}
	}
	return i18n.Default
}

// messages fills the problems' messages in lang.
func (m *Module) messages(lang string, ps []Problem) []Problem {
	out := make([]Problem, len(ps))
	for i, p := range ps {
		if p.Key != "" {
			p.Message = m.t(lang, p.Key, p.Args...)
		}
		out[i] = p
	}
	return out
}

func errorf(format string, args ...any) error { return fmt.Errorf("forms: "+format, args...) }
