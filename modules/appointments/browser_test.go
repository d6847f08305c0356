package appointments

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/browsertest"
	"parvis.org/parvis/kernel/store"
)

// TestBrowserCitizenBooksAndAgentChecksIn drives headless Chromium on a phone-sized screen:
// a citizen books (once with JavaScript, once without), proves their email, confirms,
// receives the confirmation mail with a valid .ics and cancels by its link; an agent sees the
// day's planning and checks a citizen in. axe-core runs on the service list, the places, the
// calendar, the time choice, the form, the recap, the confirmation, the cancel page, the
// planning, the statistics and the settings forms (serious or critical violations fail).
func TestBrowserCitizenBooksAndAgentChecksIn(t *testing.T) {
	f := setup(t, store.SQLite)
	b := browsertest.New(t)
	b.Base = f.URL
	b.Viewport(browsertest.Phone)

	for _, js := range []bool{true, false} {
		name := map[bool]string{true: "with JavaScript", false: "without JavaScript"}[js]
		t.Run(name, func(t *testing.T) {
			b.T = t
			scripts(t, b, js)
			// Each citizen starts afresh: no proof of the previous one's email.
			if _, err := chromedp.Call(b.Context(), network.ClearBrowserCookies, cdp.Empty{}); err != nil {
				t.Fatal(err)
			}
			// Every step is an axe check while scripts run (axe needs them; the pages are the
			// same without).
			check := func(what string) {
				t.Helper()
				if js {
					b.Axe()
				}
				b.Screenshot(strings.ReplaceAll(name+"-"+what, " ", "-"))
			}
			email := map[bool]string{true: "lea@example.fr", false: "sam@example.fr"}[js]
			hm := map[bool]string{true: "09:00", false: "09:15"}[js]

			go200(t, b, "/rdv")
			check("services")
			b.Submit(fmt.Sprintf(`a[href="/rdv/demarche/%d"]`, f.svc.ID))
			check("places")
			go200(t, b, fmt.Sprintf("/rdv/demarche/%d/%d", f.svc.ID, f.place.ID))
			check("calendar")
			go200(t, b, fmt.Sprintf("/rdv/demarche/%d/%d/2026-03-03", f.svc.ID, f.place.ID))
			check("times")
			slot := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-03", hm)
			b.Click(fmt.Sprintf(`input[name="creneau"][value="%d"]`, slot.ID))
			b.Submit(`form[method="post"] button`)
			if p := location(t, b); !strings.HasPrefix(p, "/rdv/reservation/") {
				t.Fatalf("after choosing a time at %s", p)
			}
			check("form")
			// The email forgotten first: the error summary links to the field.
			b.Run("name", chromedp.SendKeys(chromedp.CSS(`#f-name`), "Léa Martin"))
			b.Click(`#f-q_motif-1`)
			b.Submit(`form[method="post"] button`)
			if !has(t, b, `.pv-error-summary a[href="#f-email"]`) {
				t.Fatalf("no error summary for the missing email at %s", location(t, b))
			}
			check("form-error")
			b.Run("email", chromedp.SendKeys(chromedp.CSS(`#f-email`), email))
			b.Submit(`form[method="post"] button`)
			// The guest proves the address by the link mailed to it.
			ms := f.mails(t, "kernel.citizen/guest")
			var link string
			for _, m := range ms {
				if strings.Contains(m.To, email) {
					link = guestRe.FindString(m.Text)
				}
			}
			if link == "" {
				t.Fatalf("no guest link mailed to %s (%d mails)", email, len(ms))
			}
			go200(t, b, link)
			b.Submit(`form[method="post"] button`)
			if p := location(t, b); !strings.HasSuffix(p, "/recapitulatif") {
				t.Fatalf("after the email proof at %s", p)
			}
			check("recap")
			b.Submit(`form[method="post"] button`)
			check("confirmed")
			a := f.apptByEmail(t, email)
			if a.Status != StatusConfirmed {
				t.Fatalf("appointment %s is %s", a.Ref, a.Status)
			}
			// The mail (sent by the notifier from the outbox) carries a valid .ics and the links.
			text, cal := f.confirmationOf(t, a.ID)
			evs := cal.Events()
			if len(evs) != 1 {
				t.Fatalf("%d events in the .ics", len(evs))
			}
			if st, err := evs[0].GetStartAt(); err != nil || !st.Equal(slot.Start) {
				t.Errorf(".ics DTSTART %v (%v), want %v", st, err, slot.Start)
			}
			cancel := regexp.MustCompile(`https?://\S+(/rdv/annuler/[A-Za-z0-9_-]+)`).FindStringSubmatch(text)
			if cancel == nil {
				t.Fatalf("no cancel link in the mail:\n%s", text)
			}
			go200(t, b, cancel[1])
			check("cancel")
			b.Submit(`form[method="post"] button`)
			if a := f.apptByEmail(t, email); a.Status != StatusCancelled {
				t.Errorf("after the cancel link the appointment is %s", a.Status)
			}
		})
	}

	t.Run("agent planning and check-in", func(t *testing.T) {
		b.T = t
		scripts(t, b, true)
		s := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-03", "10:00")
		a, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID}, Details{Name: "Noé Petit", Email: "noe@example.fr", Answers: map[string]string{"motif": "Renouvellement"}})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := f.Auth().SessionToken(context.Background(), f.agent.ID, "127.0.0.1", "browser")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(b.Context(), network.SetCookie, network.SetCookieParams{Name: auth.CookieName, Value: tok, URL: f.URL + "/"}); err != nil {
			t.Fatal(err)
		}
		b.Viewport(browsertest.Desktop)
		go200(t, b, "/admin/rdv/planning?jour=2026-03-03")
		b.Axe()
		b.Screenshot("planning")
		if !strings.Contains(b.Text("main"), "Noé Petit") {
			t.Fatal("the planning does not list the appointment")
		}
		b.Submit(fmt.Sprintf(`form[action="/admin/rdv/rendez-vous/%s/etat"] button[value="arrive"]`, a.Ref))
		b.Axe()
		if got, _ := f.m.Appointment(f.ctx, a.ID); got.State != "arrived" {
			t.Errorf("after check-in the state is %q", got.State)
		}
		if p := location(t, b); p != "/admin/rdv/planning?jour=2026-03-03" { // back to the same day
			t.Errorf("after check-in at %s", p)
		}

		// The week: a grid per meeting point, the day's heading leading to its list.
		go200(t, b, fmt.Sprintf("/admin/rdv/planning?vue=semaine&jour=2026-03-04&lieu=%d", f.place.ID))
		b.Axe()
		b.Screenshot("planning-week")
		if got := b.Text(`td[data-day="2026-03-03"][data-time="10:00"]`); !strings.Contains(got, "1 / 2") {
			t.Errorf("the week grid says %q at 10:00 on Tuesday, want 1 / 2", got)
		}
		if n := b.Count(`table.appt-week caption`) + b.Count(`table.appt-week th[scope="col"]`); n != 1+8 {
			t.Errorf("week grid: %d caption and column headers, want 9", n)
		}
		b.Submit(fmt.Sprintf(`a[href="/admin/rdv/planning?jour=2026-03-03&lieu=%d"]`, f.place.ID))
		if !strings.Contains(b.Text("main"), "Noé Petit") {
			t.Errorf("the day's list from the week at %s does not list the appointment", location(t, b))
		}
		// Printed: the bare page, the same grid.
		go200(t, b, fmt.Sprintf("/admin/rdv/planning/imprimer?vue=semaine&jour=2026-03-04&lieu=%d", f.place.ID))
		b.Axe()
		b.Screenshot("planning-week-print")
		// The statistics of the month, with their filters.
		go200(t, b, "/admin/rdv/statistiques?mois=2026-03")
		if !b.Has("table") || !b.Has(`input[name="mois"]`) {
			t.Error("the statistics page shows no table or no month filter")
		}
		b.Axe()
		b.Screenshot("statistics")
	})

	t.Run("questions from a form", func(t *testing.T) {
		b.T = t
		scripts(t, b, true)
		b.Viewport(browsertest.Phone)
		publishForm(t, f, condForm)
		svc := f.svc
		svc.FormKey = "rdv_cond"
		if _, err := f.m.SaveService(f.ctx, svc); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := f.m.SaveService(f.ctx, f.svc); err != nil {
				t.Error(err)
			}
		}()
		a, err := f.m.Hold(f.ctx, HoldRequest{SlotID: f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-03", "11:00").ID, Lang: "fr"})
		if err != nil {
			t.Fatal(err)
		}
		go200(t, b, "/rdv/reservation/"+a.HoldToken)
		b.Axe()
		hidden := func() bool {
			return browsertest.Eval[bool](b, `document.querySelector('[name="q_ancien"]').closest("[data-if]").hidden`)
		}
		if !hidden() {
			t.Error("the conditional question is shown before any answer")
		}
		b.Click(`input[name="q_premiere"][value="no"]`)
		if hidden() {
			t.Error("the conditional question stays hidden after the answer it depends on")
		}
		b.Fill(`#f-name`, "Léa Martin")
		b.Fill(`#f-email`, "lea.form@example.fr")
		b.Fill(`#f-q_enfants`, "9")
		b.Submit(`form[method="post"] button`)
		if !has(t, b, `.pv-error-summary a[href="#f-q_enfants"]`) || !has(t, b, `.pv-error-summary a[href="#f-q_courriel"]`) {
			t.Fatalf("no error summary for the form's questions at %s", location(t, b))
		}
		b.Axe()
		b.Screenshot("form-questions-error")
	})

	t.Run("settings forms", func(t *testing.T) {
		b.T = t
		for _, p := range []string{"/admin/rdv/reglages", fmt.Sprintf("/admin/rdv/reglages/demarche?id=%d", f.svc.ID), "/admin/rdv/reglages/lieu"} {
			go200(t, b, p)
			b.Axe()
		}
		// An overlapping weekly template: refused, explained in the error summary.
		go200(t, b, "/admin/rdv/reglages/modele")
		b.Axe()
		b.Fill(`#f-valid_from`, "2026-06-01")
		b.Fill(`#f-valid_to`, "2026-06-30")
		b.Fill(`#f-mon`, "09:00-12:00")
		b.SubmitForm(`#f-valid_from`)
		if !b.Has(`.pv-error-summary a[href="#f-valid_from"]`) {
			t.Fatal("the overlap is not in the error summary")
		}
		b.Axe()
		b.Screenshot("template-overlap")
	})
}

// condForm asks a question only when the one before it is answered "no".
const condForm = `
key: rdv_cond
title: Questions du rendez-vous
steps:
  - key: demande
    title: Votre demande
    sections:
      - key: s1
        questions:
          - {key: courriel, type: email, label: Courriel du demandeur, required: true}
          - {key: enfants, type: number, label: Nombre d'enfants mineurs, required: true, min: 0, max: 6}
          - {key: premiere, type: yesno, label: Première demande ?, required: true}
          - {key: ancien, type: text, label: Numéro de l'ancienne carte, if: {field: premiere, op: eq, value: "no"}}
`

// go200 loads path and fails unless it answers 200.
func go200(t *testing.T, b *browsertest.Browser, path string) {
	t.Helper()
	if st := b.Go(path); st != http.StatusOK {
		t.Fatalf("GET %s: %d", path, st)
	}
}

// scripts turns the page's JavaScript on or off (a browser without JavaScript).
func scripts(t *testing.T, b *browsertest.Browser, on bool) {
	t.Helper()
	if _, err := chromedp.Call(b.Context(), emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !on}); err != nil {
		t.Fatal(err)
	}
}

// location is the path of the page shown. DevTools evaluations run even when the page's
// own scripts are disabled, so this works without JavaScript too.
func location(t *testing.T, b *browsertest.Browser) string {
	t.Helper()
	return b.Path()
}

// has reports whether sel matches in the page shown.
func has(t *testing.T, b *browsertest.Browser, sel string) bool {
	t.Helper()
	return b.Has(sel)
}

func (f *fixture) apptByEmail(t *testing.T, email string) *Appointment {
	t.Helper()
	a, err := f.m.apptWhere(f.ctx, f.DB.Read(), `a.email = ? ORDER BY a.id DESC`, email)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// confirmationOf works through the outbox as the notifier does and returns the text and
// the parsed .ics of the confirmation mail of appointment id.
func (f *fixture) confirmationOf(t *testing.T, id int64) (string, *ics.Calendar) {
	t.Helper()
	if n := f.m.NotifyPending(f.ctx); n != 1 {
		t.Errorf("the notifier handled %d appointments, want 1", n)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var text string
		var data []byte
		err := f.DB.Read().QueryRowContext(f.ctx, `SELECT m.text_body, a.data FROM mail_messages m JOIN mail_attachments a ON a.mail_id = m.id
			WHERE m.template = 'appointments/confirmed' AND m.recipients LIKE '%' || (SELECT email FROM appt_appointments WHERE id = ?) || '%'
			AND a.name = 'rendez-vous.ics' ORDER BY m.id DESC LIMIT 1`, id).Scan(&text, &data)
		if err == nil {
			cal, err := ics.ParseCalendar(strings.NewReader(string(data)))
			if err != nil {
				t.Fatalf("parse .ics: %v\n%s", err, data)
			}
			return text, cal
		}
		if time.Now().After(deadline) {
			t.Fatalf("no confirmation mail for appointment %d: %v", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
