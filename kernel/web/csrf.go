package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
)

// CSRF protects every state-changing request twice: Go's cross-origin protection (refusing
// cross-site non-safe requests by Sec-Fetch-Site / Origin), and a synchronizer token — a
// random per-browser cookie whose HMAC must come back in the form field "csrf" or the
// X-CSRF-Token header. Requests authenticated by an API bearer token carry no cookies and
// are exempt from the token (but not from the origin check).
type CSRF struct {
	secret []byte
	secure bool
	cop    *http.CrossOriginProtection
	// OnFail renders the refusal; defaults to a plain 403.
	OnFail http.Handler
}

const csrfCookie = "parvis_csrf"

// NewCSRF returns the protection keyed by secret.
func NewCSRF(secret string, secure bool) *CSRF {
	return &CSRF{secret: []byte("csrf\x00" + secret), secure: secure, cop: http.NewCrossOriginProtection()}
}

type csrfKey struct{}

// csrfSeed is the per-request state: the browser's seed, or the writer to set one on. The
// cookie is minted only when a page asks for a token (it renders a form), so anonymous pages
// without forms carry no Set-Cookie and stay cheap and cacheable.
type csrfSeed struct {
	seed string
	w    http.ResponseWriter
	c    *CSRF
}

func (c *CSRF) sign(v string) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Token returns the token for forms of this request ("" outside Protect), setting the seed
// cookie first if the browser has none yet.
func (c *CSRF) Token(r *http.Request) string {
	st := seedOf(r)
	if st == nil {
		return ""
	}
	if st.seed == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		st.seed = base64.RawURLEncoding.EncodeToString(b[:])
		http.SetCookie(st.w, &http.Cookie{Name: csrfCookie, Value: st.seed, Path: "/", HttpOnly: true,
			Secure: c.secure, SameSite: http.SameSiteLaxMode})
	}
	return c.sign(st.seed)
}

// Protect wraps next.
func (c *CSRF) Protect(next http.Handler) http.Handler {
	fail := func(w http.ResponseWriter, r *http.Request) {
		if c.OnFail != nil {
			c.OnFail.ServeHTTP(w, r)
			return
		}
		http.Error(w, "invalid or missing CSRF token: reload the page and try again", http.StatusForbidden)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := c.cop.Check(r); err != nil {
			fail(w, r)
			return
		}
		var seed string
		if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 22 {
			seed = ck.Value
		}
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
		bearer := strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") && len(r.Cookies()) == 0
		if !safe && !bearer {
			sent := r.Header.Get("X-CSRF-Token")
			if sent == "" {
				sent = r.PostFormValue("csrf")
			}
			if seed == "" || !hmac.Equal([]byte(sent), []byte(c.sign(seed))) {
				fail(w, r)
				return
			}
		}
		// Behind RequestID the state lives in its per-request record: no second copy of
		// the request (this runs on every request, cached pages included).
		if ri, ok := r.Context().Value(reqIDKey{}).(*requestInfo); ok && ri.csrf == nil {
			ri.csrfState = csrfSeed{seed: seed, w: w, c: c}
			ri.csrf = &ri.csrfState
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(contextWith(r, csrfKey{}, &csrfSeed{seed: seed, w: w, c: c})))
	})
}

// seedOf returns the CSRF state Protect left for r, or nil.
func seedOf(r *http.Request) *csrfSeed {
	ctx := r.Context()
	if st, _ := ctx.Value(csrfKey{}).(*csrfSeed); st != nil {
		return st
	}
	if ri, _ := ctx.Value(reqIDKey{}).(*requestInfo); ri != nil {
		return ri.csrf
	}
	return nil
}
