package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

type usersData struct {
	Agents []AgentRecord
	Me     int64
}

func (m *Module) users(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	list, err := m.st.Agents(r.Context(), m.st.DB.Read(), a.OrgID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.render(w, r, web.Page{Name: "users.html", Title: "kernel.auth.users.title", Flash: flash(r), Data: usersData{Agents: list, Me: a.ID}})
}

type userFormData struct {
	ID       int64
	Agent    AgentRecord
	Roles    []Option
	Units    []Option
	Langs    []Option
	CanAdmin bool // the signed-in agent may grant the organisation administrator flag
	// CanResetTOTP: the agent shown has a second factor that the signed-in administrator
	// may remove.
	CanResetTOTP bool
	SetupLink    string // shown once after creating an account
}

func (m *Module) userFormData(r *http.Request, rec AgentRecord) (userFormData, error) {
	ctx, a := r.Context(), kernel.AgentFrom(r.Context())
	d := userFormData{ID: rec.ID, Agent: rec}
	roles, err := m.st.Roles(ctx, m.st.DB.Read(), a.OrgID)
	if err != nil {
		return d, err
	}
	for _, ro := range roles {
		d.Roles = append(d.Roles, Option{Value: strconv.FormatInt(ro.ID, 10), Label: ro.Name, Hint: ro.Description})
	}
	units, err := m.st.Units(ctx, m.st.DB.Read(), a.OrgID)
	if err != nil {
		return d, err
	}
	d.Units = unitOptions(units, false, "")
	for _, l := range i18n.Languages {
		d.Langs = append(d.Langs, Option{Value: l, Label: m.t(r, "kernel.auth.lang."+l)})
	}
	me, err := m.st.Agent(ctx, m.st.DB.Read(), a.OrgID, a.ID)
	if err != nil {
		return d, err
	}
	d.CanAdmin = me.OrgAdmin
	d.CanResetTOTP = rec.ID != 0 && rec.ID != a.ID && rec.TOTPSecret != "" && mayResetTOTP(me, rec)
	return d, nil
}

func userValues(a AgentRecord) url.Values {
	v := url.Values{"email": {a.Email}, "name": {a.Name}, "lang": {a.Lang}, "roles": idStrings(a.RoleIDs), "units": idStrings(a.UnitIDs)}
	if a.OrgAdmin {
		v.Set("org_admin", "1")
	}
	return v
}

func (m *Module) showUser(w http.ResponseWriter, r *http.Request, rec AgentRecord, f *web.Form, status int, link string) {
	d, err := m.userFormData(r, rec)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	d.SetupLink = link
	title := "kernel.auth.users.edit_title"
	if rec.ID == 0 {
		title = "kernel.auth.users.new_title"
	}
	m.render(w, r, web.Page{Name: "user_form.html", Title: title, Form: f, Status: status, Flash: flash(r), Data: d})
}

func (m *Module) userNew(w http.ResponseWriter, r *http.Request) {
	m.showUser(w, r, AgentRecord{}, web.NewForm(url.Values{"lang": {m.defaultLang()}}), 0, "")
}

func (m *Module) userEdit(w http.ResponseWriter, r *http.Request) {
	id, ok := m.pathID(w, r, "id")
	if !ok {
		return
	}
	a := kernel.AgentFrom(r.Context())
	rec, err := m.st.Agent(r.Context(), m.st.DB.Read(), a.OrgID, id)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.showUser(w, r, rec, web.NewForm(userValues(rec)), 0, "")
}

// readUser validates the user form into rec.
func (m *Module) readUser(r *http.Request, f *web.Form, rec *AgentRecord) {
	f.Require("email", "name")
	f.MaxLen("name", 200)
	rec.Email = validEmail(f, "email")
	rec.Name = f.Get("name")
	rec.Lang = i18n.Supported(f.Get("lang"))
	if rec.Lang == "" {
		f.Fail("lang", "kernel.auth.error.choice")
	}
	rec.RoleIDs = ids(f, "roles")
	rec.UnitIDs = ids(f, "units")
}

func (m *Module) userCreate(w http.ResponseWriter, r *http.Request) {
	f := m.parse(w, r)
	if f == nil {
		return
	}
	ctx, a, now := r.Context(), kernel.AgentFrom(r.Context()), m.now()
	rec := AgentRecord{OrgID: a.OrgID, Active: true}
	m.readUser(r, f, &rec)
	d, err := m.userFormData(r, rec)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	rec.OrgAdmin = d.CanAdmin && f.Get("org_admin") == "1"
	if !f.Valid() {
		m.showUser(w, r, AgentRecord{}, f, http.StatusBadRequest, "")
		return
	}
	var link string
	err = m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.CreateAgent(ctx, tx, &rec, now); err != nil {
			return err
		}
		token, err := m.st.CreateToken(ctx, tx, rec.ID, purposeSetup, now, now.Add(24*time.Hour))
		if err != nil {
			return err
		}
		link = m.link("/admin/setup/" + token)
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "users.create", ResourceType: "agent", ResourceID: fmt.Sprint(rec.ID), After: snapshotAgent(rec)})
	})
	if formError(f, err) {
		m.showUser(w, r, AgentRecord{}, f, http.StatusBadRequest, "")
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	// The setup link is shown once, for the administrator to pass on.
	m.showUser(w, r, rec, web.NewForm(userValues(rec)), http.StatusCreated, link)
}

func (m *Module) userUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := m.pathID(w, r, "id")
	if !ok {
		return
	}
	ctx, a, now := r.Context(), kernel.AgentFrom(r.Context()), m.now()
	old, err := m.st.Agent(ctx, m.st.DB.Read(), a.OrgID, id)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	rec := old
	m.readUser(r, f, &rec)
	d, err := m.userFormData(r, rec)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if d.CanAdmin {
		rec.OrgAdmin = f.Get("org_admin") == "1"
		if id == a.ID && old.OrgAdmin && !rec.OrgAdmin {
			f.Fail("org_admin", "kernel.auth.error.self_admin")
		}
	}
	if !f.Valid() {
		m.showUser(w, r, old, f, http.StatusBadRequest, "")
		return
	}
	err = m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.UpdateAgent(ctx, tx, &rec, now); err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "users.update", ResourceType: "agent", ResourceID: fmt.Sprint(id),
			Before: snapshotAgent(old), After: snapshotAgent(rec)})
	})
	if formError(f, err) {
		m.showUser(w, r, old, f, http.StatusBadRequest, "")
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/users?done=saved", http.StatusSeeOther)
}

func (m *Module) userSetActive(w http.ResponseWriter, r *http.Request) {
	id, ok := m.pathID(w, r, "id")
	if !ok {
		return
	}
	ctx, a, now := r.Context(), kernel.AgentFrom(r.Context()), m.now()
	old, err := m.st.Agent(ctx, m.st.DB.Read(), a.OrgID, id)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	active := f.Get("active") == "1"
	if id == a.ID && !active {
		m.errorPage(w, r, http.StatusBadRequest, "kernel.auth.error.self_deactivate")
		return
	}
	err = m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.SetActive(ctx, tx, a.OrgID, id, active, now); err != nil {
			return err
		}
		after := old
		after.Active = active
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "users.set_active", ResourceType: "agent", ResourceID: fmt.Sprint(id),
			Before: snapshotAgent(old), After: snapshotAgent(after)})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/users?done=saved", http.StatusSeeOther)
}

// userResetTOTP removes another agent's second factor, for an agent who lost the device
// holding it: they sign in with their password alone and may enrol again. A user manager
// may do it for agents, only an organisation administrator for an administrator (and only a
// superadmin for a superadmin); never on one's own account (the account page does that,
// with the password). It is recorded in the audit log.
func (m *Module) userResetTOTP(w http.ResponseWriter, r *http.Request) {
	id, ok := m.pathID(w, r, "id")
	if !ok {
		return
	}
	ctx, a, now := r.Context(), kernel.AgentFrom(r.Context()), m.now()
	if f := m.parse(w, r); f == nil {
		return
	}
	if id == a.ID {
		m.errorPage(w, r, http.StatusBadRequest, "kernel.auth.error.totp_reset_self")
		return
	}
	me, err := m.st.Agent(ctx, m.st.DB.Read(), a.OrgID, a.ID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	old, err := m.st.Agent(ctx, m.st.DB.Read(), a.OrgID, id)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if !mayResetTOTP(me, old) {
		m.errorPage(w, r, http.StatusForbidden, "kernel.auth.error.totp_reset_admin")
		return
	}
	if old.TOTPSecret == "" {
		m.errorPage(w, r, http.StatusConflict, "kernel.auth.error.totp_not_enabled")
		return
	}
	err = m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.SetTOTP(ctx, tx, id, "", now); err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "users.totp_reset", ResourceType: "agent", ResourceID: fmt.Sprint(id)})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/users?done=totp_reset", http.StatusSeeOther)
}

// mayResetTOTP: the manager me may remove target's second factor unless the target
// outranks them.
func mayResetTOTP(me, target AgentRecord) bool {
	switch {
	case target.Superadmin:
		return me.Superadmin
	case target.OrgAdmin:
		return me.OrgAdmin || me.Superadmin
	}
	return true
}
