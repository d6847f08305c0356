package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

type loginData struct{ Next string }

func (m *Module) loginForm(w http.ResponseWriter, r *http.Request) {
	f := web.NewForm(nil)
	m.render(w, r, web.Page{Name: "login.html", Layout: "bare", Title: "kernel.auth.login.title", Form: f,
		Flash: flash(r), Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// throttled reports whether logins for this account or address are refused for now.
func (m *Module) throttled(ctx context.Context, email, ip string, now time.Time) (bool, error) {
	since := now.Add(-m.FailureWindow)
	q := m.st.DB.Read()
	n, err := m.st.Failures(ctx, q, "account", email, since)
	if err != nil || n >= m.AccountFailures {
		return n >= m.AccountFailures, err
	}
	n, err = m.st.Failures(ctx, q, "ip", ip, since)
	return n >= m.IPFailures, err
}

func (m *Module) recordFailure(ctx context.Context, email, ip string, now time.Time) error {
	return m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.AddFailure(ctx, tx, "account", email, now); err != nil {
			return err
		}
		return m.st.AddFailure(ctx, tx, "ip", ip, now)
	})
}

func (m *Module) login(w http.ResponseWriter, r *http.Request) {
	f := m.parse(w, r)
	if f == nil {
		return
	}
	ctx, now := r.Context(), m.now()
	next := safeNext(f.Get("next"))
	page := web.Page{Name: "login.html", Layout: "bare", Title: "kernel.auth.login.title", Form: f, Data: loginData{Next: next}}
	f.Require("email", "password")
	if !f.Valid() {
		page.Status = http.StatusBadRequest
		m.render(w, r, page)
		return
	}
	email, ip := normEmail(f.Get("email")), web.ClientIP(r, m.env.Config.TrustProxy)
	if len(email) > 254 {
		f.Fail("email", "kernel.error.too_long", "max", 254)
		page.Status = http.StatusBadRequest
		m.render(w, r, page)
		return
	}
	over, err := m.throttled(ctx, email, ip, now)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if over {
		f.Fail("email", "kernel.auth.error.throttled", "minutes", int(m.FailureWindow/time.Minute))
		page.Status = http.StatusTooManyRequests
		m.render(w, r, page)
		return
	}
	cands, err := m.st.AgentsByEmail(ctx, m.st.DB.Read(), email)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	pw := f.Values.Get("password")
	var found *AgentRecord
	for i := range cands {
		if cands[i].PasswordHash != "" && CheckPassword(cands[i].PasswordHash, pw) {
			found = &cands[i]
			break
		}
	}
	if len(cands) == 0 {
		CheckPassword(dummyHash, pw) // as slow as a real check: do not reveal whether the email exists
	}
	if found == nil {
		if err := m.recordFailure(ctx, email, ip, now); err != nil {
			m.fail(w, r, err)
			return
		}
		f.Fail("email", "kernel.auth.error.bad_credentials")
		page.Status = http.StatusUnauthorized
		m.render(w, r, page)
		return
	}
	stage, maxAge := stageOK, m.MaxAge
	if found.TOTPSecret != "" {
		stage, maxAge = stageTOTP, 5*time.Minute
	}
	token, err := m.newSession(r, found.ID, stage, maxAge, func(tx *store.Tx) error {
		return m.st.ClearFailures(ctx, tx, "account", email)
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.setCookie(w, token, maxAge)
	if stage == stageTOTP {
		http.Redirect(w, r, "/admin/login/totp?next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// newSession replaces the browser's current session (if any) by a new one: the session ID
// changes at every login step, so a planted cookie is worthless.
func (m *Module) newSession(r *http.Request, agentID int64, stage string, maxAge time.Duration, also func(*store.Tx) error) (string, error) {
	ctx, now := r.Context(), m.now()
	var token string
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
			if err := m.st.DeleteSessionByToken(ctx, tx, c.Value); err != nil {
				return err
			}
		}
		var err error
		token, err = m.st.CreateSession(ctx, tx, agentID, stage, web.ClientIP(r, m.env.Config.TrustProxy), r.UserAgent(), now, now.Add(maxAge))
		if err != nil {
			return err
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	return token, err
}

// pending returns the agent whose password was checked and whose TOTP code is awaited.
func (m *Module) pending(r *http.Request) (AgentRecord, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return AgentRecord{}, false
	}
	now := m.now()
	ss, err := m.st.sessionByToken(r.Context(), c.Value, stageTOTP, now, now.Add(-m.IdleTimeout))
	if err != nil {
		return AgentRecord{}, false
	}
	a, err := m.st.agentByID(r.Context(), m.st.DB.Read(), ss.AgentID)
	if err != nil || !a.Active || a.TOTPSecret == "" {
		return AgentRecord{}, false
	}
	return a, true
}

func (m *Module) totpForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := m.pending(r); !ok {
		http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
		return
	}
	m.render(w, r, web.Page{Name: "login_totp.html", Layout: "bare", Title: "kernel.auth.totp.title", Form: web.NewForm(nil),
		Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

var totpOpts = totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// validTOTP checks a 6-digit code at the clock's time, one period of skew either way.
func (m *Module) validTOTP(secret, code string) bool {
	ok, err := totp.ValidateCustom(code, secret, m.now(), totpOpts)
	return err == nil && ok
}

// totpStep returns the 30-second step a valid code belongs to (one period of skew either
// way), or -1. Login accepts a step only once, so a code seen over a shoulder or replayed
// from a phished page within its validity does not open a second session.
func (m *Module) totpStep(secret, code string) int64 {
	now := m.now()
	for _, d := range []time.Duration{0, -30 * time.Second, 30 * time.Second} {
		t := now.Add(d)
		want, err := totp.GenerateCodeCustom(secret, t, totpOpts)
		if err == nil && len(code) == len(want) && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return t.Unix() / 30
		}
	}
	return -1
}

// errCodeRefused: the code's step was already used to sign in, or the code is none of the
// agent's unused recovery codes.
var errCodeRefused = errors.New("second-factor code refused")

func (m *Module) totpLogin(w http.ResponseWriter, r *http.Request) {
	f := m.parse(w, r)
	if f == nil {
		return
	}
	a, ok := m.pending(r)
	if !ok {
		http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
		return
	}
	ctx, now := r.Context(), m.now()
	next := safeNext(f.Get("next"))
	page := web.Page{Name: "login_totp.html", Layout: "bare", Title: "kernel.auth.totp.title", Form: f, Data: loginData{Next: next}}
	f.Require("code")
	if !f.Valid() {
		page.Status = http.StatusBadRequest
		m.render(w, r, page)
		return
	}
	ip := web.ClientIP(r, m.env.Config.TrustProxy)
	over, err := m.throttled(ctx, a.Email, ip, now)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if over {
		f.Fail("code", "kernel.auth.error.throttled", "minutes", int(m.FailureWindow/time.Minute))
		page.Status = http.StatusTooManyRequests
		m.render(w, r, page)
		return
	}
	badCode := func() {
		if err := m.recordFailure(ctx, a.Email, ip, now); err != nil {
			m.fail(w, r, err)
			return
		}
		f.Fail("code", "kernel.auth.error.bad_code")
		page.Status = http.StatusUnauthorized
		m.render(w, r, page)
	}
	// The authenticator's code moves the agent's last step (a code signs in once; of two
	// logins racing with one code, only one moves it); else it may be one of the agent's
	// recovery codes, spent by the same transaction that opens the session.
	var spend func(tx *store.Tx) error
	if step := m.totpStep(a.TOTPSecret, f.Get("code")); step >= 0 {
		spend = func(tx *store.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE auth_agents SET totp_step = ? WHERE id = ? AND totp_step < ?`, step, a.ID, step)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return errCodeRefused
			}
			return nil
		}
	} else if normRecoveryCode(f.Get("code")) != "" {
		spend = func(tx *store.Tx) error {
			used, err := m.st.UseRecoveryCode(ctx, tx, a.ID, f.Get("code"), now)
			if err != nil {
				return err
			}
			if !used {
				return errCodeRefused
			}
			return m.auditRecoveryUse(ctx, tx, a)
		}
	} else {
		badCode()
		return
	}
	token, err := m.newSession(r, a.ID, stageOK, m.MaxAge, func(tx *store.Tx) error {
		if err := spend(tx); err != nil {
			return err // the session is not created
		}
		return m.st.ClearFailures(ctx, tx, "account", a.Email)
	})
	if errors.Is(err, errCodeRefused) {
		badCode()
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.setCookie(w, token, m.MaxAge)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (m *Module) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		if err := m.st.DeleteSessionByToken(r.Context(), m.st.DB.Write(), c.Value); err != nil {
			m.fail(w, r, err)
			return
		}
	}
	m.clearCookie(w)
	http.Redirect(w, r, "/admin/login?done=out", http.StatusSeeOther)
}

// ---- password reset

func (m *Module) forgotForm(w http.ResponseWriter, r *http.Request) {
	m.render(w, r, web.Page{Name: "forgot.html", Layout: "bare", Title: "kernel.auth.forgot.title", Form: web.NewForm(nil)})
}

func validEmail(f *web.Form, field string) string {
	e := normEmail(f.Get(field))
	if e == "" {
		return ""
	}
	if addr, err := mail.ParseAddress(e); err != nil || addr.Address != e || len(e) > 254 {
		f.Fail(field, "kernel.auth.error.email")
	}
	return e
}

// resetMailData is what the reset mail templates receive.
type resetMailData struct {
	Name, Link string
	Minutes    int
}

func (m *Module) forgot(w http.ResponseWriter, r *http.Request) {
	f := m.parse(w, r)
	if f == nil {
		return
	}
	f.Require("email")
	email := validEmail(f, "email")
	if !f.Valid() {
		m.render(w, r, web.Page{Name: "forgot.html", Layout: "bare", Title: "kernel.auth.forgot.title", Form: f, Status: http.StatusBadRequest})
		return
	}
	ctx, now := r.Context(), m.now()
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		// A few requests per address and window at most; the answer stays the same.
		n, err := m.st.Failures(ctx, tx, "reset", email, now.Add(-m.FailureWindow))
		if err != nil || n >= m.AccountFailures {
			return err
		}
		if err := m.st.AddFailure(ctx, tx, "reset", email, now); err != nil {
			return err
		}
		cands, err := m.st.AgentsByEmail(ctx, tx, email)
		if err != nil {
			return err
		}
		mailer := m.mailer()
		for _, a := range cands {
			token, err := m.st.CreateToken(ctx, tx, a.ID, purposeReset, now, now.Add(time.Hour))
			if err != nil {
				return err
			}
			if mailer == nil {
				m.log.Warn("no mail service: password reset link not sent", "agent", a.ID)
				continue
			}
			if err := mailer.Send(ctx, tx, kernel.Mail{To: []string{a.Email}, Lang: a.Lang, Template: ID + "/reset", OrgID: a.OrgID,
				Data: resetMailData{Name: a.Name, Link: m.link("/admin/password/reset/" + token), Minutes: 60}}); err != nil {
				return fmt.Errorf("queue reset mail: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.render(w, r, web.Page{Name: "forgot_sent.html", Layout: "bare", Title: "kernel.auth.forgot.sent_title", Data: email})
}

type tokenData struct{ Token string }

func (m *Module) resetForm(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if _, err := m.st.TokenAgent(r.Context(), m.st.DB.Read(), purposeReset, token, m.now()); err != nil {
		m.fail(w, r, err)
		return
	}
	m.render(w, r, web.Page{Name: "reset.html", Layout: "bare", Title: "kernel.auth.reset.title", Form: web.NewForm(nil), Data: tokenData{token}})
}

// newPassword checks the "password" and "confirm" fields.
func newPassword(f *web.Form, email string) string {
	f.Require("password", "confirm")
	pw := f.Values.Get("password")
	if pw == "" {
		return ""
	}
	if k := PasswordProblem(pw, email); k != "" {
		f.Fail("password", k, "min", MinPasswordLen)
	} else if f.Values.Get("confirm") != "" && f.Values.Get("confirm") != pw {
		f.Fail("confirm", "kernel.auth.error.confirm")
	}
	return pw
}

func (m *Module) reset(w http.ResponseWriter, r *http.Request) {
	f := m.parse(w, r)
	if f == nil {
		return
	}
	ctx, now, token := r.Context(), m.now(), r.PathValue("token")
	agentID, err := m.st.TokenAgent(ctx, m.st.DB.Read(), purposeReset, token, now)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	a, err := m.st.agentByID(ctx, m.st.DB.Read(), agentID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	pw := newPassword(f, a.Email)
	if !f.Valid() {
		m.render(w, r, web.Page{Name: "reset.html", Layout: "bare", Title: "kernel.auth.reset.title", Form: f, Data: tokenData{token}, Status: http.StatusBadRequest})
		return
	}
	hash, err := HashPassword(pw)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	err = m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := m.st.UseToken(ctx, tx, purposeReset, token, now); err != nil {
			return err
		}
		if err := m.st.SetPassword(ctx, tx, a.ID, hash, now); err != nil {
			return err
		}
		// Whoever knew the old password is signed out.
		if err := m.st.DeleteSessions(ctx, tx, a.ID); err != nil {
			return err
		}
		if err := m.st.ClearFailures(ctx, tx, "account", a.Email); err != nil {
			return err
		}
		return m.audit(kernel.WithAgent(ctx, toAgent(a, "")), tx, kernel.AuditEntry{Action: "users.password_reset", ResourceType: "agent", ResourceID: fmt.Sprint(a.ID)})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/login?done=reset", http.StatusSeeOther)
}

// ---- first setup of an account created without a password

func (m *Module) setupForm(w http.ResponseWriter, r *http.Request) {
	ctx, token := r.Context(), r.PathValue("token")
	id, err := m.st.TokenAgent(ctx, m.st.DB.Read(), purposeSetup, token, m.now())
	if err != nil {
		m.fail(w, r, err)
		return
	}
	a, err := m.st.agentByID(ctx, m.st.DB.Read(), id)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	f := web.NewForm(url.Values{"email": {a.Email}, "name": {a.Name}})
	m.render(w, r, web.Page{Name: "setup.html", Layout: "bare", Title: "kernel.auth.setup.title", Form: f, Data: tokenData{token}})
}

func (m *Module) setup(w http.ResponseWriter, r *http.Request) {
	f := m.parse(w, r)
	if f == nil {
		return
	}
	ctx, now, token := r.Context(), m.now(), r.PathValue("token")
	id, err := m.st.TokenAgent(ctx, m.st.DB.Read(), purposeSetup, token, now)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	a, err := m.st.Agent(ctx, m.st.DB.Read(), mustOrg(ctx, m, id), id)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	f.Require("email", "name")
	f.MaxLen("name", 200)
	email := validEmail(f, "email")
	pw := newPassword(f, email)
	page := web.Page{Name: "setup.html", Layout: "bare", Title: "kernel.auth.setup.title", Form: f, Data: tokenData{token}, Status: http.StatusBadRequest}
	if !f.Valid() {
		m.render(w, r, page)
		return
	}
	hash, err := HashPassword(pw)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	before := snapshotAgent(a)
	a.Email, a.Name = email, f.Get("name")
	err = m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := m.st.UseToken(ctx, tx, purposeSetup, token, now); err != nil {
			return err
		}
		if err := m.st.UpdateAgent(ctx, tx, &a, now); err != nil {
			return err
		}
		if err := m.st.SetPassword(ctx, tx, a.ID, hash, now); err != nil {
			return err
		}
		return m.audit(kernel.WithAgent(ctx, toAgent(a, "")), tx, kernel.AuditEntry{Action: "users.setup", ResourceType: "agent",
			ResourceID: fmt.Sprint(a.ID), Before: before, After: snapshotAgent(a)})
	})
	if formError(f, err) {
		m.render(w, r, page)
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/login?done=setup", http.StatusSeeOther)
}

// mustOrg returns the organisation of an agent (0 when unknown, which then finds nothing).
func mustOrg(ctx context.Context, m *Module, agentID int64) int64 {
	a, err := m.st.agentByID(ctx, m.st.DB.Read(), agentID)
	if err != nil {
		return 0
	}
	return a.OrgID
}
