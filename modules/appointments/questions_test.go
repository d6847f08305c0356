package appointments

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/modules/forms"
)

// cniForm is a question set built with the forms builder: a required email and a number of
// children between 0 and 6.
const cniForm = `
key: rdv_cni
title: Questions pour la carte d'identité
steps:
  - key: demande
    title: Votre demande
    sections:
      - key: s1
        questions:
          - {key: courriel, type: email, label: Courriel du demandeur, required: true}
          - {key: enfants, type: number, label: Nombre d'enfants mineurs, required: true, min: 0, max: 6}
          - {key: premiere, type: yesno, label: Première demande ?}
`

// publishForm saves and publishes a form through the forms module of the server.
func publishForm(t *testing.T, f *fixture, doc string) {
	t.Helper()
	var fm *forms.Module
	for _, in := range f.Modules {
		if m, ok := in.Module.(*forms.Module); ok {
			fm = m
		}
	}
	if fm == nil {
		t.Fatal("forms module not built")
	}
	def, err := forms.ParseDefinition([]byte(doc), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := kernel.WithAgent(f.ctx, f.agent)
	if err := f.DB.InTx(ctx, func(tx *store.Tx) error { _, err := fm.SaveForm(ctx, tx, f.org, def); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := fm.Publish(ctx, f.org, def.Key); err != nil {
		t.Fatal(err)
	}
}

// holdThroughPages chooses the slot at hm on day through the public pages and returns the
// questions page's address.
func holdThroughPages(t *testing.T, f *fixture, c *servertest.Client, day, hm string) string {
	t.Helper()
	times := fmt.Sprintf("/rdv/demarche/%d/%d/%s", f.svc.ID, f.place.ID, day)
	c.Get(times)
	r := c.Post(times, url.Values{"creneau": {fmt.Sprint(f.slotAt(t, f.svc.ID, f.place.ID, day, hm).ID)}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("hold: %d %s", r.Status, r.Body)
	}
	return r.Location
}

// proveEmail follows the guest link mailed to email and returns the page it leads to.
func proveEmail(t *testing.T, f *fixture, c *servertest.Client, email string) string {
	t.Helper()
	var link []string
	for _, m := range f.mails(t, "kernel.citizen/guest") {
		if strings.Contains(m.To, email) {
			link = guestRe.FindStringSubmatch(m.Text)
		}
	}
	if link == nil {
		t.Fatalf("no guest link mailed to %s", email)
	}
	c.Get("/compte/invite?t=" + link[1])
	r := c.Post("/compte/invite", url.Values{"t": {link[1]}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("guest link: %d", r.Status)
	}
	return r.Location
}

// TestServiceQuestionsFromAForm: a service names a form of the forms builder in its
// settings; the questions page asks the form's questions, refuses bad answers with the
// forms' messages (nothing stored), stores good ones with the appointment and shows them on
// the recap, the confirmation, the agent's page and the confirmation mail; the API checks
// the same answers.
func TestServiceQuestionsFromAForm(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		publishForm(t, f, cniForm)
		// Booked with the inline question, before the service names the form.
		earlier, err := f.m.Book(f.ctx, HoldRequest{SlotID: f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-05", "09:00").ID},
			Details{Name: "Noé Petit", Email: "noe@example.fr", Answers: map[string]string{"motif": "Renouvellement"}})
		if err != nil {
			t.Fatal(err)
		}
		f.m.NotifyPending(f.ctx)
		admin := f.ClientAs(f.agent)
		form := fmt.Sprintf("/admin/rdv/reglages/demarche?id=%d", f.svc.ID)
		if r := admin.Get(form); r.Status != 200 || !strings.Contains(r.Body, `<option value="rdv_cni"`) || !strings.Contains(r.Body, "Questions pour la carte d&#39;identité") {
			t.Fatalf("service form does not offer the form: %d", r.Status)
		}
		edit := url.Values{"id": {fmt.Sprint(f.svc.ID)}, "name": {f.svc.Name}, "category": {fmt.Sprint(f.svc.CategoryID)}, "active": {"1"},
			"notice_hours": {"2"}, "window_days": {"60"}, "hold_minutes": {"10"}, "slots_per_unit": {"1"}, "max_units": {"3"},
			"max_upcoming": {"1"}, "max_upcoming_category": {"0"}, "min_gap_days": {"0"}, "reminder_hours": {"24"}}
		edit.Set("form", "pas_un_formulaire")
		if r := admin.Post("/admin/rdv/reglages/demarche", edit); r.Status != 400 || !strings.Contains(r.Body, `href="#f-form"`) {
			t.Fatalf("unknown form accepted: %d", r.Status)
		}
		edit.Set("form", "rdv_cni")
		if r := admin.Post("/admin/rdv/reglages/demarche", edit); r.Status != 303 {
			t.Fatalf("naming the form: %d %s", r.Status, r.Body)
		}
		svc, _ := f.m.Service(f.ctx, f.DB.Read(), f.svc.ID)
		if svc.FormKey != "rdv_cni" || len(svc.Questions) != 1 {
			t.Fatalf("saved service: form %q, %d inline questions", svc.FormKey, len(svc.Questions))
		}

		c := f.Client()
		hold := holdThroughPages(t, f, c, "2026-03-03", "09:00")
		r := c.Get(hold)
		for _, want := range []string{`name="q_courriel"`, `id="f-q_enfants"`, `inputmode="decimal"`, "Nombre d&#39;enfants mineurs", `data-forms`} {
			if !strings.Contains(r.Body, want) {
				t.Errorf("questions page lacks %s", want)
			}
		}
		if strings.Contains(r.Body, `name="q_motif"`) {
			t.Error("the inline question is asked besides the form's")
		}

		// Bad answers: every problem in the error summary, each with the forms' message on
		// its field; nothing stored.
		r = c.Post(hold, url.Values{"name": {"Léa Martin"}, "email": {"lea@example.fr"}, "q_courriel": {"pas-une-adresse"}, "q_enfants": {"9"}})
		if r.Status != http.StatusBadRequest {
			t.Fatalf("bad answers: %d", r.Status)
		}
		for _, want := range []string{`href="#f-q_courriel"`, `href="#f-q_enfants"`, f.m.i18n.T("fr", "forms.error.email"),
			f.m.i18n.T("fr", "forms.error.max", "max", "6"), `value="pas-une-adresse"`, `aria-invalid="true"`} {
			if !strings.Contains(r.Body, want) {
				t.Errorf("refusal lacks %q", want)
			}
		}
		r = c.Post(hold, url.Values{"name": {""}, "email": {"lea@example.fr"}, "q_courriel": {"lea@example.fr"}, "q_enfants": {"-1"}})
		if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, `href="#f-name"`) || !strings.Contains(r.Body, f.m.i18n.T("fr", "forms.error.min", "min", "0")) {
			t.Errorf("missing name and a number below the minimum: %d", r.Status)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM appt_appointments WHERE status = 'held' AND (email <> '' OR answers <> '{}')`); n != 0 {
			t.Errorf("%d appointments with details after refusals", n)
		}

		// Good answers: stored, shown on the recap.
		r = c.Post(hold, url.Values{"name": {"Léa Martin"}, "email": {"lea@example.fr"}, "q_courriel": {"parent@example.fr"}, "q_enfants": {"2"}, "q_premiere": {"yes"}})
		if r.Status != http.StatusOK {
			t.Fatalf("good answers: %d %s", r.Status, r.Body)
		}
		a := f.apptByEmail(t, "lea@example.fr")
		if a.Answers["courriel"] != "parent@example.fr" || a.Answers["enfants"] != "2" || a.Answers["premiere"] != "yes" || len(a.Answers) != 3 {
			t.Fatalf("stored answers %v", a.Answers)
		}
		// The questions page shows them again.
		if r := c.Get(hold); !strings.Contains(r.Body, `value="parent@example.fr"`) || !strings.Contains(r.Body, `value="2"`) {
			t.Error("the questions page does not show the answers again")
		}
		recap := proveEmail(t, f, c, "lea@example.fr")
		r = c.Get(recap)
		for _, want := range []string{"Courriel du demandeur", "parent@example.fr", "Nombre d&#39;enfants mineurs", "Première demande ?", "Oui"} {
			if r.Status != 200 || !strings.Contains(r.Body, want) {
				t.Errorf("recap lacks %q (%d)", want, r.Status)
			}
		}
		r = c.Post(hold+"/recapitulatif", url.Values{})
		if r.Status != 200 || !strings.Contains(r.Body, "Nombre d&#39;enfants mineurs") {
			t.Fatalf("confirm: %d", r.Status)
		}
		a = f.apptByEmail(t, "lea@example.fr")
		if a.Status != StatusConfirmed {
			t.Fatalf("status %s", a.Status)
		}
		text, _ := f.confirmationOf(t, a.ID)
		for _, want := range []string{"Vos réponses", "Courriel du demandeur : parent@example.fr", "Nombre d'enfants mineurs : 2", "Première demande ? : Oui"} {
			if !strings.Contains(text, want) {
				t.Errorf("confirmation mail lacks %q:\n%s", want, text)
			}
		}
		r = admin.Get("/admin/rdv/rendez-vous/" + a.Ref)
		if r.Status != 200 || !strings.Contains(r.Body, "Nombre d&#39;enfants mineurs") || !strings.Contains(r.Body, "parent@example.fr") {
			t.Errorf("agent's page: %d", r.Status)
		}

		// Rescheduling the earlier booking: its answers are not the form's, so the citizen
		// answers the form's questions on the new hold, the contact details filled in.
		times := fmt.Sprintf("/rdv/demarche/%d/%d/2026-03-05", f.svc.ID, f.place.ID)
		cr := f.Client()
		cr.Get(times)
		r = cr.Post(times, url.Values{"creneau": {fmt.Sprint(f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-05", "10:00").ID)}, "gerer": {earlier.ManageToken}})
		if r.Status != http.StatusSeeOther || !holdRe.MatchString(r.Location) || strings.HasSuffix(r.Location, "/recapitulatif") {
			t.Fatalf("reschedule: %d %s", r.Status, r.Location)
		}
		if r := cr.Get(r.Location); r.Status != 200 || !strings.Contains(r.Body, `value="Noé Petit"`) || !strings.Contains(r.Body, `name="q_courriel"`) {
			t.Errorf("reschedule's questions: %d", r.Status)
		}

		// The API checks the same answers.
		s := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-03", "11:00")
		res := call(t, f.URL, "POST", "/api/appointments", f.token, map[string]any{"slot_id": s.ID, "name": "Sam", "email": "sam@example.fr",
			"answers": map[string]string{"courriel": "sam@example.fr", "enfants": "12"}})
		if res.Status != 400 || res.JSON(t)["code"] != "invalid_input" || res.JSON(t)["field"] != "q_enfants" {
			t.Errorf("API with a number above the maximum: %d %s", res.Status, res.Body)
		}
		res = call(t, f.URL, "POST", "/api/appointments", f.token, map[string]any{"slot_id": s.ID, "name": "Sam", "email": "sam@example.fr",
			"answers": map[string]string{"courriel": "sam@example.fr", "enfants": "1", "motif": "Renouvellement"}})
		if res.Status != 400 || res.JSON(t)["code"] != "invalid_input" {
			t.Errorf("API with an answer the form does not ask: %d %s", res.Status, res.Body)
		}
		res = call(t, f.URL, "POST", "/api/appointments", f.token, map[string]any{"slot_id": s.ID, "name": "Sam", "email": "sam@example.fr",
			"answers": map[string]string{"courriel": "sam@example.fr", "enfants": "1"}})
		if res.Status != 201 {
			t.Errorf("API with good answers: %d %s", res.Status, res.Body)
		}
		checkAccounting(t, f)
	})
}

// TestQuestionsWithoutTheFormsModule: the module starts in a binary without the forms
// module; a service naming a form then asks its inline questions.
func TestQuestionsWithoutTheFormsModule(t *testing.T) {
	var infos []kernel.Info
	for _, i := range kernel.Registered() {
		if i.ID != forms.ID {
			infos = append(infos, i)
		}
	}
	clk := &testClock{t: start}
	s := servertest.New(t, store.SQLite, servertest.Options{Clock: clk, Env: []string{"PARVIS_TIMEZONE=Europe/Paris"}, Modules: infos})
	f := fixtureOn(t, s, clk, true)
	if _, ok := f.m.formQuestions(); ok {
		t.Fatal("the forms service is there")
	}
	f.svc.FormKey = "rdv_cni"
	if _, err := f.m.SaveService(f.ctx, f.svc); err != nil {
		t.Fatal(err)
	}
	if r := f.ClientAs(f.agent).Get(fmt.Sprintf("/admin/rdv/reglages/demarche?id=%d", f.svc.ID)); r.Status != 200 || strings.Contains(r.Body, `name="form"`) {
		t.Errorf("service form without forms: %d", r.Status)
	}
	c := f.Client()
	hold := holdThroughPages(t, f, c, "2026-03-03", "09:00")
	if r := c.Get(hold); r.Status != 200 || !strings.Contains(r.Body, `name="q_motif"`) {
		t.Fatalf("inline questions not asked: %d", r.Status)
	}
	if r := c.Post(hold, url.Values{"name": {"Léa Martin"}, "email": {"lea@example.fr"}}); r.Status != 400 || !strings.Contains(r.Body, `href="#f-q_motif"`) {
		t.Errorf("inline required question not checked: %d", r.Status)
	}
	if r := c.Post(hold, url.Values{"name": {"Léa Martin"}, "email": {"lea@example.fr"}, "q_motif": {"Renouvellement"}}); r.Status != 200 {
		t.Errorf("inline answer: %d", r.Status)
	}
	if a := f.apptByEmail(t, "lea@example.fr"); a.Answers["motif"] != "Renouvellement" {
		t.Errorf("answers %v", a.Answers)
	}
	// The saved service keeps the form's name, for when the module comes back.
	if s, _ := f.m.Service(f.ctx, f.DB.Read(), f.svc.ID); s.FormKey != "rdv_cni" {
		t.Errorf("form key %q", s.FormKey)
	}
}
