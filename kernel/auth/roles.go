package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

type rolesData struct{ Roles []Role }

func (m *Module) roles(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	list, err := m.st.Roles(r.Context(), m.st.DB.Read(), a.OrgID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.render(w, r, web.Page{Name: "roles.html", Title: "kernel.auth.roles.title", Flash: flash(r), Data: rolesData{list}})
}

type roleFormData struct {
	ID        int64
	Perms     []Option
	Scopes    []Option
	Units     []Option
	Resources []Option // "type:id", when modules list resources (kernel.PointResources)
}

// resourceOptions lists the resources a role may be granted on one by one, "type:id",
// labelled with their type.
func (m *Module) resourceOptions(r *http.Request, orgID int64) ([]Option, error) {
	var out []Option
	for _, src := range m.resources {
		items, err := src.Resources(r.Context(), orgID)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			out = append(out, Option{Value: src.ResourceType() + ":" + it.ID, Label: m.t(r, src.ResourceTitle()) + " – " + it.Title})
		}
	}
	return out, nil
}

func (m *Module) showRole(w http.ResponseWriter, r *http.Request, id int64, f *web.Form, status int) {
	a := kernel.AgentFrom(r.Context())
	d := roleFormData{ID: id}
	for _, p := range m.perms {
		if !instancePerms[p.Name] {
			d.Perms = append(d.Perms, Option{Value: p.Name, Label: m.t(r, p.Title), Hint: p.Name})
		}
	}
	res, err := m.resourceOptions(r, a.OrgID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if len(res) > 0 {
		d.Resources = append([]Option{{Value: "", Label: m.t(r, "kernel.auth.roles.resource_none")}}, res...)
	}
	scopes := []string{ScopeAll, ScopeMember, ScopeUnit}
	if len(res) > 0 || f.Get("scope") == ScopeResource {
		scopes = append(scopes, ScopeResource)
	}
	for _, s := range scopes {
		d.Scopes = append(d.Scopes, Option{Value: s, Label: m.t(r, "kernel.auth.scope."+s), Hint: m.t(r, "kernel.auth.scope."+s+"_hint")})
	}
	units, err := m.st.Units(r.Context(), m.st.DB.Read(), a.OrgID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	d.Units = unitOptions(units, true, m.t(r, "kernel.auth.roles.unit_none"))
	title := "kernel.auth.roles.edit_title"
	if id == 0 {
		title = "kernel.auth.roles.new_title"
	}
	m.render(w, r, web.Page{Name: "role_form.html", Title: title, Form: f, Status: status, Data: d})
}

func (m *Module) roleNew(w http.ResponseWriter, r *http.Request) {
	m.showRole(w, r, 0, web.NewForm(url.Values{"scope": {ScopeAll}}), 0)
}

// roleValues fills the form from a role whose grants share one scope (as the form makes them).
func roleValues(ro Role) url.Values {
	v := url.Values{"name": {ro.Name}, "description": {ro.Description}, "scope": {ScopeAll}}
	for _, g := range ro.Grants {
		v.Add("perms", g.Perm)
		v.Set("scope", g.Scope)
		if g.UnitID != 0 {
			v.Set("unit", strconv.FormatInt(g.UnitID, 10))
		}
		if g.Scope == ScopeResource {
			v.Set("resource", g.ResourceType+":"+g.ResourceID)
		}
	}
	return v
}

func (m *Module) roleEdit(w http.ResponseWriter, r *http.Request) {
	id, ok := m.pathID(w, r, "id")
	if !ok {
		return
	}
	a := kernel.AgentFrom(r.Context())
	ro, err := m.st.Role(r.Context(), m.st.DB.Read(), a.OrgID, id)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.showRole(w, r, id, web.NewForm(roleValues(ro)), 0)
}

// readRole validates the role form: name, description, permissions and their scope; a
// role granted on one resource holds only permissions of that resource's type.
func (m *Module) readRole(r *http.Request, f *web.Form, ro *Role) {
	f.Require("name")
	f.MaxLen("name", 100)
	f.MaxLen("description", 500)
	ro.Name, ro.Description = f.Get("name"), f.Get("description")
	scope := f.Get("scope")
	var unit int64
	var resType, resID string
	switch scope {
	case ScopeAll, ScopeMember:
	case ScopeUnit:
		unit, _ = strconv.ParseInt(f.Get("unit"), 10, 64)
		if unit <= 0 {
			f.Fail("unit", "kernel.auth.error.unit_required")
		}
	case ScopeResource:
		resType, resID, _ = strings.Cut(f.Get("resource"), ":")
		if !m.resourceExists(r, resType, resID) {
			f.Fail("resource", "kernel.auth.error.resource_required")
		}
	default:
		f.Fail("scope", "kernel.auth.error.scope")
	}
	ro.Grants = nil
	for _, p := range f.Values["perms"] {
		perm, known := m.byName[p]
		if !known || instancePerms[p] {
			f.Fail("perms", "kernel.auth.error.choice")
			return
		}
		if scope == ScopeResource && resType != "" && perm.ResourceType != resType {
			f.Fail("perms", "kernel.auth.error.perm_resource", "perm", m.t(r, perm.Title))
			return
		}
		ro.Grants = append(ro.Grants, Grant{Perm: p, Scope: scope, UnitID: unit, ResourceType: resType, ResourceID: resID})
	}
}

// resourceExists reports whether the signed-in agent's organisation has the resource.
func (m *Module) resourceExists(r *http.Request, typ, id string) bool {
	if typ == "" || id == "" {
		return false
	}
	a := kernel.AgentFrom(r.Context())
	for _, src := range m.resources {
		if src.ResourceType() != typ {
			continue
		}
		items, err := src.Resources(r.Context(), a.OrgID)
		if err != nil {
			return false
		}
		for _, it := range items {
			if it.ID == id {
				return true
			}
		}
	}
	return false
}

func (m *Module) roleCreate(w http.ResponseWriter, r *http.Request) {
	f := m.parse(w, r)
	if f == nil {
		return
	}
	ctx, a := r.Context(), kernel.AgentFrom(r.Context())
	ro := Role{OrgID: a.OrgID}
	m.readRole(r, f, &ro)
	if !f.Valid() {
		m.showRole(w, r, 0, f, http.StatusBadRequest)
		return
	}
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.CreateRole(ctx, tx, &ro, m.now()); err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "roles.create", ResourceType: "role", ResourceID: fmt.Sprint(ro.ID), After: ro})
	})
	if formError(f, err) {
		m.showRole(w, r, 0, f, http.StatusBadRequest)
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/roles?done=created", http.StatusSeeOther)
}

func (m *Module) roleUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := m.pathID(w, r, "id")
	if !ok {
		return
	}
	ctx, a := r.Context(), kernel.AgentFrom(r.Context())
	old, err := m.st.Role(ctx, m.st.DB.Read(), a.OrgID, id)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	ro := Role{ID: id, OrgID: a.OrgID}
	m.readRole(r, f, &ro)
	if !f.Valid() {
		m.showRole(w, r, id, f, http.StatusBadRequest)
		return
	}
	err = m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.UpdateRole(ctx, tx, &ro); err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "roles.update", ResourceType: "role", ResourceID: fmt.Sprint(id), Before: old, After: ro})
	})
	if formError(f, err) {
		m.showRole(w, r, id, f, http.StatusBadRequest)
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/roles?done=saved", http.StatusSeeOther)
}

func (m *Module) roleDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := m.pathID(w, r, "id")
	if !ok {
		return
	}
	ctx, a := r.Context(), kernel.AgentFrom(r.Context())
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		old, err := m.st.Role(ctx, tx, a.OrgID, id)
		if err != nil {
			return err
		}
		if err := m.st.DeleteRole(ctx, tx, a.OrgID, id); err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "roles.delete", ResourceType: "role", ResourceID: fmt.Sprint(id), Before: old})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/roles?done=deleted", http.StatusSeeOther)
}
