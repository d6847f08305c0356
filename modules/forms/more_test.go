package forms

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
	"parvis.org/parvis/modules/workflow"
)

// TestBuilderOperations drives the builder over HTTP: add, edit, reorder and delete
// questions, set and combine conditions, and edit a published form (a new draft version,
// the published one frozen and still filled).
func TestBuilderOperations(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d)
			ctx := context.Background()
			adm := f.s.ClientAs(f.admin)
			const edit = "/admin/forms/essai/edit"
			latest := func() Version {
				t.Helper()
				_, v, err := f.m.loadEdit(ctx, f.org, "essai")
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			keys := func(step int) string {
				var out []string
				for _, q := range latest().Def.Steps[step].Sections[0].Questions {
					out = append(out, q.Key)
				}
				return strings.Join(out, ",")
			}
			adm.Get(edit)
			ops := []struct {
				name   string
				form   url.Values
				status int
				check  func() bool
			}{
				{"add a question", url.Values{"op": {"add_question"}, "step": {"0"}, "q_type": {"text"}, "q_key": {"tel2"}, "q_label": {"Téléphone"}},
					303, func() bool { return keys(0) == "nom,email,pro,siret,tel2" }},
				{"a new version after the published one", nil, 0, func() bool { v := latest(); return v.Version == 2 && !v.Frozen }},
				{"edit it", url.Values{"op": {"edit_question"}, "key": {"tel2"}, "q_type": {"phone"}, "q_key": {"tel2"}, "q_label": {"Portable"}, "q_required": {"yes"}},
					303, func() bool {
						l, _ := latest().Def.Question("tel2")
						return l.Q.Type == TPhone && l.Q.Label == "Portable" && l.Q.Required
					}},
				{"move it up", url.Values{"op": {"move"}, "key": {"tel2"}, "dir": {"up"}}, 303, func() bool { return keys(0) == "nom,email,pro,tel2,siret" }},
				{"move it down", url.Values{"op": {"move"}, "key": {"tel2"}, "dir": {"down"}}, 303, func() bool { return keys(0) == "nom,email,pro,siret,tel2" }},
				{"a condition", url.Values{"op": {"condition"}, "key": {"tel2"}, "field": {"pro"}, "cond_op": {"eq"}, "value": {"yes"}},
					303, func() bool { l, _ := latest().Def.Question("tel2"); return l.Q.If != nil && l.Q.If.Field == "pro" }},
				{"OR another", url.Values{"op": {"condition"}, "key": {"tel2"}, "field": {"nom"}, "cond_op": {"not_empty"}, "join": {"or"}},
					303, func() bool { l, _ := latest().Def.Question("tel2"); return l.Q.If != nil && len(l.Q.If.Any) == 2 }},
				{"a condition on a later question is refused", url.Values{"op": {"condition"}, "key": {"nom"}, "field": {"tel2"}, "cond_op": {"empty"}},
					400, func() bool { l, _ := latest().Def.Question("nom"); return l.Q.If == nil }},
				{"an unknown question", url.Values{"op": {"delete"}, "key": {"nothing"}}, 400, nil},
				{"an unknown operation", url.Values{"op": {"explode"}}, 400, nil},
				{"delete it", url.Values{"op": {"delete"}, "key": {"tel2"}}, 303, func() bool { return keys(0) == "nom,email,pro,siret" }},
				{"an empty step may be saved", url.Values{"op": {"add_step"}, "step_title": {"Fin"}, "step_key": {"fin"}}, 303, func() bool { return len(latest().Def.Steps) == 4 }},
				{"but not published", url.Values{"op": {"publish"}}, 400, func() bool { return latest().Version == 2 && !latest().Frozen }},
				{"delete the step", url.Values{"op": {"delete"}, "key": {"step:fin"}}, 303, func() bool { return len(latest().Def.Steps) == 3 }},
				{"publish", url.Values{"op": {"publish"}}, 303, func() bool { return latest().Version == 2 && latest().Frozen }},
			}
			for _, op := range ops {
				if op.form != nil {
					res := adm.Post(edit, op.form)
					if res.Status != op.status {
						t.Fatalf("%s: %d, want %d\n%s", op.name, res.Status, op.status, res.Body)
					}
				}
				if op.check != nil && !op.check() {
					t.Fatalf("%s: not applied (%s)", op.name, keys(0))
				}
			}
			// A response filled on version 1 keeps it.
			if f2, _ := getForm(ctx, f.s.DB.Read(), f.org, "essai"); f2.Published != 2 {
				t.Errorf("published version %d, want 2", f2.Published)
			}
		})
	}
}

// TestSaveAndResume: a guest saves a draft and gets a resume link by email; another browser
// opens the link and goes on where the draft stopped; a signed-in citizen finds a draft on
// the form's page. The sweep deletes expired drafts (clock moved on).
func TestSaveAndResume(t *testing.T) {
	f := setup(t, store.SQLite)
	ctx := context.Background()
	c := f.s.Client()
	c.Post("/demarches/essai", nil)
	c.Get("/demarches/essai/etape/vous")
	res := c.Post("/demarches/essai/etape/vous", url.Values{"nom": {"Léa"}, "email": {"lea@example.org"}, "pro": {"no"}, "op": {"save"}})
	if res.Status != 303 || res.Location != "/demarches/essai/sauvegarder" {
		t.Fatalf("save: %d %q", res.Status, res.Location)
	}
	c.Get("/demarches/essai/sauvegarder")
	if res := c.Post("/demarches/essai/sauvegarder", url.Values{"email": {"pas une adresse"}}); res.Status != 400 {
		t.Errorf("bad email: %d", res.Status)
	}
	if res := c.Post("/demarches/essai/sauvegarder", url.Values{"email": {"lea@example.org"}}); res.Status != 200 {
		t.Fatalf("send link: %d", res.Status)
	}
	var text string
	_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT text_body FROM mail_messages WHERE text_body LIKE '%/reprendre/%' ORDER BY id DESC LIMIT 1`).Scan(&text)
	link := regexp.MustCompile(`/demarches/essai/reprendre/[0-9a-f]{32}`).FindString(text)
	if link == "" {
		t.Fatalf("no resume link in %q", text)
	}
	other := f.s.Client()
	if res := other.Get(link); res.Status != 303 {
		t.Fatalf("resume: %d", res.Status)
	}
	if res := other.Get("/demarches/essai"); !strings.Contains(res.Body, "/demarches/essai/etape/lieu") {
		t.Errorf("resumed draft does not continue at the next step:\n%s", res.Body)
	}
	if res := other.Get("/demarches/essai/reprendre/0123456789abcdef0123456789abcdef"); res.Status != 404 {
		t.Errorf("forged link: %d", res.Status)
	}
	// Thirty-one days later the draft is gone.
	f.clock.mu.Lock()
	f.clock.t = f.clock.t.AddDate(0, 0, 31)
	f.clock.mu.Unlock()
	r, err := f.m.Sweep(ctx)
	if err != nil || r.Drafts != 1 {
		t.Fatalf("sweep: %+v %v", r, err)
	}
	if res := other.Get(link); res.Status != 404 {
		t.Errorf("expired link: %d", res.Status)
	}
}

// TestRetentionCatalogueAndCitizenData: the catalogue lists open forms; the citizen's export
// carries their responses and deletion anonymises them; closing starts the retention clock
// and the sweep anonymises after it, recorded in the audit log.
func TestRetentionCatalogueAndCitizenData(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d)
			ctx := context.Background()
			ents, err := f.m.Entries(ctx, f.org)
			if err != nil || len(ents) != 1 || ents[0].Path != "/demarches/essai" {
				t.Fatalf("catalogue: %+v %v", ents, err)
			}
			l, err := f.m.published(ctx, "essai")
			if err != nil {
				t.Fatal(err)
			}
			ans, ps := l.Def.CheckAll(map[string]any{"nom": "Léa", "email": "lea@example.org", "pro": "no",
				"adresse": map[string]any{"street": "1 rue", "postcode": "75011", "town": "Paris"}, "objets": []any{map[string]any{"quoi": "armoire"}}}, f.m.today(), true)
			if len(ps) > 0 {
				t.Fatalf("answers: %+v", ps)
			}
			resp, err := f.m.Submit(ctx, Submission{Form: l.Form, Def: l.Def, Answers: ans, CitizenID: 4242, Email: "lea@example.org"})
			if err != nil {
				t.Fatal(err)
			}
			cd := citizenData{f.m}
			out, err := cd.Export(ctx, 4242)
			if list, ok := out.([]map[string]any); err != nil || !ok || len(list) != 1 || list[0]["reference"] != resp.Ref {
				t.Fatalf("export: %+v %v", out, err)
			}
			if out, err := cd.Export(ctx, 7); err != nil || out != nil {
				t.Errorf("export of someone else: %+v %v", out, err)
			}
			if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error { return cd.Delete(ctx, tx, 4242) }); err != nil {
				t.Fatal(err)
			}
			if out, _ := cd.Export(ctx, 4242); out != nil {
				t.Errorf("still exported after deletion: %+v", out)
			}
			// Retention: one month after closing, anonymised.
			actx := kernel.WithAgent(ctx, f.admin)
			def := l.Def.Clone()
			def.Settings.RetentionMonths, def.Settings.RetentionMode = 1, "anonymise"
			if err := f.s.DB.InTx(actx, func(tx *store.Tx) error { _, err := f.m.SaveForm(actx, tx, f.org, def); return err }); err != nil {
				t.Fatal(err)
			}
			if _, err := f.m.Publish(actx, f.org, "essai"); err != nil {
				t.Fatal(err)
			}
			if err := f.m.Close(actx, f.org, "essai"); err != nil {
				t.Fatal(err)
			}
			if ents, _ := f.m.Entries(ctx, f.org); len(ents) != 0 {
				t.Errorf("closed form still in the catalogue: %+v", ents)
			}
			if r, err := f.m.Sweep(ctx); err != nil || r.Anonymised != 0 {
				t.Fatalf("sweep before the delay: %+v %v", r, err)
			}
			f.clock.mu.Lock()
			f.clock.t = f.clock.t.AddDate(0, 1, 1)
			f.clock.mu.Unlock()
			if r, err := f.m.Sweep(ctx); err != nil || r.Anonymised != 1 {
				t.Fatalf("sweep after the delay: %+v %v", r, err)
			}
			var email string
			var n int
			_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT email FROM forms_responses WHERE ref = ?`, resp.Ref).Scan(&email)
			_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_entries WHERE action = 'forms.retention.anonymise'`).Scan(&n)
			if strings.Contains(email, "lea") || n != 1 {
				t.Errorf("after retention: email %q, %d audit entries", email, n)
			}
		})
	}
}

// TestDemoInstall: the demo creates and publishes both examples, once.
func TestDemoInstall(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	m := moduleOf(t, s)
	ctx := context.Background()
	for range 2 {
		if err := m.InstallExamples(ctx, 0, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := m.Entries(ctx, s.DefaultOrg())
	if err != nil || len(ents) != 2 {
		t.Fatalf("catalogue after the demo: %+v %v", ents, err)
	}
	for _, k := range []string{"/demarches/encombrants", "/demarches/terrasse"} {
		if res := s.Client().Get(k); res.Status != 200 {
			t.Errorf("%s: %d", k, res.Status)
		}
	}
}

// TestOpenAPIDocument validates /api/openapi.json as an OpenAPI 3.1 document with
// kin-openapi and checks the stable operationIds.
func TestOpenAPIDocument(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	res := s.Client().Get("/api/openapi.json")
	if res.Status != 200 {
		t.Fatalf("openapi: %d", res.Status)
	}
	doc, err := openapi3.NewLoader().LoadFromData([]byte(res.Body))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	ids := map[string]bool{}
	for _, p := range doc.Paths.Map() {
		for _, op := range p.Operations() {
			ids[op.OperationID] = true
		}
	}
	for _, id := range []string{"listForms", "getForm", "submitResponse", "listResponses", "getResponse", "runResponseAction"} {
		if !ids[id] {
			t.Errorf("operationId %s missing (have %v)", id, ids)
		}
	}
}

// TestWebhookSubmitted: a receiver that fails the first attempt sees response.submitted again
// with the same idempotency key, and each submission once with a key of its own.
func TestWebhookSubmitted(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{} // idempotency key → deliveries
	calls := 0
	rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Parvis-Event") != "forms.response.submitted" || !workflow.VerifySignature("0123456789abcdef", r.Header.Get("Parvis-Signature"), b) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		calls++
		seen[r.Header.Get("Idempotency-Key")]++
		if calls == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // the first attempt fails: retried
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rx.Close()
	s := servertest.New(t, store.SQLite, servertest.Options{Start: true})
	m := moduleOf(t, s)
	ctx := context.Background()
	org := s.DefaultOrg()
	admin := s.NewOrgAdmin(org, "admin@ville.test")
	actx := kernel.WithAgent(ctx, admin)
	if err := s.DB.InTx(actx, func(tx *store.Tx) error { _, err := m.SaveForm(actx, tx, org, mustDef(t, crashForm)); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Publish(actx, org, "crash"); err != nil {
		t.Fatal(err)
	}
	for _, in := range s.Modules {
		if wm, ok := in.Module.(*workflow.Module); ok {
			if err := wm.SaveEndpoint(ctx, org, workflow.Endpoint{Key: "hook", URL: rx.URL, Secret: "0123456789abcdef", Events: []string{"forms.response.submitted"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	token := s.APIToken(s.NewAgent(org, "app@ville.test", PermSubmit), PermSubmit)
	for _, key := range []string{"a", "b", "a"} { // "a" twice: one response, one event
		if st, _, err := crashSubmit(s.URL, token, key); err != nil || (st != 201 && st != 200) {
			t.Fatalf("submit %s: %d %v", key, st, err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n, keys := calls, len(seen)
		counts := []int{}
		for _, c := range seen {
			counts = append(counts, c)
		}
		mu.Unlock()
		if n >= 3 && keys == 2 {
			// Two events; the one refused first came again with its key.
			if !(counts[0] == 2 && counts[1] == 1 || counts[0] == 1 && counts[1] == 2) {
				t.Errorf("deliveries per key: %v", counts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook: %d calls, %d keys", n, keys)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCorrectionLinkIsRouted: the link the workflow's "correct" task mails (CorrectionURL)
// reaches the forms correction page, which refuses an unknown token with its own message —
// not the kernel's "page not found" for an unrouted address.
func TestCorrectionLinkIsRouted(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	m := moduleOf(t, s)
	link := m.CorrectionURL(workflow.Ref{Type: ResourceType, ID: "ABCD2345"}, "forgedtoken")
	res := s.Client().Get(link)
	if res.Status != 404 || !strings.Contains(res.Body, "lien de correction") {
		t.Fatalf("GET %s: %d, want the correction page's refusal\n%s", link, res.Status, res.Body)
	}
}
