package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pquerna/otp/totp"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

type accountData struct {
	Agent     AgentRecord
	Sessions  int
	Tokens    []APIToken
	CanTokens bool
	Perms     []Option // permissions the agent may put in a token
	NewToken  string
	// Which form the Form belongs to: "password", "token".
	FormOf string
}

func (m *Module) accountData(r *http.Request) (accountData, error) {
	ctx, a := r.Context(), kernel.AgentFrom(r.Context())
	var d accountData
	var err error
	if d.Agent, err = m.st.Agent(ctx, m.st.DB.Read(), a.OrgID, a.ID); err != nil {
		return d, err
	}
	ss, err := m.st.Sessions(ctx, a.ID, m.now())
	if err != nil {
		return d, err
	}
	d.Sessions = len(ss)
	if d.Tokens, err = m.st.APITokens(ctx, a.ID); err != nil {
		return d, err
	}
	d.CanTokens = m.authz.Can(ctx, a, PermTokens, nil)
	for _, p := range m.perms {
		if m.authz.Can(ctx, a, p.Name, nil) {
			d.Perms = append(d.Perms, Option{Value: p.Name, Label: m.t(r, p.Title), Hint: p.Name})
		}
	}
	return d, nil
}

func (m *Module) showAccount(w http.ResponseWriter, r *http.Request, f *web.Form, status int, d *accountData) {
	if d == nil {
		dd, err := m.accountData(r)
		if err != nil {
			m.fail(w, r, err)
			return
		}
		d = &dd
	}
	if f == nil {
		f = web.NewForm(nil)
	}
	m.render(w, r, web.Page{Name: "account.html", Title: "kernel.auth.account.title", Form: f, Status: status, Flash: flash(r), Data: d})
}

func (m *Module) account(w http.ResponseWriter, r *http.Request) { m.showAccount(w, r, nil, 0, nil) }

func (m *Module) changePassword(w http.ResponseWriter, r *http.Request) {
	f := m.parse(w, r)
	if f == nil {
		return
	}
	ctx, a, now := r.Context(), kernel.AgentFrom(r.Context()), m.now()
	rec, err := m.st.Agent(ctx, m.st.DB.Read(), a.OrgID, a.ID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	checkCurrent(f, "current", rec.PasswordHash)
	pw := newPassword(f, rec.Email)
	if !f.Valid() {
		d, err := m.accountData(r)
		if err != nil {
			m.fail(w, r, err)
			return
		}
		d.FormOf = "password"
		m.showAccount(w, r, f, http.StatusBadRequest, &d)
		return
	}
	hash, err := HashPassword(pw)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	err = m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.SetPassword(ctx, tx, a.ID, hash, now); err != nil {
			return err
		}
		// Other browsers signed in with the old password are signed out.
		if _, err := tx.ExecContext(ctx, `DELETE FROM auth_sessions WHERE agent_id = ? AND id <> ?`, a.ID, sessionRowID(a)); err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "users.password_change", ResourceType: "agent", ResourceID: fmt.Sprint(a.ID)})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/account?done=password", http.StatusSeeOther)
}

func sessionRowID(a *kernel.Agent) int64 {
	id, _ := strconv.ParseInt(a.SessionID, 10, 64)
	return id
}

func (m *Module) logoutAll(w http.ResponseWriter, r *http.Request) {
	ctx, a := r.Context(), kernel.AgentFrom(r.Context())
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.DeleteSessions(ctx, tx, a.ID); err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "users.logout_everywhere", ResourceType: "agent", ResourceID: fmt.Sprint(a.ID)})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.clearCookie(w)
	http.Redirect(w, r, "/admin/login?done=out", http.StatusSeeOther)
}

// ---- TOTP enrolment

// checkCurrent requires the agent's current password in field.
func checkCurrent(f *web.Form, field, hash string) {
	f.Require(field)
	if f.Get(field) != "" && !CheckPassword(hash, f.Values.Get(field)) {
		f.Fail(field, "kernel.auth.error.current_password")
	}
}

// totpChange reads a form changing the signed-in agent's second factor: it must be on, and
// field must hold the agent's current password; ok is false once the refusal is written.
func (m *Module) totpChange(w http.ResponseWriter, r *http.Request, field string) (*kernel.Agent, bool) {
	f := m.parse(w, r)
	if f == nil {
		return nil, false
	}
	a := kernel.AgentFrom(r.Context())
	rec, err := m.st.Agent(r.Context(), m.st.DB.Read(), a.OrgID, a.ID)
	if err != nil {
		m.fail(w, r, err)
		return nil, false
	}
	if rec.TOTPSecret == "" {
		m.errorPage(w, r, http.StatusConflict, "kernel.auth.error.totp_not_enabled_self")
		return nil, false
	}
	checkCurrent(f, field, rec.PasswordHash)
	if !f.Valid() {
		m.showTOTPSettings(w, r, f, http.StatusBadRequest, a.ID)
		return nil, false
	}
	return a, true
}

// showTOTPSettings renders the two-step verification page of an agent who has it on: turning
// it off, and the recovery codes left.
func (m *Module) showTOTPSettings(w http.ResponseWriter, r *http.Request, f *web.Form, status int, agentID int64) {
	left, err := m.st.RecoveryCodesLeft(r.Context(), m.st.DB.Read(), agentID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.render(w, r, web.Page{Name: "totp_enrol.html", Title: "kernel.auth.totp.enrol_title", Form: f, Status: status,
		Data: totpData{Enabled: true, CodesLeft: left}})
}

type totpData struct {
	Secret, URI string
	Enabled     bool
	CodesLeft   int // unused recovery codes, when enabled
}

func (m *Module) totpEnrolForm(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	rec, err := m.st.Agent(r.Context(), m.st.DB.Read(), a.OrgID, a.ID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if rec.TOTPSecret != "" {
		m.showTOTPSettings(w, r, web.NewForm(nil), http.StatusOK, rec.ID)
		return
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "Parvis", AccountName: rec.Email})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.render(w, r, web.Page{Name: "totp_enrol.html", Title: "kernel.auth.totp.enrol_title", Form: web.NewForm(nil),
		Data: totpData{Secret: key.Secret(), URI: key.URL()}})
}

func (m *Module) totpEnrol(w http.ResponseWriter, r *http.Request) {
	f := m.parse(w, r)
	if f == nil {
		return
	}
	ctx, a := r.Context(), kernel.AgentFrom(r.Context())
	// The secret travels in the form between the two steps; it is only stored once a code
	// made from it proves the agent's app holds it.
	secret := f.Get("secret")
	f.Require("code")
	if len(secret) < 16 || len(secret) > 64 {
		m.errorPage(w, r, http.StatusBadRequest, "kernel.error.bad_request")
		return
	}
	if f.Get("code") != "" && !m.validTOTP(secret, f.Get("code")) {
		f.Fail("code", "kernel.auth.error.bad_code")
	}
	if !f.Valid() {
		uri := (&url.URL{Scheme: "otpauth", Host: "totp", Path: "/Parvis:" + a.Email,
			RawQuery: url.Values{"secret": {secret}, "issuer": {"Parvis"}}.Encode()}).String()
		m.render(w, r, web.Page{Name: "totp_enrol.html", Title: "kernel.auth.totp.enrol_title", Form: f, Status: http.StatusBadRequest,
			Data: totpData{Secret: secret, URI: uri}})
		return
	}
	var codes []string
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.SetTOTP(ctx, tx, a.ID, secret, m.now()); err != nil {
			return err
		}
		var err error
		if codes, err = m.st.NewRecoveryCodes(ctx, tx, a.ID); err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "users.totp_enable", ResourceType: "agent", ResourceID: fmt.Sprint(a.ID)})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	// Shown once: the recovery codes to keep, for the day the authenticator is lost.
	m.showRecoveryCodes(w, r, codes)
}

func (m *Module) totpDisable(w http.ResponseWriter, r *http.Request) {
	a, ok := m.totpChange(w, r, "current")
	if !ok {
		return
	}
	ctx := r.Context()
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.SetTOTP(ctx, tx, a.ID, "", m.now()); err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "users.totp_disable", ResourceType: "agent", ResourceID: fmt.Sprint(a.ID)})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/account?done=totp_off", http.StatusSeeOther)
}

// ---- personal API tokens

func (m *Module) createAPIToken(w http.ResponseWriter, r *http.Request) {
	f := m.parse(w, r)
	if f == nil {
		return
	}
	ctx, a, now := r.Context(), kernel.AgentFrom(r.Context()), m.now()
	d, err := m.accountData(r)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	d.FormOf = "token"
	f.Require("token_name")
	f.MaxLen("token_name", 100)
	days, err := strconv.Atoi(f.Get("days"))
	if err != nil || days < 1 || days > 366 {
		f.Fail("days", "kernel.auth.error.days")
	}
	perms := f.Values["perms"]
	if len(perms) == 0 {
		f.Fail("perms", "kernel.auth.error.perms_none")
	}
	for _, p := range perms {
		if !m.authz.Can(ctx, a, p, nil) {
			f.Fail("perms", "kernel.auth.error.choice")
			break
		}
	}
	if !f.Valid() {
		m.showAccount(w, r, f, http.StatusBadRequest, &d)
		return
	}
	var token string
	err = m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		var id int64
		var err error
		token, id, err = m.st.CreateAPIToken(ctx, tx, a.ID, f.Get("token_name"), perms, now, now.Add(time.Duration(days)*24*time.Hour))
		if err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "users.api_token_create", ResourceType: "api_token", ResourceID: fmt.Sprint(id),
			After: map[string]any{"name": f.Get("token_name"), "perms": perms, "days": days}})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	d, err = m.accountData(r)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	d.NewToken = token // shown once, never stored in clear
	m.showAccount(w, r, nil, http.StatusOK, &d)
}

func (m *Module) revokeAPIToken(w http.ResponseWriter, r *http.Request) {
	id, ok := m.pathID(w, r, "id")
	if !ok {
		return
	}
	ctx, a := r.Context(), kernel.AgentFrom(r.Context())
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.RevokeAPIToken(ctx, tx, a.ID, id); err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "users.api_token_revoke", ResourceType: "api_token", ResourceID: fmt.Sprint(id)})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/account?done=revoked", http.StatusSeeOther)
}
