package mail_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/riverqueue/river/rivertype"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/jobs"
	"parvis.org/parvis/kernel/mail"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/store"
)

// testMails are the mail templates of the test module "test.mail".
var testMails = fstest.MapFS{
	"fr/hello.subject.txt": {Data: []byte("Bonjour {{.Data.Name}}\n")},
	"fr/hello.txt":         {Data: []byte("Bonjour {{.Data.Name}}, votre rendez-vous : {{.DateTime .Data.When}}.\nLien : {{.URL \"/rdv\"}}\n")},
	"fr/hello.html":        {Data: []byte("<p>Bonjour {{.Data.Name}}, votre rendez-vous : {{.DateTime .Data.When}}.</p><p><a href=\"{{.URL \"/rdv\"}}\">{{.T \"test.mail.link\"}}</a></p>\n")},
	"en/hello.subject.txt": {Data: []byte("Hello {{.Data.Name}}\n")},
	"en/hello.txt":         {Data: []byte("Hello {{.Data.Name}}, your appointment: {{.DateTime .Data.When}}.\n")},
	"en/hello.html":        {Data: []byte("<p>Hello {{.Data.Name}}, your appointment: {{.DateTime .Data.When}}.</p>\n")},
	"fr/only.subject.txt":  {Data: []byte("Seulement en français\n")},
	"fr/only.txt":          {Data: []byte("Texte\n")},
	"fr/only.html":         {Data: []byte("<p>Texte</p>\n")},
}

var testLocales = fstest.MapFS{
	"fr.yaml": {Data: []byte(`test.mail.link: "Voir le rendez-vous"` + "\n")},
	"en.yaml": {Data: []byte(`test.mail.link: "See the appointment"` + "\n")},
}

type helloData struct {
	Name string
	When time.Time
}

// testMod brings mail templates, a fake Authorizer, and a middleware that signs in the agent
// named by the X-Test-Agent header ("org:perm,perm" or "super").
type testMod struct{}

func (t *testMod) Info() kernel.Info {
	return kernel.Info{ID: "test.mail", New: func() kernel.Module { return t }}
}

func (t *testMod) Provision(ctx context.Context, env *kernel.Env) error {
	kernel.Provide[kernel.Authorizer](env, fakeAuth{})
	kernel.Provide[mail.SiteNamer](env, namer{})
	return nil
}

// namer names organisation 7's site; others get the default.
type namer struct{}

func (namer) MailSiteName(ctx context.Context, orgID int64) string {
	if orgID == 7 {
		return "Ville de Sept"
	}
	return ""
}

func (t *testMod) Declare() kernel.Parts { return kernel.Parts{Mail: testMails, Locales: testLocales} }

func (t *testMod) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("X-Test-Agent"); h != "" {
			a := &kernel.Agent{ID: 1, Name: "Test", Email: "t@example.org"}
			if h == "super" {
				a.Superadmin, a.OrgID = true, 1
			} else {
				org, perms, _ := strings.Cut(h, ":")
				a.OrgID, _ = strconv.ParseInt(org, 10, 64)
				a.SessionID = perms // the fake Authorizer reads the permissions from here
			}
			r = r.WithContext(kernel.WithAgent(r.Context(), a))
		}
		next.ServeHTTP(w, r)
	})
}

type fakeAuth struct{}

func (fakeAuth) Can(ctx context.Context, a *kernel.Agent, perm string, res *kernel.Resource) bool {
	if a.Superadmin {
		return true
	}
	for _, p := range strings.Split(a.SessionID, ",") {
		if p == perm {
			return true
		}
	}
	return false
}
func (fakeAuth) Scope(ctx context.Context, a *kernel.Agent, perm string) (kernel.Scope, error) {
	return kernel.Scope{All: fakeAuth{}.Can(ctx, a, perm, nil)}, nil
}
func (fakeAuth) UnitsOf(ctx context.Context, a *kernel.Agent) ([]int64, error) { return nil, nil }

// retryAfter retries after a fixed short delay, so tests see retries without River's backoff.
type retryAfter time.Duration

func (d retryAfter) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Duration(d)) }

type env struct {
	s    *server.Server
	jobs *jobs.Module
	mail *mail.Module
	url  string
}

type opts struct {
	smtp    string // PARVIS_SMTP
	noStart bool
}

// start builds and starts a Parvis with the jobs and mail parts and the test module on dsn.
func start(t *testing.T, dsn string, o opts) *env {
	t.Helper()
	e, err := build(t, dsn, o)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return e
}

func build(t *testing.T, dsn string, o opts) (*env, error) {
	t.Helper()
	vars := []string{"PARVIS_DATABASE=" + dsn, "PARVIS_DATA=" + t.TempDir(), "PARVIS_BASE_URL=https://mairie.example.org",
		"PARVIS_MAIL_FROM=Mairie <noreply@mairie.example.org>"}
	if o.smtp != "" {
		vars = append(vars, "PARVIS_SMTP="+o.smtp)
	}
	cfg, _, err := config.Load(vars, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	jm := &jobs.Module{RetryPolicy: retryAfter(200 * time.Millisecond), PollInterval: 50 * time.Millisecond}
	ji := jm.Info()
	ji.New = func() kernel.Module { return jm }
	mi := (&mail.Module{}).Info()
	tm := &testMod{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("PARVIS_TEST_VERBOSE") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx := context.Background()
	s, err := server.Build(ctx, cfg, log, server.Options{Modules: []kernel.Info{ji, mi, tm.Info()}})
	if err != nil {
		return nil, err
	}
	var mm *mail.Module
	for _, in := range s.Modules {
		if m, ok := in.Module.(*mail.Module); ok {
			mm = m
		}
	}
	if !o.noStart {
		if err := s.Start(ctx); err != nil {
			t.Fatalf("start: %v", err)
		}
	}
	ts := httptest.NewServer(s.Handler)
	t.Cleanup(func() {
		ts.Close()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = s.Close(cctx)
	})
	return &env{s: s, jobs: jm, mail: mm, url: ts.URL}, nil
}

var errRollback = errors.New("rollback")

// send queues m in a transaction that commits, or rolls back after queueing.
func (e *env) send(t *testing.T, m kernel.Mail, commit bool) {
	t.Helper()
	err := e.s.DB.InTx(context.Background(), func(tx *store.Tx) error {
		if err := e.mail.Send(context.Background(), tx, m); err != nil {
			return err
		}
		if !commit {
			return errRollback
		}
		return nil
	})
	if commit && err != nil || !commit && !errors.Is(err, errRollback) {
		t.Fatalf("send: %v", err)
	}
}

// mailTo returns the stored mails addressed to addr.
func (e *env) mailTo(t *testing.T, addr string) []*mail.Message {
	t.Helper()
	rows, err := e.s.DB.Read().QueryContext(context.Background(), "SELECT id FROM mail_messages WHERE recipients LIKE ? ORDER BY id", `%"`+addr+`"%`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	var out []*mail.Message
	for _, id := range ids {
		m, err := e.mail.Get(context.Background(), e.s.DB.Read(), id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is a browser-like client: cookie jar, CSRF token from the last page, no redirects.
type client struct {
	t     *testing.T
	base  string
	agent string
	c     *http.Client
	csrf  string
}

func (e *env) client(t *testing.T, agent string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: e.url, agent: agent, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) do(method, path string, form url.Values) (int, string, http.Header) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Origin", c.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if c.agent != "" {
		req.Header.Set("X-Test-Agent", c.agent)
	}
	res, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if m := csrfRe.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return res.StatusCode, string(b), res.Header
}

func (c *client) post(path string) (int, string, http.Header) {
	return c.do("POST", path, url.Values{"csrf": {c.csrf}})
}
