package citizen

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
)

// CookieName is the session cookie of citizens and guests.
const CookieName = "parvis_session"

type currentKey struct{}

// current is the session of a request, kept in its context by Middleware.
type current struct {
	raw  string // cookie value
	s    session
	acct *Account // nil for a guest
}

func currentFrom(r *http.Request) *current {
	c, _ := r.Context().Value(currentKey{}).(*current)
	return c
}

// Middleware reads the session cookie and puts the citizen (or guest) on the request
// context, where kernel.CitizenFrom finds it.
func (m *Module) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(CookieName)
		if err != nil || ck.Value == "" || strings.HasPrefix(r.URL.Path, "/static/") {
			next.ServeHTTP(w, r)
			return
		}
		cur, err := m.load(r.Context(), ck.Value)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				m.log.ErrorContext(r.Context(), "citizen session", "err", err)
			} else {
				m.clearCookie(w) // expired or deleted: stop sending it
			}
			next.ServeHTTP(w, r)
			return
		}
		c := &kernel.Citizen{Email: cur.s.GuestEmail, Verified: true}
		if a := cur.acct; a != nil {
			c = &kernel.Citizen{ID: a.ID, Email: a.Email, Name: a.Name, Verified: a.VerifiedAt != nil}
		}
		ctx := kernel.WithCitizen(context.WithValue(r.Context(), currentKey{}, cur), c)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// load finds the live session of cookie value raw and slides its expiry, at most once a day.
func (m *Module) load(ctx context.Context, raw string) (*current, error) {
	if len(raw) > 100 {
		return nil, store.ErrNotFound
	}
	now := m.now()
	s, a, err := signedIn(ctx, m.db.Read(), hashToken(raw), now)
	if err != nil {
		return nil, err
	}
	cur := &current{raw: raw, s: s, acct: a}
	if a == nil {
		return cur, nil
	}
	if s.ExpiresAt.Sub(now) < sessionIdle-24*time.Hour {
		until := now.Add(sessionIdle)
		if limit := s.CreatedAt.Add(sessionMax); until.After(limit) {
			until = limit
		}
		if err := extendSession(ctx, m.db.Write(), s.ID, until); err != nil {
			m.log.WarnContext(ctx, "extend citizen session", "err", err)
		}
	}
	return cur, nil
}

func (m *Module) setCookie(w http.ResponseWriter, raw string, until time.Time) {
	maxAge := int(sessionMax / time.Second)
	if d := until.Sub(m.now()); d < sessionIdle {
		maxAge = int(d / time.Second) // a guest session
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: raw, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: m.cfg.Secure(), SameSite: http.SameSiteLaxMode})
}

func (m *Module) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: m.cfg.Secure(), SameSite: http.SameSiteLaxMode})
}

// signIn starts a fresh session for an account (rotating any previous one) and sets its cookie.
func (m *Module) signIn(w http.ResponseWriter, r *http.Request, accountID int64) error {
	old := ""
	if ck, err := r.Cookie(CookieName); err == nil {
		old = ck.Value
	}
	raw, until, err := m.StartSession(r.Context(), accountID, "", old)
	if err != nil {
		return err
	}
	m.setCookie(w, raw, until)
	return nil
}
