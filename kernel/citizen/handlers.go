package citizen

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"parvis.org/parvis/kernel"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/web"
)

// Public pages under /compte. Handlers are thin: parse, check fields, call the service,
// map its error to a field message and a status, render.

func (m *Module) lang(r *http.Request) string {
	if m.views.Lang != nil {
		if l := m.views.Lang(r); l != "" {
			return l
		}
	}
	return i18n.Default
}

func (m *Module) render(w http.ResponseWriter, r *http.Request, name, title string, status int, f *web.Form, data any) {
	m.views.Render(w, r, web.Page{Name: ID + "/" + name, Title: title, Status: status, Form: f, Data: data})
}

// message shows a page with a title and one paragraph (mail sent, account deleted…).
func (m *Module) message(w http.ResponseWriter, r *http.Request, status int, title, text string, args ...any) {
	m.render(w, r, "message.html", title, status, nil, map[string]any{"Text": m.views.I18n.T(m.lang(r), text, args...)})
}

type errorData struct{ Message, Back string }

// errorPage shows the kernel's error page with a translated message.
func (m *Module) errorPage(w http.ResponseWriter, r *http.Request, status int, key string, args ...any) {
	m.views.Render(w, r, web.Page{Name: "kernel/error.html", Title: "kernel.error.title", Status: status,
		Data: errorData{Message: m.views.I18n.T(m.lang(r), key, args...), Back: "/compte"}})
}

func (m *Module) internal(w http.ResponseWriter, r *http.Request, err error) {
	m.log.ErrorContext(r.Context(), "citizen", "path", r.URL.Path, "err", err)
	m.errorPage(w, r, http.StatusInternalServerError, "kernel.error.internal")
}

// parse reads a posted form; false when it already answered (413 or 400).
func (m *Module) parse(w http.ResponseWriter, r *http.Request) (*web.Form, bool) {
	f, err := web.ParseForm(r)
	if errors.Is(err, web.ErrBodyTooLarge) {
		m.errorPage(w, r, http.StatusRequestEntityTooLarge, "kernel.error.too_large")
		return nil, false
	}
	if err != nil {
		m.errorPage(w, r, http.StatusBadRequest, "kernel.error.bad_request")
		return nil, false
	}
	return f, true
}

// fail shows the form again with err: a domain error on its field (or on field), with its
// status; anything else is a 500.
func (m *Module) fail(w http.ResponseWriter, r *http.Request, page, title, field string, f *web.Form, err error, data any) {
	e, ok := errs.As(err)
	if !ok {
		m.internal(w, r, err)
		return
	}
	if e.Field != "" {
		field = e.Field
	}
	f.Fail(field, e.Key, e.Args...)
	m.render(w, r, page, title, web.StatusOf(err), f, data)
}

// tokenFail answers a bad mailed link: 400 for an unknown one, 410 for a used or expired one.
func (m *Module) tokenFail(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := errs.As(err)
	if !ok {
		m.internal(w, r, err)
		return
	}
	status := http.StatusBadRequest
	if e.Key == errTokenUsed || e.Key == errTokenExpired {
		status = http.StatusGone
	}
	if e.Code == errs.Conflict && e.Key == errEmailTaken {
		status = http.StatusConflict
	}
	m.errorPage(w, r, status, e.Key, e.Args...)
}

// requireAccount returns the signed-in citizen's session; otherwise it sends a GET to the
// login page (coming back afterwards) and refuses anything else.
func (m *Module) requireAccount(w http.ResponseWriter, r *http.Request) (*current, bool) {
	cur := currentFrom(r)
	if cur != nil && cur.acct != nil {
		return cur, true
	}
	if r.Method == http.MethodGet {
		http.Redirect(w, r, "/compte/connexion?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return nil, false
	}
	m.errorPage(w, r, http.StatusUnauthorized, "kernel.error.unauthenticated")
	return nil, false
}

// nextPath keeps a local return path, else the account page.
func nextPath(p string) string {
	if localPath(p) {
		return p
	}
	return "/compte"
}

// checkEmailField validates the email field of f (required, length, form).
func checkEmailField(f *web.Form, field string) {
	v := f.Get(field)
	switch {
	case v == "":
		f.Fail(field, "kernel.error.required")
	case len([]rune(v)) > maxEmail:
		f.Fail(field, "kernel.error.too_long", "max", maxEmail)
	default:
		if _, err := NormalizeEmail(v); err != nil {
			f.Fail(field, errEmailInvalid)
		}
	}
}

// checkNewPassword validates a new password field.
func checkNewPassword(f *web.Form, field string) {
	pw := f.Values.Get(field) // not trimmed: spaces are part of a passphrase
	if pw == "" {
		f.Fail(field, "kernel.error.required")
		return
	}
	if err := checkPassword(field, pw); err != nil {
		e, _ := errs.As(err)
		f.Fail(field, e.Key, e.Args...)
	}
}

var flashes = map[string]string{
	"name":     "kernel.citizen.flash.name_saved",
	"password": "kernel.citizen.flash.password_saved",
	"welcome":  "kernel.citizen.flash.welcome",
	"email":    "kernel.citizen.flash.email_saved",
}

// GET /compte
func (m *Module) account(w http.ResponseWriter, r *http.Request) {
	cur, ok := m.requireAccount(w, r)
	if !ok {
		return
	}
	m.views.Render(w, r, web.Page{Name: ID + "/account.html", Title: "kernel.citizen.account.title",
		Flash: flashes[r.URL.Query().Get("ok")], Data: accountData{Account: *cur.acct, Space: m.space}})
}

// accountData is the overview of "my space": the account and the pages modules add.
type accountData struct {
	Account
	Space []kernel.SpaceLink
}

// GET /compte/inscription
func (m *Module) signupForm(w http.ResponseWriter, r *http.Request) {
	m.render(w, r, "signup.html", "kernel.citizen.signup.title", 0, nil, nil)
}

// POST /compte/inscription
func (m *Module) signup(w http.ResponseWriter, r *http.Request) {
	f, ok := m.parse(w, r)
	if !ok {
		return
	}
	checkEmailField(f, "email")
	f.Require("name")
	f.MaxLen("name", maxName)
	checkNewPassword(f, "password")
	if !f.Valid() {
		m.render(w, r, "signup.html", "kernel.citizen.signup.title", http.StatusBadRequest, f, nil)
		return
	}
	err := m.SignUp(r.Context(), f.Get("email"), f.Get("name"), f.Values.Get("password"), m.lang(r), web.ClientIP(r, m.cfg.TrustProxy))
	if err != nil {
		m.fail(w, r, "signup.html", "kernel.citizen.signup.title", "email", f, err, nil)
		return
	}
	m.message(w, r, http.StatusOK, "kernel.citizen.signup.sent_title", "kernel.citizen.signup.sent", "email", f.Get("email"))
}

// GET /compte/verifier?t=…
func (m *Module) verify(w http.ResponseWriter, r *http.Request) {
	if _, err := m.Verify(r.Context(), r.URL.Query().Get("t")); err != nil {
		m.tokenFail(w, r, err)
		return
	}
	m.message(w, r, http.StatusOK, "kernel.citizen.verified.title", "kernel.citizen.verified.text")
}

type loginData struct {
	Next      string
	Providers []IdentityProvider
}

// GET /compte/connexion
func (m *Module) loginForm(w http.ResponseWriter, r *http.Request) {
	m.render(w, r, "login.html", "kernel.citizen.login.title", 0, nil, loginData{Next: r.URL.Query().Get("next"), Providers: m.idps})
}

// POST /compte/connexion
func (m *Module) login(w http.ResponseWriter, r *http.Request) {
	f, ok := m.parse(w, r)
	if !ok {
		return
	}
	data := loginData{Next: f.Get("next"), Providers: m.idps}
	f.Require("email", "password")
	f.MaxLen("email", maxEmail)
	if len(f.Values.Get("password")) > maxPassword {
		f.Fail("password", errPasswordLong, "max", maxPassword)
	}
	if !f.Valid() {
		m.render(w, r, "login.html", "kernel.citizen.login.title", http.StatusBadRequest, f, data)
		return
	}
	a, err := m.Login(r.Context(), f.Get("email"), f.Values.Get("password"), web.ClientIP(r, m.cfg.TrustProxy))
	if err != nil {
		m.fail(w, r, "login.html", "kernel.citizen.login.title", "email", f, err, data)
		return
	}
	if err := m.signIn(w, r, a.ID); err != nil {
		m.internal(w, r, err)
		return
	}
	http.Redirect(w, r, nextPath(data.Next), http.StatusSeeOther)
}

// GET /compte/lien
func (m *Module) magicForm(w http.ResponseWriter, r *http.Request) {
	m.render(w, r, "magic.html", "kernel.citizen.magic.title", 0, nil, nil)
}

// POST /compte/lien
func (m *Module) magicRequest(w http.ResponseWriter, r *http.Request) {
	f, ok := m.parse(w, r)
	if !ok {
		return
	}
	checkEmailField(f, "email")
	if !f.Valid() {
		m.render(w, r, "magic.html", "kernel.citizen.magic.title", http.StatusBadRequest, f, nil)
		return
	}
	if err := m.RequestMagicLink(r.Context(), f.Get("email"), m.lang(r), web.ClientIP(r, m.cfg.TrustProxy)); err != nil {
		m.fail(w, r, "magic.html", "kernel.citizen.magic.title", "email", f, err, nil)
		return
	}
	// The same answer whether or not the address has an account.
	m.message(w, r, http.StatusOK, "kernel.citizen.magic.sent_title", "kernel.citizen.magic.sent", "email", f.Get("email"))
}

// GET /compte/lien/ouvrir?t=… shows a button rather than signing in at once: mail
// scanners that fetch links must not use up the link (nor get a session).
func (m *Module) magicConfirm(w http.ResponseWriter, r *http.Request) {
	t := r.URL.Query().Get("t")
	if err := m.peek(r.Context(), t, kindMagic); err != nil {
		m.tokenFail(w, r, err)
		return
	}
	m.render(w, r, "confirm.html", "kernel.citizen.magic.confirm_title", 0, nil,
		map[string]any{"Action": "/compte/lien/ouvrir", "Token": t, "Text": "kernel.citizen.magic.confirm_text", "Button": "kernel.citizen.magic.confirm_button"})
}

// POST /compte/lien/ouvrir
func (m *Module) magicUse(w http.ResponseWriter, r *http.Request) {
	f, ok := m.parse(w, r)
	if !ok {
		return
	}
	a, err := m.UseMagicLink(r.Context(), f.Get("t"))
	if err != nil {
		m.tokenFail(w, r, err)
		return
	}
	if err := m.signIn(w, r, a.ID); err != nil {
		m.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/compte?ok=welcome", http.StatusSeeOther)
}

// POST /compte/deconnexion
func (m *Module) logout(w http.ResponseWriter, r *http.Request) {
	if cur := currentFrom(r); cur != nil {
		if err := m.EndSession(r.Context(), cur.raw); err != nil {
			m.internal(w, r, err)
			return
		}
	}
	m.clearCookie(w)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// GET /compte/profil
func (m *Module) profileForm(w http.ResponseWriter, r *http.Request) {
	cur, ok := m.requireAccount(w, r)
	if !ok {
		return
	}
	m.render(w, r, "profile.html", "kernel.citizen.profile.title", 0, web.NewForm(url.Values{"name": {cur.acct.Name}}), nil)
}

// POST /compte/profil
func (m *Module) profile(w http.ResponseWriter, r *http.Request) {
	cur, ok := m.requireAccount(w, r)
	if !ok {
		return
	}
	f, ok := m.parse(w, r)
	if !ok {
		return
	}
	f.Require("name")
	f.MaxLen("name", maxName)
	if !f.Valid() {
		m.render(w, r, "profile.html", "kernel.citizen.profile.title", http.StatusBadRequest, f, nil)
		return
	}
	if err := m.UpdateName(r.Context(), cur.acct.ID, f.Get("name")); err != nil {
		m.fail(w, r, "profile.html", "kernel.citizen.profile.title", "name", f, err, nil)
		return
	}
	http.Redirect(w, r, "/compte?ok=name", http.StatusSeeOther)
}

// GET /compte/email
func (m *Module) emailForm(w http.ResponseWriter, r *http.Request) {
	cur, ok := m.requireAccount(w, r)
	if !ok {
		return
	}
	m.render(w, r, "email.html", "kernel.citizen.email.title", 0, nil, cur.acct)
}

// POST /compte/email
func (m *Module) emailRequest(w http.ResponseWriter, r *http.Request) {
	cur, ok := m.requireAccount(w, r)
	if !ok {
		return
	}
	f, ok := m.parse(w, r)
	if !ok {
		return
	}
	checkEmailField(f, "new_email")
	if cur.acct.passwordHash != "" {
		f.Require("password")
	}
	if !f.Valid() {
		m.render(w, r, "email.html", "kernel.citizen.email.title", http.StatusBadRequest, f, cur.acct)
		return
	}
	err := m.RequestEmailChange(r.Context(), cur.acct.ID, f.Get("new_email"), f.Values.Get("password"), m.lang(r), web.ClientIP(r, m.cfg.TrustProxy))
	if err != nil {
		m.fail(w, r, "email.html", "kernel.citizen.email.title", "new_email", f, err, cur.acct)
		return
	}
	m.message(w, r, http.StatusOK, "kernel.citizen.email.sent_title", "kernel.citizen.email.sent", "email", f.Get("new_email"))
}

// GET /compte/email/confirmer?t=…
func (m *Module) emailConfirm(w http.ResponseWriter, r *http.Request) {
	if _, err := m.ConfirmEmailChange(r.Context(), r.URL.Query().Get("t")); err != nil {
		m.tokenFail(w, r, err)
		return
	}
	m.message(w, r, http.StatusOK, "kernel.citizen.email.changed_title", "kernel.citizen.email.changed")
}

// GET /compte/mot-de-passe
func (m *Module) passwordForm(w http.ResponseWriter, r *http.Request) {
	cur, ok := m.requireAccount(w, r)
	if !ok {
		return
	}
	m.render(w, r, "password.html", "kernel.citizen.password.title", 0, nil, cur.acct.passwordHash != "")
}

// POST /compte/mot-de-passe
func (m *Module) password(w http.ResponseWriter, r *http.Request) {
	cur, ok := m.requireAccount(w, r)
	if !ok {
		return
	}
	f, ok := m.parse(w, r)
	if !ok {
		return
	}
	has := cur.acct.passwordHash != ""
	if has {
		f.Require("current")
	}
	checkNewPassword(f, "new")
	if !f.Valid() {
		m.render(w, r, "password.html", "kernel.citizen.password.title", http.StatusBadRequest, f, has)
		return
	}
	if err := m.ChangePassword(r.Context(), cur.acct.ID, f.Values.Get("current"), f.Values.Get("new"), cur.s.ID); err != nil {
		m.fail(w, r, "password.html", "kernel.citizen.password.title", "current", f, err, has)
		return
	}
	http.Redirect(w, r, "/compte?ok=password", http.StatusSeeOther)
}

// GET /compte/export: a JSON file of everything held about the citizen.
func (m *Module) export(w http.ResponseWriter, r *http.Request) {
	cur, ok := m.requireAccount(w, r)
	if !ok {
		return
	}
	data, err := m.Export(r.Context(), cur.acct.ID)
	if err != nil {
		m.internal(w, r, err)
		return
	}
	b, err := json.MarshalIndent(data, "", "  ")
	if err != nil {
		m.internal(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="mes-donnees.json"`)
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// GET /compte/supprimer
func (m *Module) deleteForm(w http.ResponseWriter, r *http.Request) {
	cur, ok := m.requireAccount(w, r)
	if !ok {
		return
	}
	m.render(w, r, "delete.html", "kernel.citizen.delete.title", 0, nil, cur.acct.passwordHash != "")
}

// POST /compte/supprimer
func (m *Module) delete(w http.ResponseWriter, r *http.Request) {
	cur, ok := m.requireAccount(w, r)
	if !ok {
		return
	}
	f, ok := m.parse(w, r)
	if !ok {
		return
	}
	has := cur.acct.passwordHash != ""
	if has {
		f.Require("password")
	} else if f.Get("confirm") != "yes" {
		f.Fail("confirm", "kernel.citizen.delete.confirm_required")
	}
	if !f.Valid() {
		m.render(w, r, "delete.html", "kernel.citizen.delete.title", http.StatusBadRequest, f, has)
		return
	}
	if err := m.Delete(r.Context(), cur.acct.ID, f.Values.Get("password")); err != nil {
		m.fail(w, r, "delete.html", "kernel.citizen.delete.title", "password", f, err, has)
		return
	}
	m.clearCookie(w)
	m.message(w, r, http.StatusOK, "kernel.citizen.delete.done_title", "kernel.citizen.delete.done")
}

// GET /compte/invite?t=… (a guest's mailed link): a button, for the same reason as login links.
func (m *Module) guestConfirm(w http.ResponseWriter, r *http.Request) {
	t := r.URL.Query().Get("t")
	if err := m.peek(r.Context(), t, kindGuest); err != nil {
		m.tokenFail(w, r, err)
		return
	}
	m.render(w, r, "confirm.html", "kernel.citizen.guest.confirm_title", 0, nil,
		map[string]any{"Action": "/compte/invite", "Token": t, "Text": "kernel.citizen.guest.confirm_text", "Button": "kernel.citizen.guest.confirm_button"})
}

// POST /compte/invite
func (m *Module) guestUse(w http.ResponseWriter, r *http.Request) {
	f, ok := m.parse(w, r)
	if !ok {
		return
	}
	email, returnTo, err := m.UseGuestLink(r.Context(), f.Get("t"))
	if err != nil {
		m.tokenFail(w, r, err)
		return
	}
	cur := currentFrom(r)
	if cur != nil && cur.acct != nil {
		// A signed-in citizen keeps the session and gains the proven address.
		if err := setSessionGuest(r.Context(), m.db.Write(), cur.s.ID, email); err != nil {
			m.internal(w, r, err)
			return
		}
	} else {
		old := ""
		if cur != nil {
			old = cur.raw
		}
		raw, until, err := m.StartSession(r.Context(), 0, email, old)
		if err != nil {
			m.internal(w, r, err)
			return
		}
		m.setCookie(w, raw, until)
	}
	http.Redirect(w, r, nextPath(returnTo), http.StatusSeeOther)
}
