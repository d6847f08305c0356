package citizen

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// OpenID Connect sign-in (see IdentityProvider). The state, nonce and return path travel in
// a short-lived cookie signed with the instance secret, so any node can finish the flow.

const (
	oidcCookie = "parvis_oidc"
	oidcTTL    = 10 * time.Minute
)

func (m *Module) idp(name string) IdentityProvider {
	for _, p := range m.idps {
		if p.Name() == name {
			return p
		}
	}
	return nil
}

func (m *Module) oidcSign(v string) string {
	h := hmac.New(sha256.New, []byte("citizen-oidc\x00"+m.cfg.SecretKey))
	h.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func randomString() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (m *Module) callbackURL(provider string) string {
	return strings.TrimRight(m.cfg.BaseURL, "/") + "/compte/oidc/" + provider + "/retour"
}

// GET /compte/oidc/{provider}
func (m *Module) oidcStart(w http.ResponseWriter, r *http.Request) {
	p := m.idp(r.PathValue("provider"))
	if p == nil {
		m.errorPage(w, r, http.StatusNotFound, "kernel.citizen.error.oidc_unknown")
		return
	}
	state, nonce := randomString(), randomString()
	next := base64.RawURLEncoding.EncodeToString([]byte(nextPath(r.URL.Query().Get("next"))))
	exp := strconv.FormatInt(m.now().Add(oidcTTL).Unix(), 10)
	v := strings.Join([]string{p.Name(), state, nonce, next, exp}, ".")
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: v + "." + m.oidcSign(v), Path: "/compte/oidc/",
		MaxAge: int(oidcTTL / time.Second), HttpOnly: true, Secure: m.cfg.Secure(), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, p.AuthCodeURL(state, nonce, m.callbackURL(p.Name())), http.StatusFound)
}

// GET /compte/oidc/{provider}/retour?code=…&state=…
func (m *Module) oidcCallback(w http.ResponseWriter, r *http.Request) {
	p := m.idp(r.PathValue("provider"))
	if p == nil {
		m.errorPage(w, r, http.StatusNotFound, "kernel.citizen.error.oidc_unknown")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Path: "/compte/oidc/", MaxAge: -1, HttpOnly: true, Secure: m.cfg.Secure(), SameSite: http.SameSiteLaxMode})
	ck, err := r.Cookie(oidcCookie)
	parts := []string{}
	if err == nil {
		parts = strings.Split(ck.Value, ".")
	}
	q := r.URL.Query()
	if len(parts) != 6 || !hmac.Equal([]byte(parts[5]), []byte(m.oidcSign(strings.Join(parts[:5], ".")))) ||
		parts[0] != p.Name() || !hmac.Equal([]byte(parts[1]), []byte(q.Get("state"))) {
		m.errorPage(w, r, http.StatusBadRequest, "kernel.citizen.error.oidc_state")
		return
	}
	if exp, err := strconv.ParseInt(parts[4], 10, 64); err != nil || m.now().Unix() > exp {
		m.errorPage(w, r, http.StatusBadRequest, "kernel.citizen.error.oidc_state")
		return
	}
	if q.Get("error") != "" || q.Get("code") == "" {
		m.errorPage(w, r, http.StatusBadRequest, "kernel.citizen.error.oidc_failed")
		return
	}
	claims, err := p.Exchange(r.Context(), q.Get("code"), parts[2], m.callbackURL(p.Name()))
	if err != nil || claims.Subject == "" {
		m.log.WarnContext(r.Context(), "identity provider exchange", "provider", p.Name(), "err", err)
		m.errorPage(w, r, http.StatusBadGateway, "kernel.citizen.error.oidc_failed")
		return
	}
	id, err := m.LinkIdentity(r.Context(), p.Name(), claims, m.lang(r))
	if e, ok := errs.As(err); ok {
		m.errorPage(w, r, http.StatusBadRequest, e.Key)
		return
	}
	if err != nil {
		m.internal(w, r, err)
		return
	}
	if err := m.signIn(w, r, id); err != nil {
		m.internal(w, r, err)
		return
	}
	next, _ := base64.RawURLEncoding.DecodeString(parts[3])
	http.Redirect(w, r, nextPath(string(next)), http.StatusSeeOther)
}

// LinkIdentity returns the account of an identity provider's claims: the one already linked
// to (provider, subject), else the one with the same verified email, else a new verified
// account without a password.
func (m *Module) LinkIdentity(ctx context.Context, provider string, c Claims, lang string) (int64, error) {
	var id int64
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		id, err = identityAccount(ctx, tx, provider, c.Subject)
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			return err
		}
		now := m.now()
		email, eerr := NormalizeEmail(c.Email)
		if eerr != nil || !c.EmailVerified {
			return errs.New(errs.Invalid, "kernel.citizen.error.oidc_email")
		}
		a, err := accountByEmail(ctx, tx, email)
		switch {
		case err == nil:
			if a.VerifiedAt == nil {
				a.VerifiedAt, a.UpdatedAt = &now, now
				if err := updateAccount(ctx, tx, a); err != nil {
					return err
				}
			}
		case errors.Is(err, store.ErrNotFound):
			name := c.Name
			if len([]rune(name)) > maxName {
				name = string([]rune(name)[:maxName])
			}
			a = Account{Email: email, Name: name, Lang: lang, VerifiedAt: &now, CreatedAt: now, UpdatedAt: now}
			if err := insertAccount(ctx, tx, &a); err != nil {
				return err
			}
		default:
			return err
		}
		id = a.ID
		return insertIdentity(ctx, tx, provider, c.Subject, a.ID, now)
	})
	return id, err
}
