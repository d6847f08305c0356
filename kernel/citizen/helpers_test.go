package citizen_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/citizen"
	_ "parvis.org/parvis/kernel/jobs" // the job queue kernel.mail queues deliveries on
	_ "parvis.org/parvis/kernel/mail"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

// The real mailer (kernel.mail, on the job queue kernel.jobs) renders and queues every mail
// in the database; tests read the queued mails there. Test modules, registered in this test
// binary only:
//   - test.notes holds personal data through a citizen.DataProvider and shows what the
//     Guests service and kernel.CitizenFrom say about a request;
//   - test.idp is a fake OpenID Connect provider.
func init() {
	kernel.Register(&notes{})
	kernel.Register(&fakeIdP{})
}

type notes struct {
	db     *store.DB
	guests citizen.Guests
}

func (*notes) Info() kernel.Info {
	return kernel.Info{ID: "test.notes", New: func() kernel.Module { return new(notes) }}
}

func (n *notes) Provision(_ context.Context, env *kernel.Env) error {
	n.db = env.DB
	g, ok := kernel.Service[citizen.Guests](env)
	if !ok {
		return fmt.Errorf("no citizen.Guests service")
	}
	n.guests = g
	return nil
}

func (n *notes) Declare() kernel.Parts {
	mig := "-- +goose Up\nCREATE TABLE test_notes (citizen_id BIGINT NOT NULL, note TEXT NOT NULL);\n-- +goose Down\nDROP TABLE test_notes;\n"
	return kernel.Parts{
		Migrations: fstest.MapFS{"sqlite/00001_notes.sql": {Data: []byte(mig)}, "postgres/00001_notes.sql": {Data: []byte(mig)}},
		Extensions: []kernel.Extension{{Point: kernel.PointCitizenData, Value: n}},
		Routes: []kernel.Route{{Area: kernel.Public, Method: "GET", Pattern: "/test/whoami", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			email, ok := n.guests.Verified(r)
			c := kernel.CitizenFrom(r.Context())
			if c == nil {
				c = &kernel.Citizen{}
			}
			fmt.Fprintf(w, "guest=%s ok=%v citizen=%d email=%s verified=%v", email, ok, c.ID, c.Email, c.Verified)
		})}},
	}
}

func (n *notes) Export(ctx context.Context, id int64) (any, error) {
	rows, err := n.db.Read().QueryContext(ctx, `SELECT note FROM test_notes WHERE citizen_id = ? ORDER BY note`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (n *notes) Delete(ctx context.Context, tx *store.Tx, id int64) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM test_notes WHERE citizen_id = ?`, id)
	return err
}

type fakeIdP struct{}

func (*fakeIdP) Info() kernel.Info {
	return kernel.Info{ID: "test.idp", New: func() kernel.Module { return new(fakeIdP) }}
}
func (p *fakeIdP) Declare() kernel.Parts {
	return kernel.Parts{Extensions: []kernel.Extension{{Point: citizen.PointIdentityProvider, Value: p}}}
}
func (*fakeIdP) Name() string  { return "fake-fc" }
func (*fakeIdP) Title() string { return "kernel.citizen.login.with_provider" }
func (*fakeIdP) AuthCodeURL(state, nonce, redirect string) string {
	return "https://idp.example/authorize?" + url.Values{"state": {state}, "nonce": {nonce}, "redirect_uri": {redirect}}.Encode()
}

// Exchange accepts the code "good-<sub>-<email>" and echoes the nonce in the name, so the
// test can check the nonce came back from the cookie.
func (*fakeIdP) Exchange(_ context.Context, code, nonce, _ string) (citizen.Claims, error) {
	parts := strings.SplitN(code, "-", 3)
	if len(parts) != 3 || parts[0] != "good" {
		return citizen.Claims{}, fmt.Errorf("bad code")
	}
	return citizen.Claims{Subject: parts[1], Email: parts[2], EmailVerified: true, Name: "FC " + nonce[:4]}, nil
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one test instance.
type env struct {
	*servertest.Server
	clock *clock
}

func start(t *testing.T, d store.Dialect) *env {
	t.Helper()
	c := &clock{t: time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)}
	s := servertest.New(t, d, servertest.Options{Clock: c})
	return &env{Server: s, clock: c}
}

func each(t *testing.T, f func(t *testing.T, e *env)) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f(t, start(t, d))
		})
	}
}

// queued is a mail rendered and queued by kernel.mail.
type queued struct {
	Lang, Subject, Text, HTML string
}

// mails returns the mails queued to addr with template name, oldest first.
func (e *env) mails(to, name string) []queued {
	e.T.Helper()
	rows, err := e.DB.Read().QueryContext(context.Background(), `SELECT lang, subject, text_body, html_body FROM mail_messages
		WHERE template = ? AND recipients = ? ORDER BY id`, citizen.ID+"/"+name, `["`+to+`"]`)
	if err != nil {
		e.T.Fatal(err)
	}
	defer rows.Close()
	var out []queued
	for rows.Next() {
		var q queued
		if err := rows.Scan(&q.Lang, &q.Subject, &q.Text, &q.HTML); err != nil {
			e.T.Fatal(err)
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		e.T.Fatal(err)
	}
	return out
}

var linkRe = regexp.MustCompile(`https?://\S+/compte/\S+`)

// link returns the path and query of the link in the last mail to addr of template name,
// checking the HTML version carries the same link.
func (e *env) link(t *testing.T, to, name string) string {
	t.Helper()
	ms := e.mails(to, name)
	if len(ms) == 0 {
		t.Fatalf("no %s mail to %s", name, to)
	}
	m := ms[len(ms)-1]
	raw := linkRe.FindString(m.Text)
	if raw == "" || !strings.HasPrefix(raw, e.URL) || !strings.Contains(m.HTML, `href="`+raw+`"`) || m.Subject == "" {
		t.Fatalf("mail %s: link %q not under %s or not in the HTML version:\n%s\n%s", name, raw, e.URL, m.Text, m.HTML)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.RequestURI()
}

func (e *env) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.DB.Read().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// signUp creates and verifies an account, and signs in with c.
func (e *env) signUp(t *testing.T, c *servertest.Client, email, name, pw string) {
	t.Helper()
	c.Get("/compte/inscription")
	if r := c.Post("/compte/inscription", form("email", email, "name", name, "password", pw)); r.Status != 200 {
		t.Fatalf("sign-up: %d %s", r.Status, r.Body)
	}
	if r := c.Get(e.link(t, strings.ToLower(email), "verify")); r.Status != 200 {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	c.Get("/compte/connexion")
	if r := c.Post("/compte/connexion", form("email", email, "password", pw)); r.Status != 303 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
}
