package forms

import (
	"context"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
)

const captchaForm = `
key: robot
title: Signalement
settings: {captcha: true, email_question: email}
steps:
  - key: s
    title: Vous
    sections:
      - key: s1
        questions:
          - {key: nom, type: text, label: Nom, required: true}
          - {key: email, type: email, label: Courriel, required: true}
`

var (
	captchaQ     = regexp.MustCompile(`Combien font ([a-zéè-]+) (plus|moins) ([a-zéè-]+) \?`)
	captchaTokRe = regexp.MustCompile(`name="captcha_token" value="([^"]+)"`)
)

// solve reads the question on a review page and answers it.
func solve(t *testing.T, body string) (answer, token string) {
	t.Helper()
	m := captchaQ.FindStringSubmatch(body)
	tok := captchaTokRe.FindStringSubmatch(body)
	if m == nil || tok == nil {
		t.Fatalf("no captcha on the page:\n%s", body)
	}
	a, ok1 := parseAnswer(m[1])
	b, ok2 := parseAnswer(m[3])
	if !ok1 || !ok2 {
		t.Fatalf("unreadable question %q", m[0])
	}
	if m[2] == "plus" {
		return strconv.Itoa(a + b), tok[1]
	}
	return strconv.Itoa(a - b), tok[1]
}

// TestCaptcha: on a form that asks for it, a guest's review page carries a question in
// words; no answer, a wrong answer, an answer too fast, a filled honeypot, a challenge past
// its expiry and another draft's solved challenge are each refused with a clear message, a
// new question and nothing stored; the right answer (in figures or words) sends. A citizen
// who proved their address never sees it. A form without the setting shows none.
func TestCaptcha(t *testing.T) {
	f := setup(t, store.SQLite)
	ctx := context.Background()
	actx := kernel.WithAgent(ctx, f.admin)
	if err := f.s.DB.InTx(actx, func(tx *store.Tx) error { _, err := f.m.SaveForm(actx, tx, f.org, mustDef(t, captchaForm)); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Publish(actx, f.org, "robot"); err != nil {
		t.Fatal(err)
	}
	wait := func(d time.Duration) {
		f.clock.mu.Lock()
		f.clock.t = f.clock.t.Add(d)
		f.clock.mu.Unlock()
	}
	stored := func() int {
		var n int
		_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM forms_responses WHERE form_id = (SELECT id FROM forms_forms WHERE key = 'robot')`).Scan(&n)
		return n
	}
	toReview := func(c *servertest.Client) string {
		t.Helper()
		c.Post("/demarches/robot", nil)
		c.Get("/demarches/robot/etape/s")
		if res := c.Post("/demarches/robot/etape/s", url.Values{"nom": {"Léa"}, "email": {"lea@example.org"}}); res.Location != "/demarches/robot/recapitulatif" {
			t.Fatalf("step: %d %q", res.Status, res.Location)
		}
		return c.Get("/demarches/robot/recapitulatif").Body
	}
	send := func(c *servertest.Client, vals url.Values) *servertest.Response {
		t.Helper()
		return c.Post("/demarches/robot/recapitulatif", vals)
	}
	refused := func(what string, res *servertest.Response, msg string) string {
		t.Helper()
		if res.Status != 400 || !strings.Contains(res.Body, msg) || !strings.Contains(res.Body, `href="#f-captcha"`) {
			t.Fatalf("%s: %d, want 400 with %q\n%s", what, res.Status, msg, res.Body)
		}
		if n := stored(); n != 0 {
			t.Fatalf("%s: %d responses stored", what, n)
		}
		return res.Body
	}

	c := f.s.Client()
	page := toReview(c)
	if !strings.Contains(page, "Vérification anti-robot") || !strings.Contains(page, `name="site_web"`) {
		t.Fatalf("review page without the captcha:\n%s", page)
	}
	answer, tok := solve(t, page)
	wait(5 * time.Second)
	page = refused("no answer", send(c, url.Values{"captcha_token": {tok}}), "Répondez à la question de vérification.")
	answer, tok = solve(t, page)
	wrong, _ := strconv.Atoi(answer)
	wait(5 * time.Second)
	page = refused("wrong answer", send(c, url.Values{"captcha_token": {tok}, "captcha": {strconv.Itoa(wrong + 1)}}), "La réponse à la question de vérification est inexacte")
	answer, tok = solve(t, page)
	page = refused("too fast", send(c, url.Values{"captcha_token": {tok}, "captcha": {answer}}), "trop vite")
	answer, tok = solve(t, page)
	wait(5 * time.Second)
	page = refused("honeypot", send(c, url.Values{"captcha_token": {tok}, "captcha": {answer}, "site_web": {"https://spam.example"}}), "L&#39;envoi n&#39;a pas pu être vérifié")
	// A challenge older than an hour.
	answer, tok = solve(t, page)
	wait(captchaTTL + time.Minute)
	page = refused("expired", send(c, url.Values{"captcha_token": {tok}, "captcha": {answer}}), "La question de vérification a expiré")
	// A forged or tampered token.
	answer, tok = solve(t, page)
	wait(5 * time.Second)
	issued, mac, _ := strings.Cut(tok, ".")
	n, _ := strconv.ParseInt(issued, 10, 64)
	page = refused("time moved back", send(c, url.Values{"captcha_token": {strconv.FormatInt(n-30, 10) + "." + mac}, "captcha": {answer}}), "inexacte")
	// Another draft's solved challenge does not open this one.
	other := f.s.Client()
	otherAnswer, otherTok := solve(t, toReview(other))
	wait(5 * time.Second)
	page = refused("another draft's challenge", send(c, url.Values{"captcha_token": {otherTok}, "captcha": {otherAnswer}}), "inexacte")
	// The right answer, in words.
	answer, tok = solve(t, page)
	wait(5 * time.Second)
	k, _ := strconv.Atoi(answer)
	res := send(c, url.Values{"captcha_token": {tok}, "captcha": {numberWord("fr", k)}})
	if res.Status != 303 || !strings.HasPrefix(res.Location, "/demarches/robot/envoye/") || stored() != 1 {
		t.Fatalf("right answer: %d %q (%d stored)\n%s", res.Status, res.Location, stored(), res.Body)
	}
	// The other browser answers its own question, in figures.
	if res := send(other, url.Values{"captcha_token": {otherTok}, "captcha": {otherAnswer}}); res.Status != 303 || stored() != 2 {
		t.Fatalf("other browser: %d (%d stored)\n%s", res.Status, stored(), res.Body)
	}

	// A citizen who proved their address: no question, sent at once.
	if err := f.m.guests.Start(ctx, "lea@example.org", "/compte/demandes", "fr"); err != nil {
		t.Fatal(err)
	}
	var text string
	_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT text_body FROM mail_messages WHERE text_body LIKE '%/compte/invite?t=%' ORDER BY id DESC LIMIT 1`).Scan(&text)
	inv := regexp.MustCompile(`/compte/invite\?t=([A-Za-z0-9_-]+)`).FindStringSubmatch(text)
	if inv == nil {
		t.Fatalf("guest link not found in %q", text)
	}
	signed := f.s.Client()
	signed.Get("/compte/invite?t=" + inv[1])
	signed.Post("/compte/invite", url.Values{"t": {inv[1]}})
	if page := toReview(signed); strings.Contains(page, "captcha") || strings.Contains(page, "site_web") {
		t.Fatalf("a signed-in citizen is asked the captcha:\n%s", page)
	}
	if res := send(signed, nil); res.Status != 303 || stored() != 3 {
		t.Fatalf("signed-in citizen: %d (%d stored)\n%s", res.Status, stored(), res.Body)
	}
	// The essai form does not ask for it.
	plain := f.s.Client()
	fill(t, f, plain, "75011")
}

func TestParseAnswer(t *testing.T) {
	for in, want := range map[string]int{"7": 7, " 12 ": 12, "sept": 7, "Seven": 7, "dix-sept": 17, "dix sept": 17, "Zéro": 0, "zero": 0, "twenty.": 20} {
		if got, ok := parseAnswer(in); !ok || got != want {
			t.Errorf("parseAnswer(%q) = %d %v, want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "sept cents", "-3", "7a", "douze et demi"} {
		if _, ok := parseAnswer(in); ok {
			t.Errorf("parseAnswer(%q) accepted", in)
		}
	}
}
