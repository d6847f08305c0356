package workflow

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"github.com/riverqueue/river"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/citizen"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

func init() { kernel.Register(&Module{}) }

//go:embed migrations templates locales mail partials
var files embed.FS

// Module is the workflow module.
type Module struct {
	e       *engine
	history *template.Template
}

var (
	_ kernel.Module      = (*Module)(nil)
	_ kernel.Provisioner = (*Module)(nil)
	_ kernel.Declarer    = (*Module)(nil)
	_ kernel.Assembler   = (*Module)(nil)
)

// Info implements kernel.Module.
func (*Module) Info() kernel.Info {
	return kernel.Info{ID: ID, Version: "1.0.0", Title: "workflow.title", New: func() kernel.Module { return &Module{} }}
}

// Provision builds the engine, publishes it and adds its job workers.
func (m *Module) Provision(_ context.Context, env *kernel.Env) error {
	e := &engine{db: env.DB, clock: env.Clock, log: env.Log, auth: env.Auth, audit: env.Audit, jobs: env.Jobs,
		mail: env.Mail, i18n: env.I18n, views: env.Views, client: &http.Client{Timeout: 20 * time.Second},
		types: map[string]TaskType{}, rtypes: map[string]ResourceType{}, perms: map[string]bool{}}
	e.dir, _ = kernel.Service[auth.Directory](env)
	if e.clock == nil {
		e.clock = kernel.SystemClock{}
	}
	if env.Config != nil {
		e.baseURL = env.Config.BaseURL
	}
	m.e = e
	if env.Workers != nil {
		river.AddWorker(env.Workers, &timerWorker{e: e})
		river.AddWorker(env.Workers, &deliverWorker{e: e})
	}
	t, err := template.New("history").Funcs(template.FuncMap{"T": func(string, ...any) string { return "" },
		"when": func(time.Time) string { return "" }, "iso": func(time.Time) string { return "" }}).
		ParseFS(files, "partials/history.html")
	if err != nil {
		return fmt.Errorf("workflow: history partial: %w", err)
	}
	m.history = t
	kernel.Provide[Engine](env, &published{engine: e, m: m})
	return nil
}

// Engine returns the engine (for tests and the module's own handlers).
func (m *Module) Engine() Engine { return &published{engine: m.e, m: m} }

// RunDueTimers fires the delayed automatic actions that are due by the engine's clock and
// were not fired yet (the scheduled jobs normally do it; operators and tests may call it).
func (m *Module) RunDueTimers(ctx context.Context) (int, error) { return m.e.RunDueTimers(ctx) }

// Assemble collects the task types and resource types other modules contribute, and the
// permission names actions may require.
func (m *Module) Assemble(all []kernel.Declared) error {
	contributed, err := kernel.Contributions[TaskType](all, kernel.PointWorkflowTask)
	if err != nil {
		return err
	}
	for _, tt := range append(builtinTasks(), contributed...) {
		if _, dup := m.e.types[tt.Name()]; dup {
			return fmt.Errorf("workflow task type %q contributed twice", tt.Name())
		}
		m.e.types[tt.Name()] = tt
	}
	rts, err := kernel.Contributions[ResourceType](all, PointResourceType)
	if err != nil {
		return err
	}
	for _, rt := range rts {
		if _, dup := m.e.rtypes[rt.Name]; dup {
			return fmt.Errorf("workflow resource type %q contributed twice", rt.Name)
		}
		if rt.Name == "" || rt.Provider == nil {
			return errors.New("workflow resource type without a name or provider")
		}
		m.e.rtypes[rt.Name] = rt
	}
	for _, d := range all {
		for _, p := range d.Parts.Permissions {
			m.e.perms[p.Name] = true
		}
	}
	return nil
}

func sub(dir string) fs.FS { f, _ := fs.Sub(files, dir); return f }

// Declare lists what the module brings.
func (m *Module) Declare() kernel.Parts {
	return kernel.Parts{
		Migrations: sub("migrations"),
		Templates:  sub("templates"),
		Locales:    sub("locales"),
		Mail:       sub("mail"),
		Permissions: []kernel.Permission{
			{Name: PermManage, Title: "workflow.perm.manage"},
			{Name: PermInbox, Title: "workflow.perm.inbox"},
			{Name: PermAct, Title: "workflow.perm.act"},
			{Name: PermDecide, Title: "workflow.perm.decide"},
		},
		Routes: m.routes(),
		Menu: []kernel.MenuItem{
			{Section: "kernel.menu.services", Title: "workflow.menu.inbox", Path: "/admin/workflow/inbox", Perm: PermInbox, Order: 300},
			{Section: "kernel.menu.admin", Title: "workflow.menu.workflows", Path: "/admin/workflows", Perm: PermManage, Order: 600},
			{Section: "kernel.menu.admin", Title: "workflow.menu.endpoints", Path: "/admin/workflow/endpoints", Perm: PermManage, Order: 610},
		},
		Extensions: []kernel.Extension{
			{Point: kernel.PointCitizenData, Value: citizen.DataProvider(citizenData{})},
		},
	}
}

// citizenData is the module's share of a citizen's personal data. The requests a workflow
// tracks are exported by the modules that own them (forms, appointments); when the account
// is deleted, the tracked requests lose their link to it, as the owners' copies do (an
// account ID may be given again to someone else). The contact address stays with the
// request, as its answers do, until the owner's retention delay anonymises both.
type citizenData struct{}

// Export implements citizen.DataProvider: nothing of the module's own.
func (citizenData) Export(context.Context, int64) (any, error) { return nil, nil }

// Delete implements citizen.DataProvider.
func (citizenData) Delete(ctx context.Context, tx *store.Tx, citizenID int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE workflow_resources SET citizen_id = 0 WHERE citizen_id = ?`, citizenID)
	return err
}

// published adds what needs the module (the history partial) to the engine.
type published struct {
	*engine
	m *Module
}

// HistoryHTML implements Engine.
func (p *published) HistoryHTML(r *http.Request, ref Ref, public bool) (template.HTML, error) {
	evs, err := p.History(r.Context(), ref, public)
	if err != nil {
		return "", err
	}
	return p.m.renderHistory(r, evs, public)
}

// HistoryHTML on the bare engine has no partial; the published value is what modules get.
func (e *engine) HistoryHTML(*http.Request, Ref, bool) (template.HTML, error) {
	return "", errors.New("workflow: HistoryHTML needs the module")
}

func (m *Module) renderHistory(r *http.Request, evs []Event, public bool) (template.HTML, error) {
	e := m.e
	lang := i18n.Default
	if e.views != nil && e.views.Lang != nil {
		lang = e.views.Lang(r)
	}
	loc := time.UTC
	if e.views != nil && e.views.Location != nil {
		loc = e.views.Location
	}
	t, err := m.history.Clone()
	if err != nil {
		return "", err
	}
	t.Funcs(template.FuncMap{
		"T": func(key string, args ...any) string {
			if e.i18n == nil {
				return key
			}
			return e.i18n.T(lang, key, args...)
		},
		"when": func(at time.Time) string {
			at = at.In(loc)
			return web.FormatDate(lang, at) + " " + at.Format("15:04")
		},
		"iso": func(at time.Time) string { return at.Format(time.RFC3339) },
	})
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "workflow-history", map[string]any{"Events": evs, "Public": public}); err != nil {
		return "", fmt.Errorf("history panel: %w", err)
	}
	return template.HTML(b.String()), nil
}
