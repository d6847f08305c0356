package auth_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
	"parvis.org/parvis/kernel/web"
)

// Test doubles of the services other parts publish, so these tests see what auth sends:
// a recording mailer (priority 20, like the mail part) and a recording auditor (30).

type recMail struct {
	mu   sync.Mutex
	sent []kernel.Mail
}

func (*recMail) Info() kernel.Info {
	return kernel.Info{ID: "test.mailrec", Builtin: true, Priority: 20, New: func() kernel.Module { return &recMail{} }}
}
func (r *recMail) Provision(_ context.Context, env *kernel.Env) error {
	kernel.Replace[kernel.Mailer](env, r)
	return nil
}
func (r *recMail) Send(_ context.Context, tx *store.Tx, m kernel.Mail) error {
	tx.AfterCommit(func() { r.mu.Lock(); r.sent = append(r.sent, m); r.mu.Unlock() })
	return nil
}
func (r *recMail) all() []kernel.Mail {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]kernel.Mail(nil), r.sent...)
}

type recAudit struct {
	mu      sync.Mutex
	entries []string
}

func (*recAudit) Info() kernel.Info {
	return kernel.Info{ID: "test.auditrec", Builtin: true, Priority: 31, New: func() kernel.Module { return &recAudit{} }}
}
func (r *recAudit) Provision(_ context.Context, env *kernel.Env) error {
	kernel.Replace[kernel.Auditor](env, r) // over kernel.audit, linked in through kernel/auth
	return nil
}
func (r *recAudit) Record(ctx context.Context, tx *store.Tx, e kernel.AuditEntry) error {
	who := "?"
	if a := kernel.AgentFrom(ctx); a != nil {
		who = a.Email
	}
	tx.AfterCommit(func() { r.mu.Lock(); r.entries = append(r.entries, who+" "+e.Action); r.mu.Unlock() })
	return nil
}
func (r *recAudit) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.entries {
		if e == s {
			return true
		}
	}
	return false
}

// apiTest declares one API route, to test bearer tokens.
type apiTest struct{}

func (apiTest) Info() kernel.Info {
	return kernel.Info{ID: "test.api", New: func() kernel.Module { return apiTest{} }}
}
func (apiTest) Declare() kernel.Parts {
	return kernel.Parts{
		Permissions: []kernel.Permission{{Name: "test.things.view", Title: "test"}, {Name: "test.things.edit", Title: "test"},
			{Name: "test.things.own", ResourceType: "thing", Title: "test"}},
		Extensions: []kernel.Extension{{Point: kernel.PointResources, Value: kernel.ResourceSource(things{})}},
		Routes: []kernel.Route{{Area: kernel.API, Method: "GET", Pattern: "/api/test/things", Perm: "test.things.view",
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				web.WriteJSON(w, 200, map[string]string{"who": kernel.AgentFrom(r.Context()).Email})
			})}},
	}
}

// things are the test module's resources, which a role may be granted on one by one.
type things struct{}

func (things) ResourceType() string  { return "thing" }
func (things) ResourceTitle() string { return "kernel.auth.field.resource" }
func (things) Resources(context.Context, int64) ([]kernel.ResourceItem, error) {
	return []kernel.ResourceItem{{ID: "1", Title: "Armoire"}, {ID: "2", Title: "Commode"}}, nil
}

func init() {
	kernel.Register(&recMail{})
	kernel.Register(&recAudit{})
	kernel.Register(apiTest{})
}

func find[T any](s *servertest.Server) T {
	for _, in := range s.Modules {
		if m, ok := in.Module.(T); ok {
			return m
		}
	}
	s.T.Fatalf("module %T missing", *new(T))
	panic("unreachable")
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)} }
func each(t *testing.T, f func(t *testing.T, d store.Dialect)) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) { t.Parallel(); f(t, d) })
	}
}

func TestLogin(t *testing.T) {
	each(t, func(t *testing.T, d store.Dialect) {
		clk := newClock()
		s := servertest.New(t, d, servertest.Options{Clock: clk})
		org := s.DefaultOrg()
		s.NewAgent(org, "agent@mairie.fr")
		totpAgent := s.NewAgent(org, "totp@mairie.fr")
		key, _ := totp.Generate(totp.GenerateOpts{Issuer: "Parvis", AccountName: "totp@mairie.fr"})
		if _, err := s.DB.Write().ExecContext(context.Background(), store.Rebind(s.DB.Dialect, `UPDATE auth_agents SET totp_secret = ? WHERE id = ?`), key.Secret(), totpAgent.ID); err != nil {
			t.Fatal(err)
		}
		code := func() string { c, _ := totp.GenerateCode(key.Secret(), clk.Now()); return c }

		type step struct {
			name       string
			path       string
			form       url.Values
			wantStatus int
			wantLoc    string // prefix of Location
			wantBody   string
		}
		login := func(email, pw string) url.Values {
			return url.Values{"email": {email}, "password": {pw}, "next": {"/admin/account"}}
		}
		tests := []struct {
			name  string
			steps []step
			// after: whether /admin/account is reachable at the end
			signedIn bool
		}{
			{"good password", []step{{"login", "/admin/login", login("AGENT@mairie.fr", servertest.Password), 303, "/admin/account", ""}}, true},
			{"wrong password", []step{{"login", "/admin/login", login("agent@mairie.fr", "not the password!"), 401, "", "pv-error-summary"}}, false},
			{"unknown email", []step{{"login", "/admin/login", login("nobody@mairie.fr", "not the password!"), 401, "", "pv-error-summary"}}, false},
			{"missing fields", []step{{"login", "/admin/login", url.Values{"email": {"agent@mairie.fr"}}, 400, "", `value="agent@mairie.fr"`}}, false},
			{"offsite next ignored", []step{{"login", "/admin/login", url.Values{"email": {"agent@mairie.fr"}, "password": {servertest.Password}, "next": {"//evil.example/"}}, 303, "/admin/", ""}}, true},
			{"totp: password then code", []step{
				{"password", "/admin/login", login("totp@mairie.fr", servertest.Password), 303, "/admin/login/totp", ""},
				{"wrong code", "/admin/login/totp", url.Values{"code": {"000000"}, "next": {"/admin/account"}}, 401, "", "pv-error-summary"},
				{"code", "/admin/login/totp", url.Values{"code": {code()}, "next": {"/admin/account"}}, 303, "/admin/account", ""},
			}, true},
			{"totp: password alone is not enough", []step{
				{"password", "/admin/login", login("totp@mairie.fr", servertest.Password), 303, "/admin/login/totp", ""},
			}, false},
			// The code that signed in above, replayed within its 30 seconds from another browser.
			{"totp: a code is accepted once", []step{
				{"password", "/admin/login", login("totp@mairie.fr", servertest.Password), 303, "/admin/login/totp", ""},
				{"same code again", "/admin/login/totp", url.Values{"code": {code()}, "next": {"/admin/account"}}, 401, "", "pv-error-summary"},
			}, false},
		}
		for _, tc := range tests {
			c := s.Client()
			c.Get("/admin/login")
			for _, st := range tc.steps {
				res := c.Post(st.path, st.form)
				if res.Status != st.wantStatus || !strings.HasPrefix(res.Location, st.wantLoc) || !strings.Contains(res.Body, st.wantBody) {
					t.Fatalf("%s / %s: status %d location %q, want %d %q containing %q\n%s", tc.name, st.name, res.Status, res.Location, st.wantStatus, st.wantLoc, st.wantBody, res.Body)
				}
			}
			res := c.Get("/admin/account")
			if got := res.Status == 200; got != tc.signedIn {
				t.Errorf("%s: signed in = %v (status %d)", tc.name, got, res.Status)
			}
		}
	})
}

func TestThrottle(t *testing.T) {
	each(t, func(t *testing.T, d store.Dialect) {
		clk := newClock()
		s := servertest.New(t, d, servertest.Options{Clock: clk})
		s.NewAgent(s.DefaultOrg(), "agent@mairie.fr")
		c := s.Client()
		c.Get("/admin/login")
		for i := 0; i < 5; i++ {
			if res := c.Post("/admin/login", url.Values{"email": {"agent@mairie.fr"}, "password": {"wrong password!!"}}); res.Status != 401 {
				t.Fatalf("failure %d: status %d", i+1, res.Status)
			}
		}
		// Post adds the client's CSRF token to the values: a fresh map per post.
		good := func() url.Values { return url.Values{"email": {"agent@mairie.fr"}, "password": {servertest.Password}} }
		res := c.Post("/admin/login", good())
		if res.Status != 429 || !strings.Contains(res.Body, "15 minutes") {
			t.Fatalf("6th attempt (right password): status %d, want 429 with a clear message\n%s", res.Status, res.Body)
		}
		// Throttling is in the database: another server on it would refuse too (checked by
		// the store); here, once the window has passed, the right password works again.
		clk.Add(16 * time.Minute)
		if res := c.Post("/admin/login", good()); res.Status != 303 {
			t.Fatalf("after the window: status %d", res.Status)
		}
		// Per address: 20 failures over several accounts block the address.
		c2 := s.Client()
		c2.Get("/admin/login")
		for i := 0; i < 20; i++ {
			c2.Post("/admin/login", url.Values{"email": {"x" + string(rune('a'+i)) + "@mairie.fr"}, "password": {"wrong password!!"}})
		}
		if res := c2.Post("/admin/login", good()); res.Status != 429 {
			t.Fatalf("after 20 failures from one address: status %d, want 429\n%s", res.Status, res.Body)
		}
	})
}

var linkRe = regexp.MustCompile(`/admin/(?:password/reset|setup)/[A-Za-z0-9_-]+`)

func TestPasswordReset(t *testing.T) {
	each(t, func(t *testing.T, d store.Dialect) {
		clk := newClock()
		s := servertest.New(t, d, servertest.Options{Clock: clk})
		mails := find[*recMail](s)
		audit := find[*recAudit](s)
		s.NewAgent(s.DefaultOrg(), "agent@mairie.fr")
		c := s.Client()
		c.Get("/admin/password/forgot")
		known := c.Post("/admin/password/forgot", url.Values{"email": {"agent@mairie.fr"}})
		unknown := c.Post("/admin/password/forgot", url.Values{"email": {"nobody@mairie.fr"}})
		if known.Status != 200 || unknown.Status != 200 ||
			strings.ReplaceAll(known.Body, "agent@mairie.fr", "X") != strings.ReplaceAll(unknown.Body, "nobody@mairie.fr", "X") {
			t.Fatalf("answers differ for a known and an unknown address: %d / %d", known.Status, unknown.Status)
		}
		if res := c.Post("/admin/password/forgot", url.Values{"email": {"not an email"}}); res.Status != 400 || !strings.Contains(res.Body, "pv-error-summary") {
			t.Fatalf("malformed email: %d", res.Status)
		}
		sent := mails.all()
		if len(sent) != 1 || sent[0].To[0] != "agent@mairie.fr" || sent[0].Template != "kernel.auth/reset" {
			t.Fatalf("mails = %+v", sent)
		}
		data := sent[0].Data
		link := linkRe.FindString(strings.TrimPrefix(fmtData(data), s.URL))
		if link == "" {
			t.Fatalf("no link in %+v", data)
		}
		if res := c.Get(link); res.Status != 200 {
			t.Fatalf("reset page: %d", res.Status)
		}
		if res := c.Post(link, url.Values{"password": {"short"}, "confirm": {"short"}}); res.Status != 400 || !strings.Contains(res.Body, "pv-error-summary") {
			t.Fatalf("short password: %d", res.Status)
		}
		const newPW = "a brand new passphrase"
		if res := c.Post(link, url.Values{"password": {newPW}, "confirm": {newPW}}); res.Status != 303 {
			t.Fatalf("reset: %d\n%s", res.Status, res.Body)
		}
		if res := c.Post(link, url.Values{"password": {newPW + "2"}, "confirm": {newPW + "2"}}); res.Status != 404 {
			t.Fatalf("second use of the link: %d, want 404", res.Status)
		}
		if !audit.has("agent@mairie.fr users.password_reset") {
			t.Error("reset not audited")
		}
		c2 := s.Client()
		c2.Get("/admin/login")
		if res := c2.Post("/admin/login", url.Values{"email": {"agent@mairie.fr"}, "password": {servertest.Password}}); res.Status != 401 {
			t.Fatalf("old password still works: %d", res.Status)
		}
		c2.LoginAgent("agent@mairie.fr", newPW)
		// Links expire after an hour.
		c.Post("/admin/password/forgot", url.Values{"email": {"agent@mairie.fr"}})
		sent = mails.all()
		link = linkRe.FindString(fmtData(sent[len(sent)-1].Data))
		clk.Add(61 * time.Minute)
		if res := c.Get(link); res.Status != 404 {
			t.Fatalf("expired link: %d, want 404", res.Status)
		}
	})
}

func fmtData(v any) string {
	var b bytes.Buffer
	b.WriteString(strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(fmtAny(v), "{", " "), "}", " ")))
	return b.String()
}

func fmtAny(v any) string { return strings.TrimSpace(sprint(v)) }

func TestSessions(t *testing.T) {
	each(t, func(t *testing.T, d store.Dialect) {
		clk := newClock()
		s := servertest.New(t, d, servertest.Options{Clock: clk})
		s.NewAgent(s.DefaultOrg(), "agent@mairie.fr")
		a, b := s.Client(), s.Client()
		a.LoginAgent("agent@mairie.fr", servertest.Password)
		b.LoginAgent("agent@mairie.fr", servertest.Password)

		// The session survives a new server on the same database (a restart, another node).
		u, _ := url.Parse(s.URL)
		var cookie string
		for _, ck := range a.Jar.Cookies(u) {
			if ck.Name == auth.CookieName {
				cookie = ck.Value
			}
		}
		s2, err := server.Build(context.Background(), s.Config, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close(context.Background())
		req := httptest.NewRequest("GET", "/admin/account", nil)
		req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: cookie})
		rec := httptest.NewRecorder()
		s2.Handler.ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "agent@mairie.fr") {
			t.Fatalf("session on a second server: %d", rec.Code)
		}

		// Idle timeout: two hours without a request ends the session.
		clk.Add(2*time.Hour + time.Minute)
		if res := a.Get("/admin/account"); res.Status != 303 {
			t.Fatalf("idle session: %d, want 303 to login", res.Status)
		}
		a.LoginAgent("agent@mairie.fr", servertest.Password)
		b.LoginAgent("agent@mairie.fr", servertest.Password)

		// Log out everywhere ends b's session too.
		if res := a.Post("/admin/account/logout-all", nil); res.Status != 303 {
			t.Fatalf("logout-all: %d", res.Status)
		}
		if res := b.Get("/admin/account"); res.Status != 303 || !strings.HasPrefix(res.Location, "/admin/login") {
			t.Fatalf("other browser after logout-all: %d %s", res.Status, res.Location)
		}

		// The session ID changes at login: an old cookie is worthless afterwards.
		c := s.Client()
		c.Get("/admin/login")
		c.Jar.SetCookies(u, []*http.Cookie{{Name: auth.CookieName, Value: cookie, Path: "/"}})
		c.LoginAgent("agent@mairie.fr", servertest.Password)
		for _, ck := range c.Jar.Cookies(u) {
			if ck.Name == auth.CookieName && ck.Value == cookie {
				t.Fatal("session ID not rotated at login")
			}
		}
		// Logout ends the session.
		c.Post("/admin/logout", nil)
		if res := c.Get("/admin/account"); res.Status != 303 {
			t.Fatalf("after logout: %d", res.Status)
		}
	})
}

func TestUsersPagesAndAudit(t *testing.T) {
	each(t, func(t *testing.T, d store.Dialect) {
		s := servertest.New(t, d, servertest.Options{})
		audit := find[*recAudit](s)
		org := s.DefaultOrg()
		unit := s.NewUnit(org, 0, "Mairie du 5e")
		admin := s.NewOrgAdmin(org, "admin@mairie.fr")
		c := s.ClientAs(admin)

		// CSRF: a post without the token is refused.
		res := c.Do("POST", "/admin/users", strings.NewReader("email=x%40y.fr&name=X"), "application/x-www-form-urlencoded")
		if res.Status != 403 {
			t.Fatalf("post without CSRF token: %d", res.Status)
		}
		c.Get("/admin/users/new")
		tests := []struct {
			name   string
			form   url.Values
			status int
			want   []string
		}{
			{"bad email, name kept", url.Values{"email": {"pas une adresse"}, "name": {"Zoé Lenoir"}, "lang": {"fr"}}, 400,
				[]string{"pv-error-summary", `value="Zoé Lenoir"`, `href="#f-email"`, `aria-invalid="true"`}},
			{"missing name", url.Values{"email": {"zoe@mairie.fr"}, "lang": {"fr"}}, 400, []string{`href="#f-name"`, `value="zoe@mairie.fr"`}},
			{"unknown unit", url.Values{"email": {"zoe@mairie.fr"}, "name": {"Zoé"}, "lang": {"fr"}, "units": {"999999"}}, 400, []string{`href="#f-units"`}},
			{"bad language", url.Values{"email": {"zoe@mairie.fr"}, "name": {"Zoé"}, "lang": {"xx"}}, 400, []string{`href="#f-lang"`}},
			{"created", url.Values{"email": {"zoe@mairie.fr"}, "name": {"Zoé"}, "lang": {"en"}, "units": {itoa(unit)}}, 201, []string{"/admin/setup/"}},
			{"duplicate email", url.Values{"email": {"ZOE@mairie.fr"}, "name": {"Zoé bis"}, "lang": {"fr"}}, 400, []string{`href="#f-email"`, `value="Zoé bis"`}},
		}
		for _, tc := range tests {
			res := c.Post("/admin/users", tc.form)
			if res.Status != tc.status {
				t.Errorf("%s: status %d, want %d\n%s", tc.name, res.Status, tc.status, res.Body)
				continue
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Body, w) {
					t.Errorf("%s: body lacks %s", tc.name, w)
				}
			}
		}
		if !audit.has("admin@mairie.fr users.create") {
			t.Error("user creation not audited")
		}
		// The new user's setup link lets them choose a password, then sign in.
		list := c.Get("/admin/users")
		if !strings.Contains(list.Body, "zoe@mairie.fr") {
			t.Fatal("new user not listed")
		}
	})
}

func TestFirstAdminAndCommand(t *testing.T) {
	each(t, func(t *testing.T, d store.Dialect) {
		s := servertest.New(t, d, servertest.Options{})
		m := s.Auth()
		ctx := context.Background()
		link, err := m.FirstAdmin(ctx)
		if err != nil || !strings.Contains(link, "/admin/setup/") {
			t.Fatalf("first admin: %q %v", link, err)
		}
		file, err := os.ReadFile(filepath.Join(s.Config.DataDir, "first-admin.txt"))
		if err != nil || !strings.Contains(string(file), link) {
			t.Fatalf("first-admin.txt: %v", err)
		}
		if again, err := m.FirstAdmin(ctx); again != "" || err != nil {
			t.Fatalf("second start created another admin: %q %v", again, err)
		}
		c := s.Client()
		path := linkRe.FindString(link)
		if res := c.Get(path); res.Status != 200 || !strings.Contains(res.Body, auth.FirstAdminEmail) {
			t.Fatalf("setup page: %d", res.Status)
		}
		res := c.Post(path, url.Values{"email": {"maire@commune.fr"}, "name": {"Le Maire"}, "password": {"short"}, "confirm": {"short"}})
		if res.Status != 400 || !strings.Contains(res.Body, `value="Le Maire"`) {
			t.Fatalf("setup with a short password: %d", res.Status)
		}
		const pw = "une phrase de passe assez longue"
		if res := c.Post(path, url.Values{"email": {"maire@commune.fr"}, "name": {"Le Maire"}, "password": {pw}, "confirm": {pw}}); res.Status != 303 {
			t.Fatalf("setup: %d\n%s", res.Status, res.Body)
		}
		c.LoginAgent("maire@commune.fr", pw)
		if res := c.Get("/admin/orgs"); res.Status != 200 || !strings.Contains(res.Body, "Ma commune") {
			t.Fatalf("first admin is not superadmin: %d", res.Status)
		}
		if res := c.Get("/admin/users"); res.Status != 200 {
			t.Fatalf("first admin is not org admin: %d", res.Status)
		}

		var cmd kernel.Command
		for _, cc := range m.Commands() {
			if cc.Name == "admin create" {
				cmd = cc
			}
		}
		var out bytes.Buffer
		if err := cmd.Run(ctx, []string{"Chef@Commune.fr"}, &out); err != nil || !strings.Contains(out.String(), "/admin/setup/") {
			t.Fatalf("admin create: %v %s", err, out.String())
		}
		if err := cmd.Run(ctx, []string{"chef@commune.fr"}, &out); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("duplicate admin create: %v", err)
		}
		if err := cmd.Run(ctx, []string{"not-an-email"}, &out); err == nil {
			t.Fatal("admin create accepted a malformed email")
		}
	})
}

func TestTOTPEnrolAndAPITokens(t *testing.T) {
	each(t, func(t *testing.T, d store.Dialect) {
		clk := newClock()
		s := servertest.New(t, d, servertest.Options{Clock: clk})
		org := s.DefaultOrg()
		a := s.NewAgent(org, "agent@mairie.fr", "test.things.view", "kernel.tokens.create")
		c := s.Client()
		c.LoginAgent("agent@mairie.fr", servertest.Password)

		page := c.Get("/admin/account/totp")
		m := regexp.MustCompile(`name="secret" value="([A-Z2-7]+)"`).FindStringSubmatch(page.Body)
		if m == nil || !strings.Contains(page.Body, "otpauth://totp/") {
			t.Fatalf("enrolment page shows no secret\n%s", page.Body)
		}
		if res := c.Post("/admin/account/totp", url.Values{"secret": {m[1]}, "code": {"123456"}}); res.Status != 400 {
			t.Fatalf("wrong enrolment code: %d", res.Status)
		}
		code, _ := totp.GenerateCode(m[1], clk.Now())
		// Turned on: the recovery codes are shown, once.
		if res := c.Post("/admin/account/totp", url.Values{"secret": {m[1]}, "code": {code}}); res.Status != 200 || len(recoveryCodeRe.FindAllString(res.Body, -1)) != 10 {
			t.Fatalf("enrolment: %d, %d recovery codes shown", res.Status, len(recoveryCodeRe.FindAllString(res.Body, -1)))
		}
		c2 := s.Client()
		c2.Get("/admin/login")
		if res := c2.Post("/admin/login", url.Values{"email": {"agent@mairie.fr"}, "password": {servertest.Password}}); !strings.HasPrefix(res.Location, "/admin/login/totp") {
			t.Fatalf("login after enrolment does not ask for the code: %d %s", res.Status, res.Location)
		}

		// API tokens: created on the account page, shown once, limited to their permissions.
		res := c.Post("/admin/account/tokens", url.Values{"token_name": {"export"}, "days": {"30"}, "perms": {"test.things.view"}})
		tok := regexp.MustCompile(`pvt_[A-Za-z0-9_-]+`).FindString(res.Body)
		if res.Status != 200 || tok == "" {
			t.Fatalf("token creation: %d", res.Status)
		}
		if res := c.Post("/admin/account/tokens", url.Values{"token_name": {"x"}, "days": {"30"}, "perms": {"kernel.users.manage"}}); res.Status != 400 {
			t.Fatalf("token with a permission the agent lacks: %d", res.Status)
		}
		narrow := s.APIToken(a, "kernel.tokens.create")
		call := func(path, token string) int {
			req, _ := http.NewRequest("GET", s.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			r, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			return r.StatusCode
		}
		calls := []struct {
			name, path, token string
			want              int
		}{
			{"token with the permission", "/api/test/things", tok, 200},
			{"token without it", "/api/test/things", narrow, 403},
			{"unknown token", "/api/test/things", "pvt_nope", 401},
			{"tokens do not open back-office pages", "/admin/account", tok, 303},
		}
		for _, tc := range calls {
			if got := call(tc.path, tc.token); got != tc.want {
				t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
			}
		}
	})
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func itoa(i int64) string { return strings.TrimSpace(sprint(i)) }

// TestResetTOTP: an agent who lost their authenticator is given back a password-only
// sign-in by a user manager (audited); an administrator's second factor only by an
// administrator; never one's own through this route; nothing to remove is a clear 409.
func TestResetTOTP(t *testing.T) {
	each(t, func(t *testing.T, d store.Dialect) {
		clk := newClock()
		s := servertest.New(t, d, servertest.Options{Clock: clk})
		audit := find[*recAudit](s)
		org := s.DefaultOrg()
		withTOTP := func(a *kernel.Agent) {
			key, _ := totp.Generate(totp.GenerateOpts{Issuer: "Parvis", AccountName: a.Email})
			if _, err := s.DB.Write().ExecContext(context.Background(), `UPDATE auth_agents SET totp_secret = ? WHERE id = ?`, key.Secret(), a.ID); err != nil {
				t.Fatal(err)
			}
		}
		lost := s.NewAgent(org, "perdu@mairie.fr")
		withTOTP(lost)
		boss := s.NewOrgAdmin(org, "admin@mairie.fr")
		withTOTP(boss)
		manager := s.NewAgent(org, "rh@mairie.fr", auth.PermUsers)
		plain := s.NewAgent(org, "sans@mairie.fr")
		mc := s.ClientAs(manager)

		// The agent's page offers the reset to the manager; the administrator's does not.
		if page := mc.Get("/admin/users/" + itoa(lost.ID)); !strings.Contains(page.Body, "/totp/reset") {
			t.Error("the agent's page does not offer the reset")
		}
		if page := mc.Get("/admin/users/" + itoa(boss.ID)); strings.Contains(page.Body, "/totp/reset") {
			t.Error("a user manager is offered to reset an administrator's second factor")
		}
		for _, tc := range []struct {
			name   string
			c      *servertest.Client
			id     int64
			status int
		}{
			{"manager, administrator's", mc, boss.ID, 403},
			{"manager, agent without one", mc, plain.ID, 409},
			{"manager, own", mc, manager.ID, 400},
			{"unknown agent", mc, 999999, 404},
		} {
			if res := tc.c.Post("/admin/users/"+itoa(tc.id)+"/totp/reset", url.Values{}); res.Status != tc.status {
				t.Errorf("%s: %d, want %d", tc.name, res.Status, tc.status)
			}
		}
		if res := mc.Post("/admin/users/"+itoa(lost.ID)+"/totp/reset", url.Values{}); res.Status != 303 {
			t.Fatalf("reset: %d", res.Status)
		}
		if !audit.has("rh@mairie.fr users.totp_reset") {
			t.Error("the reset is not audited")
		}
		// The agent now signs in with the password alone.
		c := s.Client()
		c.Get("/admin/login")
		if res := c.Post("/admin/login", url.Values{"email": {"perdu@mairie.fr"}, "password": {servertest.Password}}); res.Status != 303 || res.Location == "/admin/login/totp" {
			t.Errorf("sign-in after the reset: %d %s", res.Status, res.Location)
		}
		// An administrator may reset another administrator's.
		other := s.NewOrgAdmin(org, "admin2@mairie.fr")
		if res := s.ClientAs(other).Post("/admin/users/"+itoa(boss.ID)+"/totp/reset", url.Values{}); res.Status != 303 {
			t.Errorf("administrator resets an administrator's: %d", res.Status)
		}
	})
}

var recoveryCodeRe = regexp.MustCompile(`<code class="pv-code">([0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5})</code>`)

// TestRecoveryCodes: an agent who turns two-step verification on gets ten one-time codes;
// each signs them in once in place of the authenticator (typed in any case, with or
// without its dash), is audited, and counts down on the account page; new codes replace
// the old; turning the second factor off, or an administrator's reset, removes them.
func TestRecoveryCodes(t *testing.T) {
	each(t, func(t *testing.T, d store.Dialect) {
		clk := newClock()
		s := servertest.New(t, d, servertest.Options{Clock: clk})
		audit := find[*recAudit](s)
		org := s.DefaultOrg()
		a := s.NewAgent(org, "agent@mairie.fr")
		c := s.Client()
		c.LoginAgent("agent@mairie.fr", servertest.Password)
		enrol := func() []string {
			t.Helper()
			page := c.Get("/admin/account/totp")
			m := regexp.MustCompile(`name="secret" value="([A-Z2-7]+)"`).FindStringSubmatch(page.Body)
			if m == nil {
				t.Fatal("no secret on the enrolment page")
			}
			code, _ := totp.GenerateCode(m[1], clk.Now())
			res := c.Post("/admin/account/totp", url.Values{"secret": {m[1]}, "code": {code}})
			var codes []string
			for _, mm := range recoveryCodeRe.FindAllStringSubmatch(res.Body, -1) {
				codes = append(codes, mm[1])
			}
			if res.Status != 200 || len(codes) != 10 || res.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("enrolment: %d, %d codes, Cache-Control %q", res.Status, len(codes), res.Header.Get("Cache-Control"))
			}
			return codes
		}
		codes := enrol()
		signIn := func(code string) *servertest.Response {
			t.Helper()
			c2 := s.Client()
			c2.Get("/admin/login")
			if res := c2.Post("/admin/login", url.Values{"email": {"agent@mairie.fr"}, "password": {servertest.Password}}); !strings.HasPrefix(res.Location, "/admin/login/totp") {
				t.Fatalf("password step: %d %s", res.Status, res.Location)
			}
			c2.Get("/admin/login/totp")
			return c2.Post("/admin/login/totp", url.Values{"code": {code}, "next": {"/admin/account"}})
		}
		if res := signIn(strings.ToUpper(strings.ReplaceAll(codes[0], "-", " "))); res.Status != 303 || res.Location != "/admin/account" {
			t.Fatalf("sign-in with a recovery code: %d %s", res.Status, res.Location)
		}
		if !audit.has("agent@mairie.fr users.recovery_code_used") {
			t.Error("the use of a recovery code is not audited")
		}
		for _, tc := range []struct{ name, code string }{
			{"the same code again", codes[0]},
			{"a code that was never given", "00000-00000"},
			{"not a code at all", "pas un code"},
		} {
			if res := signIn(tc.code); res.Status != 401 {
				t.Errorf("%s: %d, want 401", tc.name, res.Status)
			}
		}
		if page := c.Get("/admin/account/totp"); !strings.Contains(page.Body, "inutilisés : 9.") && !strings.Contains(page.Body, "recovery codes: 9.") {
			t.Errorf("the page does not count 9 codes left")
		}
		// New codes (password required) replace the old ones.
		if res := c.Post("/admin/account/totp/codes", url.Values{"current_codes": {"wrong password!"}}); res.Status != 400 {
			t.Errorf("new codes with a wrong password: %d", res.Status)
		}
		res := c.Post("/admin/account/totp/codes", url.Values{"current_codes": {servertest.Password}})
		fresh := recoveryCodeRe.FindAllStringSubmatch(res.Body, -1)
		if res.Status != 200 || len(fresh) != 10 {
			t.Fatalf("new codes: %d, %d shown", res.Status, len(fresh))
		}
		if res := signIn(codes[1]); res.Status != 401 {
			t.Errorf("an old code after new ones were made: %d", res.Status)
		}
		if res := signIn(fresh[0][1]); res.Status != 303 {
			t.Errorf("a new code: %d", res.Status)
		}
		left := func() int {
			n, err := (&auth.Store{DB: s.DB}).RecoveryCodesLeft(context.Background(), s.DB.Read(), a.ID)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		// Turning it off removes them; an administrator's reset too.
		if res := c.Post("/admin/account/totp/disable", url.Values{"current": {servertest.Password}}); res.Status != 303 {
			t.Fatalf("turning off: %d", res.Status)
		}
		if n := left(); n != 0 {
			t.Errorf("%d codes left after turning two-step verification off", n)
		}
		enrol()
		if res := s.ClientAs(s.NewOrgAdmin(org, "admin@mairie.fr")).Post("/admin/users/"+itoa(a.ID)+"/totp/reset", url.Values{}); res.Status != 303 {
			t.Fatalf("administrator's reset: %d", res.Status)
		}
		if n := left(); n != 0 {
			t.Errorf("%d codes left after an administrator's reset", n)
		}
	})
}

// TestRoleOnOneResource: the role editor grants permissions on one resource that a module
// lists (kernel.PointResources); the resource must exist and every permission must apply to
// its type; the role's page shows the choice again.
func TestRoleOnOneResource(t *testing.T) {
	each(t, func(t *testing.T, d store.Dialect) {
		s := servertest.New(t, d, servertest.Options{})
		org := s.DefaultOrg()
		c := s.ClientAs(s.NewOrgAdmin(org, "admin@mairie.fr"))
		page := c.Get("/admin/roles/new")
		if !strings.Contains(page.Body, `value="thing:1"`) || !strings.Contains(page.Body, `value="resource"`) {
			t.Fatal("the role form offers no resource scope or no resource")
		}
		for _, tc := range []struct {
			name string
			form url.Values
			want string
		}{
			{"no resource chosen", url.Values{"scope": {"resource"}, "resource": {""}, "perms": {"test.things.own"}}, `href="#f-resource"`},
			{"a resource that does not exist", url.Values{"scope": {"resource"}, "resource": {"thing:9"}, "perms": {"test.things.own"}}, `href="#f-resource"`},
			{"a permission of no resource type", url.Values{"scope": {"resource"}, "resource": {"thing:1"}, "perms": {"test.things.own", "test.things.view"}}, `href="#f-perms"`},
		} {
			tc.form.Set("name", "Armoire seulement")
			if res := c.Post("/admin/roles", tc.form); res.Status != 400 || !strings.Contains(res.Body, tc.want) {
				t.Errorf("%s: %d, want 400 with %s", tc.name, res.Status, tc.want)
			}
		}
		res := c.Post("/admin/roles", url.Values{"name": {"Armoire seulement"}, "scope": {"resource"}, "resource": {"thing:1"}, "perms": {"test.things.own"}})
		if res.Status != 303 {
			t.Fatalf("role on one resource: %d\n%s", res.Status, res.Body)
		}
		st := &auth.Store{DB: s.DB}
		roles, err := st.Roles(context.Background(), s.DB.Read(), org)
		if err != nil {
			t.Fatal(err)
		}
		var ro auth.Role
		for _, r := range roles {
			if r.Name == "Armoire seulement" {
				ro, _ = st.Role(context.Background(), s.DB.Read(), org, r.ID)
			}
		}
		want := []auth.Grant{{Perm: "test.things.own", Scope: auth.ScopeResource, ResourceType: "thing", ResourceID: "1"}}
		if len(ro.Grants) != 1 || ro.Grants[0].Perm != want[0].Perm || ro.Grants[0].Scope != want[0].Scope ||
			ro.Grants[0].ResourceType != "thing" || ro.Grants[0].ResourceID != "1" {
			t.Fatalf("grants stored: %+v, want %+v", ro.Grants, want)
		}
		edit := c.Get("/admin/roles/" + itoa(ro.ID))
		if !regexp.MustCompile(`value="resource"[^>]*checked`).MatchString(edit.Body) || !regexp.MustCompile(`value="thing:1"[^>]*selected`).MatchString(edit.Body) {
			t.Error("the role's page does not show its scope and resource again")
		}
	})
}
