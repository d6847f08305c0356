package citizen_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/citizen"
)

const pw = "un mot de passe solide"

func TestSignUpVerifyLogin(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		c := e.Client()
		if r := c.Get("/compte"); r.Status != 303 || !strings.HasPrefix(r.Location, "/compte/connexion?next=") {
			t.Fatalf("anonymous /compte: %d %s", r.Status, r.Location)
		}
		c.Get("/compte/inscription")
		r := c.Post("/compte/inscription", form("email", "Anne@Example.fr", "name", "Anne Martin", "password", pw))
		if r.Status != 200 || !strings.Contains(r.Body, "Anne@Example.fr") {
			t.Fatalf("sign-up: %d %s", r.Status, r.Body)
		}
		// Not verified yet: the right password is refused with a clear message and a new link.
		c.Get("/compte/connexion")
		r = c.Post("/compte/connexion", form("email", "anne@example.fr", "password", pw))
		if r.Status != 403 || !strings.Contains(r.Body, "pv-error-summary") || len(e.mails("anne@example.fr", "verify")) != 2 {
			t.Fatalf("unverified login: %d, %d mails", r.Status, len(e.mails("anne@example.fr", "verify")))
		}
		link := e.link(t, "anne@example.fr", "verify")
		if r := c.Get(link); r.Status != 200 {
			t.Fatalf("verify: %d %s", r.Status, r.Body)
		}
		if r := c.Get(link); r.Status != 410 {
			t.Fatalf("verify link used twice: %d", r.Status)
		}
		c.Get("/compte/connexion?next=/test/whoami")
		r = c.Post("/compte/connexion", form("email", "ANNE@example.fr", "password", pw, "next", "/test/whoami"))
		if r.Status != 303 || r.Location != "/test/whoami" {
			t.Fatalf("login: %d %s", r.Status, r.Location)
		}
		var ck *http.Cookie
		u, _ := url.Parse(e.URL)
		for _, k := range c.Jar.Cookies(u) {
			if k.Name == citizen.CookieName {
				ck = k
			}
		}
		if ck == nil || len(ck.Value) < 22 {
			t.Fatalf("no session cookie")
		}
		if r := c.Get("/compte"); r.Status != 200 || !strings.Contains(r.Body, "Anne Martin") {
			t.Fatalf("/compte: %d", r.Status)
		}
		if r := c.Get("/test/whoami"); !strings.Contains(r.Body, "guest=anne@example.fr ok=true citizen=1 email=anne@example.fr verified=true") {
			t.Fatalf("whoami: %s", r.Body)
		}
		// The session is in the database: a new server on the same database would accept it;
		// here a second client with only the cookie is accepted.
		c2 := e.Client()
		c2.Jar.SetCookies(u, []*http.Cookie{{Name: citizen.CookieName, Value: ck.Value}})
		if r := c2.Get("/compte"); r.Status != 200 {
			t.Fatalf("cookie on another client: %d", r.Status)
		}
		// Logging in again rotates the session: the old cookie stops working.
		c.Get("/compte/connexion")
		c.Post("/compte/connexion", form("email", "anne@example.fr", "password", pw))
		if r := c2.Get("/compte"); r.Status != 303 {
			t.Fatalf("old session after a new login: %d", r.Status)
		}
		c.Get("/compte")
		if r := c.Post("/compte/deconnexion", nil); r.Status != 303 {
			t.Fatalf("logout: %d", r.Status)
		}
		if r := c.Get("/compte"); r.Status != 303 {
			t.Fatalf("/compte after logout: %d", r.Status)
		}
		if n := e.count(t, `SELECT COUNT(*) FROM citizen_sessions`); n != 0 {
			t.Fatalf("%d sessions left after logout", n)
		}
	})
}

func TestSignUpTwiceRevealsNothing(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		c := e.Client()
		e.signUp(t, c, "anne@example.fr", "Anne", pw)
		other := e.Client()
		other.Get("/compte/inscription")
		r1 := other.Post("/compte/inscription", form("email", "anne@example.fr", "name", "Mallory", "password", "another long password"))
		r2 := other.Post("/compte/inscription", form("email", "new@example.fr", "name", "Mallory", "password", "another long password"))
		if r1.Status != 200 || r2.Status != 200 || strings.ReplaceAll(r1.Body, "anne@", "new@") != r2.Body {
			t.Fatalf("answers differ: %d / %d", r1.Status, r2.Status)
		}
		if len(e.mails("anne@example.fr", "signup_exists")) != 1 {
			t.Fatal("the owner was not told")
		}
		if n := e.count(t, `SELECT COUNT(*) FROM citizen_accounts WHERE name = 'Mallory' AND email = 'anne@example.fr'`); n != 0 {
			t.Fatal("account overwritten")
		}
	})
}

func TestWrongPasswordAndThrottle(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		c := e.Client()
		e.signUp(t, c, "anne@example.fr", "Anne", pw)
		bad := e.Client()
		bad.Get("/compte/connexion")
		for i := range 5 {
			r := bad.Post("/compte/connexion", form("email", "anne@example.fr", "password", "wrong password!"))
			if r.Status != 401 || !strings.Contains(r.Body, "pv-error-summary") || !strings.Contains(r.Body, `value="anne@example.fr"`) {
				t.Fatalf("attempt %d: %d", i, r.Status)
			}
		}
		// The sixth attempt is refused even with the right password.
		r := bad.Post("/compte/connexion", form("email", "anne@example.fr", "password", pw))
		if r.Status != 429 || !strings.Contains(r.Body, "15 minutes") {
			t.Fatalf("throttled: %d %s", r.Status, r.Body)
		}
		// An unknown email is throttled the same way (no enumeration).
		for range 5 {
			bad.Post("/compte/connexion", form("email", "ghost@example.fr", "password", "wrong password!"))
		}
		if r := bad.Post("/compte/connexion", form("email", "ghost@example.fr", "password", "wrong password!")); r.Status != 429 {
			t.Fatalf("unknown email not throttled: %d", r.Status)
		}
		e.clock.Add(16 * time.Minute)
		if r := bad.Post("/compte/connexion", form("email", "anne@example.fr", "password", pw)); r.Status != 303 {
			t.Fatalf("after the window: %d", r.Status)
		}
		// Per address: 20 failures from one address, on any accounts, block the address.
		e.clock.Add(16 * time.Minute)
		for i := range 20 {
			bad.Post("/compte/connexion", form("email", "user"+string(rune('a'+i))+"@example.fr", "password", "wrong password!"))
		}
		if r := bad.Post("/compte/connexion", form("email", "anne@example.fr", "password", pw)); r.Status != 429 {
			t.Fatalf("address not throttled: %d", r.Status)
		}
	})
}

func TestMagicLink(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.signUp(t, e.Client(), "anne@example.fr", "Anne", pw)
		c := e.Client()
		c.Get("/compte/lien")
		known := c.Post("/compte/lien", form("email", "anne@example.fr"))
		unknown := c.Post("/compte/lien", form("email", "ghost@example.fr"))
		if known.Status != 200 || unknown.Status != 200 || strings.ReplaceAll(known.Body, "anne@", "ghost@") != unknown.Body {
			t.Fatalf("answers differ: %d / %d", known.Status, unknown.Status)
		}
		if len(e.mails("ghost@example.fr", "magic_link")) != 0 {
			t.Fatal("mail sent for an unknown address")
		}
		link := e.link(t, "anne@example.fr", "magic_link")
		tok := strings.TrimPrefix(link, "/compte/lien/ouvrir?t=")
		// Opening the link (a mail scanner would) signs nobody in and uses nothing up.
		for range 2 {
			if r := c.Get(link); r.Status != 200 || !strings.Contains(r.Body, `name="t"`) {
				t.Fatalf("confirm page: %d", r.Status)
			}
		}
		if r := c.Get("/compte"); r.Status != 303 {
			t.Fatalf("signed in by a GET: %d", r.Status)
		}
		if r := c.Post("/compte/lien/ouvrir", form("t", tok)); r.Status != 303 || r.Location != "/compte?ok=welcome" {
			t.Fatalf("use: %d %s", r.Status, r.Location)
		}
		if r := c.Get("/compte"); r.Status != 200 {
			t.Fatalf("/compte: %d", r.Status)
		}
		// Single use.
		other := e.Client()
		if r := other.Get(link); r.Status != 410 {
			t.Fatalf("GET used link: %d", r.Status)
		}
		other.Get("/compte/lien") // for a CSRF token
		if r := other.Post("/compte/lien/ouvrir", form("t", tok)); r.Status != 410 || other.Get("/compte").Status != 303 {
			t.Fatalf("reused link: %d", r.Status)
		}
		// Expiry after 15 minutes.
		other.Get("/compte/lien")
		other.Post("/compte/lien", form("email", "anne@example.fr"))
		link = e.link(t, "anne@example.fr", "magic_link")
		e.clock.Add(15*time.Minute + time.Second)
		if r := other.Get(link); r.Status != 410 {
			t.Fatalf("expired link page: %d", r.Status)
		}
		other.Get("/compte/lien")
		if r := other.Post("/compte/lien/ouvrir", form("t", strings.TrimPrefix(link, "/compte/lien/ouvrir?t="))); r.Status != 410 {
			t.Fatalf("expired link: %d", r.Status)
		}
	})
}

func TestExportAndDelete(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		c := e.Client()
		e.signUp(t, c, "anne@example.fr", "Anne", pw)
		e.signUp(t, e.Client(), "bob@example.fr", "Bob", pw)
		ctx := context.Background()
		for _, n := range []struct {
			id   int
			note string
		}{{1, "rdv mairie"}, {1, "demande voirie"}, {2, "bob's"}} {
			if _, err := e.DB.Write().ExecContext(ctx, `INSERT INTO test_notes (citizen_id, note) VALUES (?, ?)`, n.id, n.note); err != nil {
				t.Fatal(err)
			}
		}
		r := c.Get("/compte/export")
		if r.Status != 200 || !strings.Contains(r.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("export: %d %v", r.Status, r.Header)
		}
		var got struct {
			Account struct {
				ID    int64  `json:"id"`
				Email string `json:"email"`
				Name  string `json:"name"`
			} `json:"account"`
			Modules map[string][]string `json:"modules"`
		}
		if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
			t.Fatalf("export JSON: %v\n%s", err, r.Body)
		}
		if got.Account.Email != "anne@example.fr" || got.Account.Name != "Anne" || strings.Join(got.Modules["test.notes"], "|") != "demande voirie|rdv mairie" {
			t.Fatalf("export: %s", r.Body)
		}
		if strings.Contains(r.Body, "argon2") {
			t.Fatal("the export holds the password hash")
		}
		u, _ := url.Parse(e.URL)
		var session string
		for _, k := range c.Jar.Cookies(u) {
			if k.Name == citizen.CookieName {
				session = k.Value
			}
		}
		c.Get("/compte/supprimer")
		if r := c.Post("/compte/supprimer", form("password", "wrong password!")); r.Status != 401 || !strings.Contains(r.Body, "pv-error-summary") {
			t.Fatalf("delete with a wrong password: %d", r.Status)
		}
		if r := c.Post("/compte/supprimer", form("password", pw)); r.Status != 200 {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		for q, want := range map[string]int{
			`SELECT COUNT(*) FROM citizen_accounts WHERE id = 1`:         0,
			`SELECT COUNT(*) FROM citizen_sessions WHERE account_id = 1`: 0,
			`SELECT COUNT(*) FROM citizen_tokens WHERE account_id = 1`:   0,
			`SELECT COUNT(*) FROM test_notes WHERE citizen_id = 1`:       0,
			`SELECT COUNT(*) FROM test_notes WHERE citizen_id = 2`:       1,
			`SELECT COUNT(*) FROM citizen_accounts`:                      1,
		} {
			if n := e.count(t, q); n != want {
				t.Errorf("%s = %d, want %d", q, n, want)
			}
		}
		replay := e.Client()
		replay.Jar.SetCookies(u, []*http.Cookie{{Name: citizen.CookieName, Value: session}})
		if r := replay.Get("/compte"); r.Status != 303 {
			t.Fatalf("deleted account's session still works: %d", r.Status)
		}
		if r := replay.Get("/compte/export"); r.Status != 303 {
			t.Fatalf("export after deletion: %d", r.Status)
		}
	})
}

func TestBadInput(t *testing.T) {
	long := strings.Repeat("x", 101)
	each(t, func(t *testing.T, e *env) {
		c := e.Client()
		c.Get("/compte/inscription")
		for _, tc := range []struct {
			name   string
			path   string
			form   url.Values
			status int
			field  string // the field named in the error summary
			kept   string // another answer shown again
		}{
			{"missing email", "/compte/inscription", form("name", "Anne", "password", pw), 400, "email", `value="Anne"`},
			{"invalid email", "/compte/inscription", form("email", "anne@", "name", "Anne", "password", pw), 400, "email", `value="Anne"`},
			{"short password", "/compte/inscription", form("email", "anne@example.fr", "name", "Anne", "password", "court"), 400, "password", `value="anne@example.fr"`},
			{"oversized name", "/compte/inscription", form("email", "anne@example.fr", "name", long, "password", pw), 400, "name", `value="anne@example.fr"`},
			{"oversized email", "/compte/inscription", form("email", strings.Repeat("a", 250)+"@example.fr", "name", "Anne", "password", pw), 400, "email", `value="Anne"`},
			{"login without password", "/compte/connexion", form("email", "anne@example.fr"), 400, "password", `value="anne@example.fr"`},
			{"magic link, invalid email", "/compte/lien", form("email", "pas une adresse"), 400, "email", `value="pas une adresse"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := c.Post(tc.path, tc.form)
				if r.Status != tc.status || !strings.Contains(r.Body, `class="pv-error-summary"`) ||
					!strings.Contains(r.Body, `href="#f-`+tc.field+`"`) || !strings.Contains(r.Body, tc.kept) ||
					!strings.Contains(r.Body, `aria-describedby="f-`+tc.field) {
					t.Fatalf("%d\n%s", r.Status, r.Body)
				}
			})
		}
		if n := e.count(t, `SELECT COUNT(*) FROM citizen_accounts`); n != 0 {
			t.Fatalf("%d accounts created from bad input", n)
		}
		if r := c.Post("/compte/inscription", form("email", "anne@example.fr", "name", "Anne", "password", strings.Repeat("p", 2000))); r.Status != 400 {
			t.Fatalf("huge password: %d", r.Status)
		}
	})
}

func TestForgedAndReusedTokens(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		c := e.Client()
		for _, tc := range []struct {
			path   string
			status int
		}{
			{"/compte/verifier?t=forged", 400},
			{"/compte/verifier", 400},
			{"/compte/verifier?t=" + strings.Repeat("A", 43), 400},
			{"/compte/lien/ouvrir?t=forged", 400},
			{"/compte/invite?t=forged", 400},
			{"/compte/email/confirmer?t=forged", 400},
		} {
			r := c.Get(tc.path)
			if r.Status != tc.status || !strings.Contains(r.Body, "lien") {
				t.Errorf("%s: %d", tc.path, r.Status)
			}
		}
		// A token of one kind is worthless as another.
		c.Get("/compte/inscription")
		c.Post("/compte/inscription", form("email", "anne@example.fr", "name", "Anne", "password", pw))
		verify := e.link(t, "anne@example.fr", "verify")
		tok := strings.TrimPrefix(verify, "/compte/verifier?t=")
		c.Get("/compte/lien")
		if r := c.Post("/compte/lien/ouvrir", form("t", tok)); r.Status != 400 {
			t.Fatalf("verify token used as a login link: %d", r.Status)
		}
		if r := c.Get(verify); r.Status != 200 {
			t.Fatalf("verify: %d", r.Status)
		}
		if r := c.Get(verify); r.Status != 410 || !strings.Contains(r.Body, "déjà été utilisé") {
			t.Fatalf("reused: %d %s", r.Status, r.Body)
		}
	})
}

func TestProfileEmailAndPassword(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		c := e.Client()
		e.signUp(t, c, "anne@example.fr", "Anne", pw)
		other := e.Client()
		e.signUp(t, other, "bob@example.fr", "Bob", pw)
		c.Get("/compte/profil")
		if r := c.Post("/compte/profil", form("name", "Anne Martin")); r.Status != 303 {
			t.Fatalf("name: %d", r.Status)
		}
		if r := c.Get("/compte?ok=name"); !strings.Contains(r.Body, "Anne Martin") || !strings.Contains(r.Body, "pv-notice") {
			t.Fatalf("name not shown")
		}
		// Email change: wrong password, then right; the account keeps its email until the
		// link is followed.
		c.Get("/compte/email")
		if r := c.Post("/compte/email", form("new_email", "anne.m@example.fr", "password", "wrong password!")); r.Status != 401 {
			t.Fatalf("email change, wrong password: %d", r.Status)
		}
		if r := c.Post("/compte/email", form("new_email", "anne.m@example.fr", "password", pw)); r.Status != 200 {
			t.Fatalf("email change: %d", r.Status)
		}
		// To an address taken by Bob: the same answer, and Bob is told.
		if r := c.Post("/compte/email", form("new_email", "bob@example.fr", "password", pw)); r.Status != 200 || len(e.mails("bob@example.fr", "signup_exists")) != 1 {
			t.Fatalf("email change to a taken address: %d", r.Status)
		}
		if n := e.count(t, `SELECT COUNT(*) FROM citizen_accounts WHERE email = 'anne@example.fr'`); n != 1 {
			t.Fatal("email changed before confirmation")
		}
		if r := c.Get(e.link(t, "anne.m@example.fr", "email_change")); r.Status != 200 {
			t.Fatalf("confirm: %d", r.Status)
		}
		if r := c.Get("/compte"); !strings.Contains(r.Body, "anne.m@example.fr") {
			t.Fatal("new email not shown")
		}
		// Password change signs out the other sessions, not this one.
		second := e.Client()
		second.Get("/compte/connexion")
		second.Post("/compte/connexion", form("email", "anne.m@example.fr", "password", pw))
		c.Get("/compte/mot-de-passe")
		if r := c.Post("/compte/mot-de-passe", form("current", pw, "new", "court")); r.Status != 400 || !strings.Contains(r.Body, `href="#f-new"`) {
			t.Fatalf("short new password: %d", r.Status)
		}
		if r := c.Post("/compte/mot-de-passe", form("current", "wrong password!", "new", "a brand new passphrase")); r.Status != 401 {
			t.Fatalf("wrong current password: %d", r.Status)
		}
		if r := c.Post("/compte/mot-de-passe", form("current", pw, "new", "a brand new passphrase")); r.Status != 303 {
			t.Fatalf("password: %d", r.Status)
		}
		if c.Get("/compte").Status != 200 || second.Get("/compte").Status != 303 {
			t.Fatal("sessions after a password change")
		}
		second.Get("/compte/connexion")
		if r := second.Post("/compte/connexion", form("email", "anne.m@example.fr", "password", "a brand new passphrase")); r.Status != 303 {
			t.Fatalf("login with the new password: %d", r.Status)
		}
	})
}

func TestGuests(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		g, ok := kernel.Service[citizen.Guests](e.Modules[0].Env)
		if !ok {
			t.Fatal("Guests not published")
		}
		ctx := context.Background()
		for _, tc := range []struct{ email, ret string }{{"not an email", "/rdv"}, {"g@example.fr", "https://evil.example/"}, {"g@example.fr", "//evil.example/"}} {
			if err := g.Start(ctx, tc.email, tc.ret, "fr"); err == nil {
				t.Fatalf("Start(%q, %q) accepted", tc.email, tc.ret)
			}
		}
		if err := g.Start(ctx, "Guest@Example.fr", "/test/whoami?step=2", "en"); err != nil {
			t.Fatal(err)
		}
		ms := e.mails("guest@example.fr", "guest")
		if len(ms) != 1 || ms[0].Lang != "en" || ms[0].Subject != "Confirm your email address" {
			t.Fatalf("guest mails: %+v", ms)
		}
		c := e.Client()
		if r := c.Get("/test/whoami"); !strings.Contains(r.Body, "ok=false") {
			t.Fatalf("before: %s", r.Body)
		}
		link := e.link(t, "guest@example.fr", "guest")
		c.Get(link)
		r := c.Post("/compte/invite", form("t", strings.TrimPrefix(link, "/compte/invite?t=")))
		if r.Status != 303 || r.Location != "/test/whoami?step=2" {
			t.Fatalf("guest link: %d %s", r.Status, r.Location)
		}
		if r := c.Get("/test/whoami"); r.Body != "guest=guest@example.fr ok=true citizen=0 email=guest@example.fr verified=true" {
			t.Fatalf("after: %s", r.Body)
		}
		if r := c.Get("/compte"); r.Status != 303 {
			t.Fatalf("a guest reached the account page: %d", r.Status)
		}
		// The guest session is short-lived.
		e.clock.Add(2*time.Hour + time.Second)
		if r := c.Get("/test/whoami"); !strings.Contains(r.Body, "ok=false") {
			t.Fatalf("guest session outlived its time: %s", r.Body)
		}
	})
}

func TestIdentityProvider(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		c := e.Client()
		if r := c.Get("/compte/connexion"); !strings.Contains(r.Body, `href="/compte/oidc/fake-fc"`) {
			t.Fatalf("no provider button:\n%s", r.Body)
		}
		if r := c.Get("/compte/oidc/nope"); r.Status != 404 {
			t.Fatalf("unknown provider: %d", r.Status)
		}
		r := c.Get("/compte/oidc/fake-fc?next=/test/whoami")
		if r.Status != 302 || !strings.HasPrefix(r.Location, "https://idp.example/authorize?") {
			t.Fatalf("start: %d %s", r.Status, r.Location)
		}
		au, _ := url.Parse(r.Location)
		state, nonce := au.Query().Get("state"), au.Query().Get("nonce")
		if au.Query().Get("redirect_uri") != e.URL+"/compte/oidc/fake-fc/retour" {
			t.Fatalf("redirect_uri %q", au.Query().Get("redirect_uri"))
		}
		// A forged state is refused (and clears the flow's cookie).
		if r := e.Client().Get("/compte/oidc/fake-fc/retour?state=" + state + "&code=good-s1-fc@example.fr"); r.Status != 400 {
			t.Fatalf("callback without the cookie: %d", r.Status)
		}
		if r := c.Get("/compte/oidc/fake-fc/retour?state=x&code=good-s1-fc@example.fr"); r.Status != 400 {
			t.Fatalf("wrong state: %d", r.Status)
		}
		c.Get("/compte/oidc/fake-fc?next=/test/whoami")
		r = c.Get("/compte/oidc/fake-fc?next=/test/whoami")
		au, _ = url.Parse(r.Location)
		state, nonce = au.Query().Get("state"), au.Query().Get("nonce")
		r = c.Get("/compte/oidc/fake-fc/retour?state=" + url.QueryEscape(state) + "&code=good-s1-fc@example.fr")
		if r.Status != 303 || r.Location != "/test/whoami" {
			t.Fatalf("callback: %d %s %s", r.Status, r.Location, r.Body)
		}
		if r := c.Get("/compte"); r.Status != 200 || !strings.Contains(r.Body, "FC "+nonce[:4]) {
			t.Fatalf("account of the provider: %d", r.Status)
		}
		if n := e.count(t, `SELECT COUNT(*) FROM citizen_identities WHERE provider = 'fake-fc' AND subject = 's1'`); n != 1 {
			t.Fatalf("identity rows: %d", n)
		}
		// Without a password, deleting asks for the box to be ticked.
		c.Get("/compte/supprimer")
		if r := c.Post("/compte/supprimer", nil); r.Status != 400 || !strings.Contains(r.Body, `href="#f-confirm"`) {
			t.Fatalf("delete without confirmation: %d", r.Status)
		}
		if r := c.Post("/compte/supprimer", form("confirm", "yes")); r.Status != 200 {
			t.Fatalf("delete: %d", r.Status)
		}
		if n := e.count(t, `SELECT COUNT(*) FROM citizen_identities`); n != 0 {
			t.Fatalf("identity rows after deletion: %d", n)
		}
	})
}
