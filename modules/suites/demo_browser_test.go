package suites_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/browsertest"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/modules/appointments"
)

// TestBrowserDemoTown walks the town `parvis serve --suite demo` gives, in headless
// Chromium: a citizen on a phone signs up, books a passport appointment, asks for a
// bulky-item pickup and finds both in "my space"; an agent checks the citizen in from the
// planning and schedules the pickup. axe-core checks every page passed (serious or critical
// violations fail).
func TestBrowserDemoTown(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{Env: []string{"PARVIS_SUITE=demo"}, Start: true})
	ctx := context.Background()
	b := browsertest.New(t)
	b.Base = s.URL
	b.Viewport(browsertest.Phone)
	visit := func(path string) {
		t.Helper()
		if st := b.Go(path); st != http.StatusOK {
			t.Fatalf("GET %s: %d\n%.1000s", path, st, b.Text("body"))
		}
		b.Axe()
	}
	email := "lea.martin@example.fr"

	// Home page of the town.
	visit("/")
	if !strings.Contains(b.Text("body"), "Belleville-sur-Loire") {
		t.Fatal("the home page is not the demo town's")
	}

	// Sign up, prove the address by the mailed link, sign in.
	visit("/compte/inscription")
	b.Fill(`#f-email`, email)
	b.Fill(`#f-name`, "Léa Martin")
	b.Fill(`#f-password`, "une phrase de passe solide")
	b.SubmitForm(`#f-email`)
	b.Axe()
	link := mailLink(t, s, email, regexp.MustCompile(`/compte/verifier\?t=[A-Za-z0-9_-]+`))
	visit(link)
	if !strings.HasPrefix(b.Path(), "/compte") {
		t.Fatalf("after the verification link: %s", b.Path())
	}
	visit("/compte/connexion")
	b.Fill(`#f-email`, email)
	b.Fill(`#f-password`, "une phrase de passe solide")
	b.SubmitForm(`#f-email`)
	b.Axe()
	if b.Has(`#f-password`) {
		t.Fatalf("sign-in failed at %s: %s", b.Path(), b.Text("main"))
	}

	// Book a passport appointment at the town hall.
	var am *appointments.Module
	for _, in := range s.Modules {
		if m, ok := in.Module.(*appointments.Module); ok {
			am = m
		}
	}
	org := s.DefaultOrg()
	services, err := am.Services(ctx, org, true)
	if err != nil {
		t.Fatal(err)
	}
	var svc appointments.Service
	for _, x := range services {
		if strings.HasPrefix(x.Name, "Passeport") {
			svc = x
		}
	}
	places, err := am.Places(ctx, org, svc.ID)
	if err != nil || len(places) == 0 {
		t.Fatalf("places: %v", err)
	}
	now := time.Now()
	slots, err := am.Slots(ctx, appointments.SlotQuery{ServiceID: svc.ID, PlaceID: places[0].ID, From: now.Add(24 * time.Hour), To: now.AddDate(0, 0, 14), Units: 1, FreeOnly: true})
	if err != nil || len(slots) == 0 {
		t.Fatalf("slots: %d %v", len(slots), err)
	}
	slot := slots[0]
	visit("/rdv")
	b.Submit(fmt.Sprintf(`a[href="/rdv/demarche/%d"]`, svc.ID))
	b.Axe()
	day := slot.Start.In(s.Config.Location).Format(time.DateOnly)
	visit(fmt.Sprintf("/rdv/demarche/%d/%d/%s", svc.ID, places[0].ID, day))
	b.Click(fmt.Sprintf(`input[name="creneau"][value="%d"]`, slot.ID))
	b.Submit(`form[method="post"] button`)
	b.Axe()
	if !strings.HasPrefix(b.Path(), "/rdv/reservation/") {
		t.Fatalf("after choosing a time: %s", b.Path())
	}
	if b.Has(`#f-name`) {
		b.Fill(`#f-name`, "Léa Martin")
	}
	if b.Has(`#f-email`) {
		b.Fill(`#f-email`, email)
	}
	if b.Has(`#f-ants_ids`) {
		b.Fill(`#f-ants_ids`, "AB12CD34EF")
	}
	b.Submit(`form[method="post"] button`)
	b.Axe()
	if strings.HasSuffix(b.Path(), "/recapitulatif") {
		b.Submit(`form[method="post"] button`)
		b.Axe()
	}
	if !b.Has(`a[href^="/rdv/annuler/"]`) && !strings.Contains(b.Text("main"), svc.Name) {
		t.Fatalf("the appointment is not confirmed at %s:\n%s", b.Path(), b.Text("main"))
	}

	// A bulky-item pickup request.
	visit("/demarches/encombrants")
	b.Submit("main form button")
	b.Axe()
	when := time.Now().AddDate(0, 0, 7)
	b.Fill(`input[name="adresse.street"]`, "12 rue des Lilas")
	b.Fill(`input[name="adresse.postcode"]`, "45000")
	b.Fill(`input[name="adresse.town"]`, "Belleville-sur-Loire")
	b.Fill(`input[name="quand-day"]`, when.Format("2"))
	b.Fill(`input[name="quand-month"]`, when.Format("1"))
	b.Fill(`input[name="quand-year"]`, when.Format("2006"))
	b.Submit(`button[name="op"][value="next"]`)
	b.Axe()
	b.Select(`select[name="objets[0].nature"]`, "meuble")
	b.Fill(`input[name="objets[0].volume"]`, "1.5")
	b.Submit(`button[name="op"][value="next"]`)
	b.Axe()
	if b.Has(`input[name="nom"]`) {
		b.Fill(`input[name="nom"]`, "Léa Martin")
	}
	if b.Has(`input[name="email"]`) {
		b.Fill(`input[name="email"]`, email)
	}
	b.Submit(`button[name="op"][value="next"]`)
	b.Axe()
	if !strings.HasSuffix(b.Path(), "/recapitulatif") {
		t.Fatalf("after the last step: %s\n%s", b.Path(), b.Text("main"))
	}
	b.Submit(`main form[method="post"] button`)
	b.Axe()
	if !strings.Contains(b.Path(), "/demarches/encombrants/envoye/") {
		t.Fatalf("after sending the request: %s\n%s", b.Path(), b.Text("main"))
	}
	reqRef := b.Path()[strings.LastIndex(b.Path(), "/")+1:]

	// My space: both there, reached by the links of the space's home page.
	visit("/compte")
	for _, p := range []string{"/compte/rendez-vous", "/compte/demandes"} {
		if !b.Has(`main a[href="` + p + `"]`) {
			t.Errorf("my space does not link to %s", p)
		}
	}
	visit("/compte/rendez-vous")
	m := regexp.MustCompile(`Passeport[^\n]*\(([A-Z0-9-]+)\)`).FindStringSubmatch(b.Text("main"))
	if m == nil {
		t.Fatalf("my appointments do not list the passport appointment:\n%s", b.Text("main"))
	}
	apptRef := m[1]
	visit("/compte/demandes")
	if !strings.Contains(b.Text("main"), reqRef) {
		t.Fatalf("my requests do not list %s:\n%s", reqRef, b.Text("main"))
	}
	visit("/compte/demandes/" + reqRef)

	// The agent: checks the citizen in from the planning, schedules the pickup.
	agent := s.NewOrgAdmin(org, "agent@belleville.example.org")
	tok, err := s.Auth().SessionToken(ctx, agent.ID, "127.0.0.1", "browser")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(b.Context(), network.SetCookie, network.SetCookieParams{Name: auth.CookieName, Value: tok, URL: s.URL + "/"}); err != nil {
		t.Fatal(err)
	}
	b.Viewport(browsertest.Desktop)
	visit("/admin/rdv/planning?jour=" + day)
	if !strings.Contains(b.Text("main"), "Léa Martin") {
		t.Fatalf("the planning of %s does not list the appointment:\n%s", day, b.Text("main"))
	}
	b.Submit(fmt.Sprintf(`form[action="/admin/rdv/rendez-vous/%s/etat"] button[value="arrive"]`, apptRef))
	b.Axe()
	var state string
	if err := s.DB.Read().QueryRowContext(ctx, `SELECT state FROM appt_appointments WHERE ref = ?`, apptRef).Scan(&state); err != nil || state != "arrived" {
		t.Errorf("after check-in the appointment is %q (%v)", state, err)
	}
	visit("/admin/reponses/" + reqRef)
	b.Submit(`a[href^="/admin/workflow/r/forms.response/"]`)
	b.Axe()
	b.Click(`input[name="action"][value="schedule"]`)
	b.SubmitForm(`input[name="action"][value="schedule"]`)
	b.Axe()
	visit("/compte/demandes/" + reqRef)
	if !strings.Contains(b.Text("main"), "Enlèvement planifié") {
		t.Errorf("the citizen does not see the pickup scheduled:\n%s", b.Text("main"))
	}
}

// mailLink finds re in the last mail sent to email.
func mailLink(t *testing.T, s *servertest.Server, email string, re *regexp.Regexp) string {
	t.Helper()
	var text string
	if err := s.DB.Read().QueryRowContext(context.Background(), `SELECT text_body FROM mail_messages WHERE recipients LIKE ? ORDER BY id DESC LIMIT 1`,
		"%"+email+"%").Scan(&text); err != nil {
		t.Fatalf("no mail to %s: %v", email, err)
	}
	link := re.FindString(text)
	if link == "" {
		t.Fatalf("no %s in the mail to %s:\n%s", re, email, text)
	}
	return link
}
