package appointments

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var (
	holdRe  = regexp.MustCompile(`/rdv/reservation/([A-Za-z0-9_-]+)`)
	guestRe = regexp.MustCompile(`https?://\S+/compte/invite\?t=([A-Za-z0-9_-]+)`)
	slotRe  = regexp.MustCompile(`name="creneau" value="(\d+)"`)
)

// TestPublicFlowWithoutJS walks the booking pages as a browser without JavaScript: service,
// place, day, time (hold), details, email proof, recap, confirmation, cancel link.
func TestPublicFlowWithoutJS(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		c := f.Client()
		steps := []struct{ path, want string }{
			{"/rdv", "Carte d&#39;identité"},
			{fmt.Sprintf("/rdv/demarche/%d", f.svc.ID), "Mairie annexe"},
			{fmt.Sprintf("/rdv/demarche/%d/%d", f.svc.ID, f.place.ID), "/rdv/demarche/"},
			{fmt.Sprintf("/rdv/demarche/%d/%d/2026-03-03", f.svc.ID, f.place.ID), `name="creneau"`},
		}
		var body string
		for _, s := range steps {
			r := c.Get(s.path)
			if r.Status != 200 || !strings.Contains(r.Body, s.want) {
				t.Fatalf("GET %s: %d\n%s", s.path, r.Status, r.Body)
			}
			body = r.Body
		}
		times := fmt.Sprintf("/rdv/demarche/%d/%d/2026-03-03", f.svc.ID, f.place.ID)
		// No time chosen: error summary, 400.
		if r := c.Post(times, url.Values{}); r.Status != 400 || !strings.Contains(r.Body, "pv-error-summary") {
			t.Fatalf("no time: %d", r.Status)
		}
		slot := slotRe.FindStringSubmatch(body)[1]
		r := c.Post(times, url.Values{"creneau": {slot}})
		if r.Status != 303 {
			t.Fatalf("hold: %d %s", r.Status, r.Body)
		}
		hold := r.Location
		r = c.Get(hold)
		if r.Status != 200 || !strings.Contains(r.Body, `name="email"`) {
			t.Fatalf("questions: %d", r.Status)
		}
		// Bad input is sent back with a message tied to its field.
		if r := c.Post(hold, url.Values{"name": {"Léa"}, "email": {"nope"}, "q_motif": {"Renouvellement"}}); r.Status != 400 || !strings.Contains(r.Body, `href="#f-email"`) {
			t.Fatalf("bad email: %d", r.Status)
		}
		r = c.Post(hold, url.Values{"name": {"Léa Martin"}, "email": {"lea@example.fr"}, "q_motif": {"Renouvellement"}})
		if r.Status != 200 || !strings.Contains(r.Body, "lea@example.fr") {
			t.Fatalf("details: %d %s", r.Status, r.Body)
		}
		// Without the email proof the booking is not confirmed.
		if r := c.Post(hold+"/recapitulatif", url.Values{}); r.Status != 403 {
			t.Fatalf("unverified confirm: %d", r.Status)
		}
		ms := f.mails(t, "kernel.citizen/guest")
		if len(ms) != 1 {
			t.Fatalf("guest mails: %d", len(ms))
		}
		tok := guestRe.FindStringSubmatch(ms[0].Text)[1]
		c.Get("/compte/invite?t=" + tok)
		r = c.Post("/compte/invite", url.Values{"t": {tok}})
		if r.Status != 303 || !strings.HasSuffix(r.Location, "/recapitulatif") {
			t.Fatalf("guest link: %d %s", r.Status, r.Location)
		}
		r = c.Get(r.Location)
		if r.Status != 200 || !strings.Contains(r.Body, "Léa Martin") || !strings.Contains(r.Body, "Renouvellement") {
			t.Fatalf("recap: %d", r.Status)
		}
		r = c.Post(hold+"/recapitulatif", url.Values{})
		if r.Status != 200 || !strings.Contains(r.Body, "/rdv/annuler/") {
			t.Fatalf("confirm: %d %s", r.Status, r.Body)
		}
		cancel := regexp.MustCompile(`https?://[^"]+(/rdv/annuler/[A-Za-z0-9_-]+)`).FindStringSubmatch(r.Body)[1]
		// The hold link is spent.
		if r := c.Get(hold); r.Status != 410 {
			t.Errorf("spent hold link: %d", r.Status)
		}
		r = c.Get(cancel)
		if r.Status != 200 || !strings.Contains(r.Body, `method="post"`) {
			t.Fatalf("cancel page: %d", r.Status)
		}
		if r := c.Post(cancel, url.Values{}); r.Status != 200 {
			t.Fatalf("cancel: %d", r.Status)
		}
		if r := c.Post(cancel, url.Values{}); r.Status != 404 {
			t.Errorf("cancel link reused: %d", r.Status)
		}
		if r := c.Get("/rdv/annuler/forged-token-0123456789ab"); r.Status != 404 {
			t.Errorf("forged cancel link: %d", r.Status)
		}
		checkAccounting(t, f)
	})
}
