package forms

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel/web"
)

// The guests' captcha (Settings.Captcha): no image, nothing to hear, nothing a screen reader
// cannot read. Three checks on the review page's "send":
//
//   - a honeypot: a field hidden from people (off-screen, aria-hidden, out of the tab order)
//     that robots filling every field fill in;
//   - a minimum time between the question's display and the answer;
//   - a small sum written in words ("How much is three plus four?"), answered in figures or
//     in words, French or English.
//
// The challenge is stateless, so any node checks it: the page carries the time it was asked
// and an HMAC-SHA256 (key derived from PARVIS_SECRET_KEY) over the form, the draft, that time
// and the right answer. The answer itself is not in the page: the server recomputes the MAC
// with the answer given. Bound to the draft, which goes once sent, a solved challenge serves
// once; it expires after captchaTTL.

const (
	captchaTTL      = time.Hour
	captchaMinDelay = 2 * time.Second
	captchaField    = "captcha"
	captchaToken    = "captcha_token"
	captchaHoneypot = "site_web" // tempting to a robot, invisible to a person
)

// captchaView is what the review page shows.
type captchaView struct {
	Question string
	Token    string
	F        web.FieldView
}

// needsCaptcha: the form asks for it and nobody is signed in (a citizen account, or an email
// address proven through a guest link).
func (m *Module) needsCaptcha(r *http.Request, d *Definition) bool {
	if !d.Settings.Captcha {
		return false
	}
	_, _, ok := m.owner(r)
	return !ok
}

func (m *Module) captchaKey() []byte {
	secret := ""
	if m.cfg != nil {
		secret = m.cfg.SecretKey
	}
	return []byte("forms-captcha\x00" + secret)
}

func (m *Module) captchaMAC(formID, draftID, issued int64, answer int) string {
	h := hmac.New(sha256.New, m.captchaKey())
	h.Write([]byte("v1|" + strconv.FormatInt(formID, 10) + "|" + strconv.FormatInt(draftID, 10) + "|" +
		strconv.FormatInt(issued, 10) + "|" + strconv.Itoa(answer)))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func randInt(n int64) int {
	x, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return int(x.Int64())
}

// newCaptcha draws a question for draft draftID of form formID.
func (m *Module) newCaptcha(lang string, formID, draftID int64) captchaView {
	a, b := 1+randInt(10), 1+randInt(10)
	op, answer := "forms.captcha.plus", a+b
	if randInt(2) == 1 && a != b {
		if a < b {
			a, b = b, a
		}
		op, answer = "forms.captcha.minus", a-b
	}
	issued := m.clock.Now().Unix()
	q := m.t(lang, op, "a", numberWord(lang, a), "b", numberWord(lang, b))
	return captchaView{Question: q, Token: strconv.FormatInt(issued, 10) + "." + m.captchaMAC(formID, draftID, issued, answer)}
}

// checkCaptcha returns "" when the posted values pass, else the message key of the problem.
func (m *Module) checkCaptcha(vals map[string][]string, formID, draftID int64) string {
	get := func(k string) string {
		if v := vals[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	if get(captchaHoneypot) != "" {
		return "forms.error.captcha_robot"
	}
	issuedS, mac, ok := strings.Cut(get(captchaToken), ".")
	issued, err := strconv.ParseInt(issuedS, 10, 64)
	if !ok || err != nil {
		return "forms.error.captcha_expired"
	}
	now := m.clock.Now()
	at := time.Unix(issued, 0)
	if now.Sub(at) > captchaTTL || at.After(now.Add(time.Minute)) {
		return "forms.error.captcha_expired"
	}
	given := get(captchaField)
	if given == "" {
		return "forms.error.captcha_required"
	}
	answer, ok := parseAnswer(given)
	if !ok || !hmac.Equal([]byte(mac), []byte(m.captchaMAC(formID, draftID, issued, answer))) {
		return "forms.error.captcha_wrong"
	}
	if now.Sub(at) < captchaMinDelay {
		return "forms.error.captcha_fast"
	}
	return ""
}

// Numbers from zero to twenty, the range of the sums and differences asked.
var numberWords = map[string][]string{
	"fr": {"zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix",
		"onze", "douze", "treize", "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf", "vingt"},
	"en": {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
		"eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"},
}

func numberWord(lang string, n int) string {
	ws, ok := numberWords[lang]
	if !ok {
		ws = numberWords["fr"]
	}
	return ws[n]
}

// parseAnswer reads "7", "sept", "Seven", "dix sept", "dix-sept"…
func parseAnswer(s string) (int, bool) {
	s = strings.ToLower(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), ".")))
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n <= 1000
	}
	norm := func(x string) string {
		x = strings.NewReplacer("-", " ", "é", "e", "\u00a0", " ").Replace(x)
		return strings.Join(strings.Fields(x), " ")
	}
	s = norm(s)
	for _, ws := range numberWords {
		for n, w := range ws {
			if norm(w) == s {
				return n, true
			}
		}
	}
	return 0, false
}
