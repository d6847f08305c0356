package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// Organisation pages are for superadmins (the instance operator): they list, create and
// rename organisations and create each one's first administrator; they never show an
// organisation's content.

func (m *Module) orgs(w http.ResponseWriter, r *http.Request) {
	list, err := m.st.Orgs(r.Context())
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.render(w, r, web.Page{Name: "orgs.html", Title: "kernel.auth.orgs.title", Flash: flash(r), Data: list})
}

type orgFormData struct {
	ID        int64
	SetupLink string
	AdminMail string
}

func (m *Module) orgNew(w http.ResponseWriter, r *http.Request) {
	m.render(w, r, web.Page{Name: "org_form.html", Title: "kernel.auth.orgs.new_title", Form: web.NewForm(nil), Data: orgFormData{}})
}

func (m *Module) orgEdit(w http.ResponseWriter, r *http.Request) {
	id, ok := m.pathID(w, r, "id")
	if !ok {
		return
	}
	o, err := m.st.Org(r.Context(), m.st.DB.Read(), id)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.render(w, r, web.Page{Name: "org_form.html", Title: "kernel.auth.orgs.edit_title", Form: web.NewForm(url.Values{"name": {o.Name}}), Data: orgFormData{ID: id}})
}

func (m *Module) orgCreate(w http.ResponseWriter, r *http.Request) {
	f := m.parse(w, r)
	if f == nil {
		return
	}
	f.Require("name", "admin_email")
	f.MaxLen("name", 200)
	email := validEmail(f, "admin_email")
	page := web.Page{Name: "org_form.html", Title: "kernel.auth.orgs.new_title", Form: f, Status: http.StatusBadRequest, Data: orgFormData{}}
	if !f.Valid() {
		m.render(w, r, page)
		return
	}
	orgID, link, err := m.CreateOrg(r.Context(), f.Get("name"), email)
	if formError(f, err) {
		m.render(w, r, page)
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.render(w, r, web.Page{Name: "org_form.html", Title: "kernel.auth.orgs.edit_title", Status: http.StatusCreated,
		Form: web.NewForm(url.Values{"name": {f.Get("name")}}), Data: orgFormData{ID: orgID, SetupLink: link, AdminMail: email}})
}

// CreateOrg creates an organisation and its first administrator (without a password),
// returning the administrator's one-time setup link.
func (m *Module) CreateOrg(ctx context.Context, name, adminEmail string) (int64, string, error) {
	var id int64
	var link string
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		now := m.now()
		var err error
		if id, err = m.st.CreateOrg(ctx, tx, name, now); err != nil {
			return err
		}
		a := &AgentRecord{OrgID: id, Email: adminEmail, Name: adminEmail, Lang: m.defaultLang(), Active: true, OrgAdmin: true}
		if err := m.st.CreateAgent(ctx, tx, a, now); err != nil {
			if isConflict(err) {
				return errs.OnField(errs.Conflict, "admin_email", "kernel.auth.error.email_taken")
			}
			return err
		}
		token, err := m.st.CreateToken(ctx, tx, a.ID, purposeSetup, now, now.Add(24*time.Hour))
		if err != nil {
			return err
		}
		link = m.link("/admin/setup/" + token)
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "orgs.create", ResourceType: "org", ResourceID: fmt.Sprint(id),
			After: map[string]any{"name": name, "admin": adminEmail}})
	})
	return id, link, err
}

func (m *Module) orgUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := m.pathID(w, r, "id")
	if !ok {
		return
	}
	ctx := r.Context()
	old, err := m.st.Org(ctx, m.st.DB.Read(), id)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	f.Require("name")
	f.MaxLen("name", 200)
	if !f.Valid() {
		m.render(w, r, web.Page{Name: "org_form.html", Title: "kernel.auth.orgs.edit_title", Form: f, Status: http.StatusBadRequest, Data: orgFormData{ID: id}})
		return
	}
	err = m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.RenameOrg(ctx, tx, id, f.Get("name")); err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "orgs.update", ResourceType: "org", ResourceID: fmt.Sprint(id),
			Before: map[string]any{"name": old.Name}, After: map[string]any{"name": f.Get("name")}})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/orgs?done=saved", http.StatusSeeOther)
}
