package forms

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store/storetest"
	"parvis.org/parvis/modules/workflow"
)

// signIn proves email in client c through the guest link, as a citizen following the mail.
func signIn(t *testing.T, s *servertest.Server, m *Module, c *servertest.Client, email string) {
	t.Helper()
	if err := m.guests.Start(context.Background(), email, "/compte/demandes", "fr"); err != nil {
		t.Fatal(err)
	}
	var text string
	_ = s.DB.Read().QueryRowContext(context.Background(), `SELECT text_body FROM mail_messages WHERE text_body LIKE '%/compte/invite?t=%' AND recipients LIKE ? ORDER BY id DESC LIMIT 1`,
		"%"+email+"%").Scan(&text)
	tok := regexp.MustCompile(`/compte/invite\?t=([A-Za-z0-9_-]+)`).FindStringSubmatch(text)
	if tok == nil {
		t.Fatalf("guest link not found in %q", text)
	}
	c.Get("/compte/invite?t=" + tok[1])
	c.Post("/compte/invite", map[string][]string{"t": {tok[1]}})
}

// mailSubjects lists the subjects of the mails sent to email, oldest first.
func mailSubjects(t *testing.T, s *servertest.Server, email string) []string {
	t.Helper()
	rows, err := s.DB.Read().QueryContext(context.Background(), `SELECT subject FROM mail_messages WHERE recipients LIKE ? ORDER BY id`, "%"+email+"%")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var sub string
		_ = rows.Scan(&sub)
		out = append(out, sub)
	}
	return out
}

func pdfToText(t *testing.T, b []byte) string {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext (poppler-utils) is needed to check PDF text")
	}
	p := filepath.Join(t.TempDir(), "f.pdf")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-enc", "UTF-8", p, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

// TestExamples runs the two shipped examples as the issue tells them. Bulky-item pickup: a
// request is routed by its district's postcode, goes received → scheduled → done (or
// refused), and the citizen gets a mail at each step. Café-terrace permit: a file is
// attached, an agent asks for a correction that the citizen makes through the mailed link,
// acceptance makes an authorisation PDF that is mailed and that the citizen downloads from
// "my requests", and a request left unanswered is accepted after the silence set in the
// back office.
func TestExamples(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			clk := &testClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
			s := servertest.New(t, d, servertest.Options{Clock: clk})
			m := moduleOf(t, s)
			var wm *workflow.Module
			for _, in := range s.Modules {
				if x, ok := in.Module.(*workflow.Module); ok {
					wm = x
				}
			}
			ctx := context.Background()
			org := s.DefaultOrg()
			d11 := s.NewUnit(org, 0, "Mairie du 11e")
			other := s.NewUnit(org, 0, "Propreté")
			if err := m.InstallExamples(ctx, org, map[string]int64{"75011": d11}, other); err != nil {
				t.Fatal(err)
			}
			agent11 := s.NewAgentWith(auth.NewAgent{OrgID: org, Email: "a11@ville.test", Name: "A11", UnitIDs: []int64{d11}, Grants: []auth.Grant{
				{Perm: workflow.PermAct, Scope: auth.ScopeUnit, UnitID: d11}, {Perm: PermResponses, Scope: auth.ScopeUnit, UnitID: d11}}})
			boss := s.NewAgent(org, "chef@ville.test", workflow.PermAct, workflow.PermDecide, workflow.PermManage, PermResponses, PermManage)
			tok := s.APIToken(s.NewAgent(org, "guichet@ville.test", PermSubmit), PermSubmit)
			submit := func(body string) string {
				t.Helper()
				st, out := apiPost(t, s.URL, tok, "/api/forms/encombrants/responses", body)
				var r struct{ Reference string }
				if err := json.Unmarshal([]byte(out), &r); st != 201 || err != nil {
					t.Fatalf("bulky submission: %d %s", st, out)
				}
				return r.Reference
			}
			run := func(a *kernel.Agent, ref, action string) workflow.Status {
				t.Helper()
				st, err := m.wf.Run(ctx, a, workflow.Ref{Type: ResourceType, ID: ref}, action, workflow.Input{})
				if err != nil {
					t.Fatalf("%s on %s: %v", action, ref, err)
				}
				return st
			}

			// --- Bulky items.
			bulky := func(postcode, town, email string) string {
				return submit(`{"answers":{"adresse":{"street":"3 rue de Charonne","postcode":"` + postcode + `","town":"` + town + `"},"quand":"2026-03-10",
"objets":[{"nature":"meuble","volume":1.5},{"nature":"matelas","volume":0.5}],"nom":"Léa Martin","email":"` + email + `"}}`)
			}
			r1 := bulky("75011", "Paris", "lea@example.org")
			r2 := bulky("69001", "Lyon", "paul@example.org")
			for ref, unit := range map[string]int64{r1: d11, r2: other} {
				if st, err := m.wf.State(ctx, workflow.Ref{Type: ResourceType, ID: ref}); err != nil || st.UnitID != unit || st.State != "received" {
					t.Errorf("%s routed to %d (want %d), %s: %v", ref, st.UnitID, unit, st.State, err)
				}
			}
			workReceipts(t, s, m)
			if st := run(agent11, r1, "schedule"); st.PublicLabel != "Enlèvement planifié" {
				t.Errorf("scheduled: %+v", st)
			}
			if _, err := m.wf.Run(ctx, agent11, workflow.Ref{Type: ResourceType, ID: r2}, "schedule", workflow.Input{}); err == nil {
				t.Errorf("the 11th district's agent scheduled a request of another unit")
			}
			run(agent11, r1, "done")
			run(boss, r2, "refuse")
			want := map[string][]string{
				"lea@example.org":  {"Votre demande " + r1, "Enlèvement planifié (" + r1 + ")", "Enlèvement effectué (" + r1 + ")"},
				"paul@example.org": {"Votre demande " + r2, "Demande refusée (" + r2 + ")"},
			}
			for email, subjects := range want {
				got := mailSubjects(t, s, email)
				if len(got) != len(subjects) {
					t.Errorf("mails to %s: %q, want %q", email, got, subjects)
					continue
				}
				for i := range got {
					if !strings.Contains(got[i], subjects[i]) {
						t.Errorf("mail %d to %s: %q, want %q", i, email, got[i], subjects[i])
					}
				}
			}

			// --- Café terrace: the silence is set to ten days in the back office.
			bc := s.ClientAs(boss)
			bc.Get("/admin/workflows/terrasse")
			if res := bc.Post("/admin/workflows/terrasse", map[string][]string{"op": {"set_delay"}, "action": {"silence"}, "delay": {"10d"}}); res.Status != 303 {
				t.Fatalf("silence delay: %d\n%s", res.Status, res.Body)
			}
			l, err := m.published(ctx, "terrasse")
			if err != nil {
				t.Fatal(err)
			}
			terrace := func(name string) string {
				t.Helper()
				ans, ps := l.Def.CheckAll(map[string]any{"enseigne": name, "siret": "73282932000074",
					"adresse": map[string]any{"street": "1 quai du Port", "postcode": "75011", "town": "Paris"}, "surface": 12.0, "type": "ouverte",
					"plan": []FileRef{{ID: strings.Repeat("ab", 16), Name: "plan.pdf", Type: "application/pdf", Size: 100}}, "chauffage": "no",
					"email": "cafe@example.org", "telephone": "01 23 45 67 89", "cgu": "yes"}, m.today(), false)
				if len(ps) > 0 {
					t.Fatalf("terrace answers: %+v", ps)
				}
				resp, err := m.Submit(ctx, Submission{Form: l.Form, Def: l.Def, Answers: ans, Email: "cafe@example.org"})
				if err != nil {
					t.Fatal(err)
				}
				return resp.Ref
			}
			t1, t2 := terrace("Café du Port"), terrace("Bar des Amis")
			run(boss, t1, "take")
			run(boss, t1, "ask")
			var text string
			_ = s.DB.Read().QueryRowContext(ctx, `SELECT text_body FROM mail_messages WHERE subject = ?`, "Corrigez votre demande "+t1).Scan(&text)
			link := regexp.MustCompile(`/compte/demandes/` + t1 + `/corriger/[0-9a-f]+`).FindString(text)
			if link == "" {
				t.Fatalf("no correction link in %q", text)
			}
			citizen := s.Client()
			citizen.Get(link)
			if res := citizen.Post(link, map[string][]string{"surface": {"15"}, "type": {"fermee"}}); res.Status != 200 {
				t.Fatalf("correction: %d\n%s", res.Status, res.Body)
			}
			if r, _, _ := m.loadResponse(ctx, s.DB.Read(), t1); r.Answers["surface"] != 15.0 || r.State != "review" || r.Answers["chauffage"] != nil {
				t.Fatalf("after the correction: %s %v", r.State, r.Answers)
			}
			run(boss, t2, "take")
			run(boss, t2, "accept")
			// Eleven days later, the first, unanswered since its correction, is accepted.
			clk.mu.Lock()
			clk.t = clk.t.AddDate(0, 0, 11)
			clk.mu.Unlock()
			if _, err := wm.RunDueTimers(ctx); err != nil {
				t.Fatal(err)
			}
			for _, ref := range []string{t1, t2} {
				var state, label string
				_ = s.DB.Read().QueryRowContext(ctx, `SELECT state, public_label FROM forms_responses WHERE ref = ?`, ref).Scan(&state, &label)
				if state != "accepted" || label != "Autorisation accordée" {
					t.Errorf("%s: %s %q", ref, state, label)
				}
				var n int
				_ = s.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM mail_messages m JOIN mail_attachments a ON a.mail_id = m.id
 WHERE m.subject = 'Votre autorisation de terrasse' AND a.name = ?`, "permit-"+ref+".pdf").Scan(&n)
				if n != 1 {
					t.Errorf("%s: %d mails with the authorisation", ref, n)
				}
			}
			if hist, _ := m.wf.History(ctx, workflow.Ref{Type: ResourceType, ID: t1}, false); !strings.Contains(historyActions(hist), "silence") {
				t.Errorf("t1 accepted otherwise than by silence: %s", historyActions(hist))
			}
			// The citizen downloads the authorisation from "my requests".
			signIn(t, s, m, citizen, "cafe@example.org")
			page := citizen.Get("/compte/demandes/" + t1)
			doc := regexp.MustCompile(`/compte/demandes/` + t1 + `/documents/[0-9]+`).FindString(page.Body)
			if page.Status != 200 || doc == "" {
				t.Fatalf("my request: %d, no document link\n%s", page.Status, page.Body)
			}
			res := citizen.Get(doc)
			if res.Status != 200 || !strings.HasPrefix(res.Body, "%PDF-") {
				t.Fatalf("download: %d", res.Status)
			}
			if txt := pdfToText(t, []byte(res.Body)); !strings.Contains(txt, "Café du Port") || !strings.Contains(txt, "15 m²") {
				t.Errorf("authorisation text: %s", txt)
			}
			// Another person, and a document of another request, get nothing.
			stranger := s.Client()
			signIn(t, s, m, stranger, "paul@example.org")
			if res := stranger.Get(doc); res.Status != 404 {
				t.Errorf("someone else's document: %d", res.Status)
			}
			docID := regexp.MustCompile(`[0-9]+$`).FindString(doc)
			if res := citizen.Get("/compte/demandes/" + r1 + "/documents/" + docID); res.Status != 404 {
				t.Errorf("a document through another request: %d", res.Status)
			}
		})
	}
}

func historyActions(evs []workflow.Event) string {
	var out []string
	for _, e := range evs {
		if e.Kind == "transition" {
			out = append(out, e.Action)
		}
	}
	return strings.Join(out, ",")
}
