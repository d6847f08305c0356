package suites

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// Back-office pages: the catalogue (built-in and uploaded suites), the dry-run preview
// with its install button, uploads and exports.

func (m *Module) serveSchema(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/schema+json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(m.registry().schemaDoc)
}

type catalogueRow struct {
	Summary
	Installed string
}

type catalogueData struct {
	Suites   []catalogueRow
	Sections []option
}

func (m *Module) reqLang(r *http.Request) string {
	if m.env.Views != nil && m.env.Views.Lang != nil {
		return m.env.Views.Lang(r)
	}
	return m.lang()
}

func (m *Module) catalogue(w http.ResponseWriter, r *http.Request) {
	m.showCatalogue(w, r, web.NewForm(nil), http.StatusOK)
}

func (m *Module) showCatalogue(w http.ResponseWriter, r *http.Request, f *web.Form, status int) {
	a := kernel.AgentFrom(r.Context())
	cat, err := m.Catalogue(r.Context(), a.OrgID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	d := catalogueData{}
	for _, s := range cat {
		inst, _ := m.installed(r.Context(), m.db.Read(), a.OrgID, s.Name)
		d.Suites = append(d.Suites, catalogueRow{Summary: s, Installed: inst})
	}
	lang := m.reqLang(r)
	for _, k := range m.registry().sectionKeys() {
		d.Sections = append(d.Sections, option{Value: k, Label: k, Hint: m.env.I18n.T(lang, "suites.section."+k)})
	}
	m.env.Views.Render(w, r, web.Page{Name: "suites/catalogue.html", Layout: "backoffice", Title: "suites.catalogue.title",
		Status: status, Form: f, Data: d})
}

type planData struct {
	Suite *Suite
	Steps []Step
	Plan  *Plan
	Done  bool
}

func (m *Module) preview(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	name := r.URL.Query().Get("name")
	s, err := m.Find(r.Context(), a.OrgID, name)
	if err != nil {
		m.showProblems(w, r, err)
		return
	}
	plan, err := m.Plan(r.Context(), a.OrgID, s)
	if err != nil {
		m.showProblems(w, r, err)
		return
	}
	m.env.Views.Render(w, r, web.Page{Name: "suites/plan.html", Layout: "backoffice", Title: "suites.plan.title",
		Data: planData{Suite: s, Plan: plan, Steps: plan.Steps, Done: r.URL.Query().Get("done") == "1"}})
}

func (m *Module) install(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	f, err := web.ParseForm(r)
	if err != nil {
		m.formError(w, r, err)
		return
	}
	s, err := m.Find(r.Context(), a.OrgID, f.Get("name"))
	if err != nil {
		m.showProblems(w, r, err)
		return
	}
	if _, err := m.Apply(r.Context(), a.OrgID, s, false); err != nil {
		m.showProblems(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/suites/plan?name="+s.Name+"&done=1", http.StatusSeeOther)
}

// maxUpload bounds a suite file.
const maxUpload = 1 << 20

func (m *Module) upload(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	f, err := web.ParseForm(r)
	if err != nil {
		m.formError(w, r, err)
		return
	}
	doc := []byte(r.PostFormValue("document"))
	file := "upload.yaml"
	if fh, hdr, err := r.FormFile("file"); err == nil {
		defer fh.Close()
		b, err := io.ReadAll(io.LimitReader(fh, maxUpload+1))
		if err == nil && len(b) > 0 {
			doc, file = b, hdr.Filename
		}
	}
	switch {
	case len(strings.TrimSpace(string(doc))) == 0:
		f.Fail("document", "suites.error.empty")
	case len(doc) > maxUpload:
		f.Fail("document", "suites.error.too_large")
	}
	var s *Suite
	if f.Valid() {
		if s, err = m.Load(r.Context(), a.OrgID, file, doc); err != nil {
			m.failForm(f, r, err)
		} else if _, _, err := m.source(r.Context(), a.OrgID, s.Name); err == nil && isBuiltin(s.Name) {
			f.Fail("document", "suites.error.builtin_name", "name", s.Name)
		}
	}
	if !f.Valid() {
		m.showCatalogue(w, r, f, http.StatusBadRequest)
		return
	}
	err = m.db.InTx(r.Context(), func(tx *store.Tx) error {
		_, err := tx.ExecContext(r.Context(), `INSERT INTO suites_uploads (org_id, name, version, title, description, document, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (org_id, name) DO UPDATE SET version = excluded.version, title = excluded.title, description = excluded.description,
			document = excluded.document, uploaded_at = excluded.uploaded_at`, a.OrgID, s.Name, s.Version, s.Title, s.Description, string(doc), m.now())
		if err != nil {
			return err
		}
		return m.audit(r.Context(), tx, kernel.AuditEntry{Action: "suites.upload", ResourceType: "suite", ResourceID: s.Name,
			After: map[string]any{"version": s.Version, "title": s.Title}})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/suites/plan?name="+s.Name, http.StatusSeeOther)
}

// option is a choice of a checkbox list.
type option struct{ Value, Label, Hint string }

var keyRe = regexp.MustCompile(KeyPattern)

func isBuiltin(name string) bool {
	for _, n := range builtinNames() {
		if n == name {
			return true
		}
	}
	return false
}

func (m *Module) exportForm(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	f, err := web.ParseForm(r)
	if err != nil {
		m.formError(w, r, err)
		return
	}
	name := f.Get("export_name")
	if name == "" {
		name = "export"
	}
	if !keyRe.MatchString(name) {
		f.Fail("export_name", "suites.error.name")
		m.showCatalogue(w, r, f, http.StatusBadRequest)
		return
	}
	only := f.Values["sections"]
	for _, k := range only {
		if m.registry().sections[k] == nil {
			f.Fail("sections", "suites.error.unknown_section", "section", k, "known", strings.Join(m.registry().sectionKeys(), ", "))
		}
	}
	if !f.Valid() {
		m.showCatalogue(w, r, f, http.StatusBadRequest)
		return
	}
	b, err := m.Export(r.Context(), a.OrgID, ExportOptions{Only: only, Name: name, Title: f.Get("export_title")})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	_ = m.db.InTx(r.Context(), func(tx *store.Tx) error {
		return m.audit(r.Context(), tx, kernel.AuditEntry{Action: "suites.export", ResourceType: "suite", ResourceID: name,
			After: map[string]any{"sections": only}})
	})
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+".yaml"))
	_, _ = w.Write(b)
}

// failForm puts a suite's problems on the form, each naming its file, line and path.
func (m *Module) failForm(f *web.Form, r *http.Request, err error) {
	var inv *Invalid
	if errors.As(err, &inv) {
		lang := m.reqLang(r)
		for _, p := range inv.Problems {
			f.Fail("document", "suites.error.at", "file", p.File, "line", p.Line, "col", p.Col, "path", p.Path,
				"message", m.env.I18n.T(lang, p.Key, p.Args...))
		}
		return
	}
	if de, ok := errs.As(err); ok {
		f.Fail("document", de.Key, de.Args...)
		return
	}
	f.Fail("document", "suites.error.apply", "message", err.Error())
}

// showProblems shows the catalogue with the problems of a suite (400), or 404 for an
// unknown one.
func (m *Module) showProblems(w http.ResponseWriter, r *http.Request, err error) {
	if errs.CodeOf(err) == errs.NotFound {
		m.env.Views.Render(w, r, web.Page{Name: "suites/catalogue.html", Layout: "backoffice", Title: "suites.catalogue.title",
			Status: http.StatusNotFound, Form: formWith(m, r, err), Data: m.catalogueDataOrEmpty(r)})
		return
	}
	var inv *Invalid
	status := http.StatusBadRequest
	if !errors.As(err, &inv) && errs.CodeOf(err) == "" {
		m.env.Log.Error("suite", "err", err)
		status = http.StatusInternalServerError
	}
	m.env.Views.Render(w, r, web.Page{Name: "suites/catalogue.html", Layout: "backoffice", Title: "suites.catalogue.title",
		Status: status, Form: formWith(m, r, err), Data: m.catalogueDataOrEmpty(r)})
}

func formWith(m *Module, r *http.Request, err error) *web.Form {
	f := web.NewForm(nil)
	m.failForm(f, r, err)
	return f
}

func (m *Module) catalogueDataOrEmpty(r *http.Request) catalogueData {
	a := kernel.AgentFrom(r.Context())
	d := catalogueData{}
	cat, _ := m.Catalogue(r.Context(), a.OrgID)
	for _, s := range cat {
		inst, _ := m.installed(r.Context(), m.db.Read(), a.OrgID, s.Name)
		d.Suites = append(d.Suites, catalogueRow{Summary: s, Installed: inst})
	}
	lang := m.reqLang(r)
	for _, k := range m.registry().sectionKeys() {
		d.Sections = append(d.Sections, option{Value: k, Label: k, Hint: m.env.I18n.T(lang, "suites.section."+k)})
	}
	return d
}

func (m *Module) formError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, web.ErrBodyTooLarge) {
		m.showProblems(w, r, errs.New(errs.Invalid, "suites.error.too_large"))
		return
	}
	m.showProblems(w, r, errs.New(errs.Invalid, "kernel.error.bad_request"))
}

func (m *Module) fail(w http.ResponseWriter, r *http.Request, err error) {
	m.env.Log.Error("suites", "err", err)
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}
