package forms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	_ "parvis.org/parvis/kernel/builtin"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
	"parvis.org/parvis/modules/workflow"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// flowWorkflow routes postcodes 7501x to UNIT_A, others to UNIT_B.
const flowWorkflow = `{"key":"essai","title":"Essai","states":[
 {"key":"received","title":"Reçue","public_label":"Demande reçue","initial":true},
 {"key":"done","title":"Traitée","public_label":"Demande traitée","final":true}],
 "actions":[{"key":"done","title":"Traiter","from":["received"],"to":"done","tasks":[{"type":"mail","config":{"template":"done"}}]}],
 "templates":{"done":{"subject":"Demande traitée","body":"Votre demande {{.Reference}} est traitée."}},
 "routing":{"rules":[{"when":{"field":"adresse_postcode","op":"prefix","value":"7501"},"unit":UNIT_A}],"default_unit":UNIT_B}}`

type fixture struct {
	s            *servertest.Server
	m            *Module
	clock        *testClock
	org          int64
	unitA, unitB int64
	admin        *kernel.Agent
	agentA       *kernel.Agent
	agentB       *kernel.Agent
}

func setup(t testing.TB, d store.Dialect) *fixture {
	t.Helper()
	clk := &testClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	s := servertest.New(t, d, servertest.Options{Clock: clk})
	f := &fixture{s: s, clock: clk}
	for _, in := range s.Modules {
		if m, ok := in.Module.(*Module); ok {
			f.m = m
		}
	}
	if f.m == nil {
		t.Fatal("forms module not built")
	}
	f.org = s.DefaultOrg()
	f.unitA = s.NewUnit(f.org, 0, "Mairie du 11e")
	f.unitB = s.NewUnit(f.org, 0, "Mairie du 15e")
	unitAgent := func(email string, unit int64) *kernel.Agent {
		return s.NewAgentWith(auth.NewAgent{OrgID: f.org, Email: email, Name: email, Password: servertest.Password, UnitIDs: []int64{unit}, Grants: []auth.Grant{
			{Perm: workflow.PermAct, Scope: auth.ScopeUnit, UnitID: unit}, {Perm: workflow.PermInbox, Scope: auth.ScopeUnit, UnitID: unit},
			{Perm: PermResponses, Scope: auth.ScopeUnit, UnitID: unit}}})
	}
	f.agentA = unitAgent("a@ville.test", f.unitA)
	f.agentB = unitAgent("b@ville.test", f.unitB)
	f.admin = s.NewAgent(f.org, "admin@ville.test", PermManage, PermResponses, workflow.PermManage)
	wf := strings.NewReplacer("UNIT_A", fmt.Sprint(f.unitA), "UNIT_B", fmt.Sprint(f.unitB)).Replace(flowWorkflow)
	def := mustDef(t, threeSteps)
	def.Workflow = "essai"
	b, _ := json.Marshal(Bundle{Form: def, Workflow: json.RawMessage(wf)})
	ctx := kernel.WithAgent(context.Background(), f.admin)
	if err := s.DB.InTx(ctx, func(tx *store.Tx) error { _, err := f.m.ImportForm(ctx, tx, f.org, b, "json"); return err }); err != nil {
		t.Fatalf("import: %v", err)
	}
	if _, err := f.m.Publish(ctx, f.org, "essai"); err != nil {
		t.Fatalf("publish: %v", err)
	}
	return f
}

// multipartPost posts fields and files (name → filename, content) with the client's CSRF token.
func multipartPost(t *testing.T, c *servertest.Client, path string, fields url.Values, files map[string][2]string) *servertest.Response {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	page := c.Get(path)
	token := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.Body)
	if token == nil {
		t.Fatalf("no csrf on %s: %d", path, page.Status)
	}
	_ = w.WriteField("csrf", token[1])
	for k, vs := range fields {
		for _, v := range vs {
			_ = w.WriteField(k, v)
		}
	}
	for k, f := range files {
		fw, _ := w.CreateFormFile(k, f[0])
		_, _ = io.WriteString(fw, f[1])
	}
	w.Close()
	return c.Do("POST", path, &body, w.FormDataContentType())
}

const pdfBytes = "%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"

// fill runs the citizen's three pages and returns the reference.
func fill(t *testing.T, f *fixture, c *servertest.Client, postcode string) string {
	t.Helper()
	steps := []struct {
		path   string
		form   url.Values
		files  map[string][2]string
		status int
		loc    string
	}{
		{"/demarches/essai", nil, nil, 303, "/demarches/essai/etape/vous"},
		{"/demarches/essai/etape/vous", url.Values{"nom": {"Léa Martin"}, "email": {"lea@example.org"}, "pro": {"no"}}, nil, 303, "/demarches/essai/etape/lieu"},
		{"/demarches/essai/etape/lieu", url.Values{"adresse.street": {"1 rue de la Roquette"}, "adresse.postcode": {postcode}, "adresse.town": {"Paris"},
			"objets.count": {"1"}, "objets[0].quoi": {"armoire"}}, map[string][2]string{"plan": {"plan.pdf", pdfBytes}}, 303, "/demarches/essai/recapitulatif"},
	}
	for i, s := range steps {
		var res *servertest.Response
		if s.files != nil {
			res = multipartPost(t, c, s.path, s.form, s.files)
		} else {
			c.Get(s.path)
			res = c.Post(s.path, s.form)
		}
		if res.Status != s.status || res.Location != s.loc {
			t.Fatalf("step %d %s: %d → %q, want %d → %q\n%s", i, s.path, res.Status, res.Location, s.status, s.loc, res.Body)
		}
	}
	rev := c.Get("/demarches/essai/recapitulatif")
	for _, want := range []string{"Léa Martin", "1 rue de la Roquette, " + postcode + " Paris", "plan.pdf", "armoire", "Modifier", "/demarches/essai/etape/lieu?retour=recap"} {
		if !strings.Contains(rev.Body, want) {
			t.Fatalf("review lacks %q:\n%s", want, rev.Body)
		}
	}
	res := c.Post("/demarches/essai/recapitulatif", nil)
	m := regexp.MustCompile(`^/demarches/essai/envoye/([2-9A-Z]{8})$`).FindStringSubmatch(res.Location)
	if res.Status != 303 || m == nil {
		t.Fatalf("submit: %d %q\n%s", res.Status, res.Location, res.Body)
	}
	return m[1]
}

// TestScenario: a citizen fills three steps (a branch skips one), reviews and submits; the
// receipt job queues the receipt mail with its PDF; the response is routed to unit A; an agent of unit A
// runs the action through the API, an agent of unit B cannot see it; the citizen sees the new
// status and the agent's message.
func TestScenario(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d)
			ctx := context.Background()
			c := f.s.Client()
			ref := fill(t, f, c, "75011")
			conf := c.Get("/demarches/essai/envoye/" + ref)
			if conf.Status != 200 || !strings.Contains(conf.Body, ref) || !strings.Contains(conf.Body, "Demande reçue") {
				t.Fatalf("confirmation: %d\n%s", conf.Status, conf.Body)
			}
			// The draft is gone: the review page sends back to the start.
			if res := c.Post("/demarches/essai/recapitulatif", nil); res.Status != 303 || res.Location != "/demarches/essai" {
				t.Errorf("second submit: %d %q", res.Status, res.Location)
			}
			var n, unit int
			var state string
			_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*), MAX(unit_id), MAX(state) FROM forms_responses`).Scan(&n, &unit, &state)
			if n != 1 || int64(unit) != f.unitA || state != "received" {
				t.Fatalf("stored: %d responses, unit %d (want %d), state %q", n, unit, f.unitA, state)
			}
			workReceipts(t, f.s, f.m)
			var subject string
			if err := f.s.DB.Read().QueryRowContext(ctx, `SELECT m.subject FROM mail_messages m JOIN mail_attachments a ON a.mail_id = m.id
 WHERE a.name = ? AND m.recipients LIKE '%lea@example.org%'`, "recu-"+ref+".pdf").Scan(&subject); err != nil || !strings.Contains(subject, ref) {
				t.Fatalf("receipt mail: %q %v", subject, err)
			}
			if st, err := f.m.wf.State(ctx, workflow.Ref{Type: ResourceType, ID: ref}); err != nil || st.UnitID != f.unitA {
				t.Fatalf("workflow: %+v %v", st, err)
			}
			// Agents: B sees nothing, A acts through the API with a token.
			tokB := f.s.APIToken(f.agentB, PermResponses, workflow.PermAct)
			tokA := f.s.APIToken(f.agentA, PermResponses, workflow.PermAct)
			api := func(tok, method, path, body string) (int, string) {
				return apiCall(t, f.s.URL, tok, method, path, body)
			}
			if st, body := api(tokB, "GET", "/api/responses/"+ref, ""); st != 404 {
				t.Errorf("agent B reads A's response: %d %s", st, body)
			}
			if st, body := api(tokB, "POST", "/api/responses/"+ref+"/actions/done", ""); st != 404 {
				t.Errorf("agent B acts: %d %s", st, body)
			}
			if st, body := api(tokA, "GET", "/api/forms/essai/responses", ""); st != 200 || !strings.Contains(body, ref) {
				t.Errorf("agent A lists: %d %s", st, body)
			}
			if st, body := api(tokB, "GET", "/api/forms/essai/responses", ""); st != 200 || strings.Contains(body, ref) {
				t.Errorf("agent B lists: %d %s", st, body)
			}
			if st, body := api(tokA, "POST", "/api/responses/"+ref+"/actions/done", `{"comment":"ok"}`); st != 200 || !strings.Contains(body, `"state":"done"`) {
				t.Fatalf("agent A acts: %d %s", st, body)
			}
			a := f.s.ClientAs(f.agentA)
			if res := a.Get("/admin/reponses/" + ref); res.Status != 200 || !strings.Contains(res.Body, "armoire") {
				t.Fatalf("agent page: %d\n%s", res.Status, res.Body)
			}
			if res := a.Post("/admin/reponses/"+ref, url.Values{"message": {"Nous passerons mardi."}}); res.Status != 303 {
				t.Fatalf("agent message: %d\n%s", res.Status, res.Body)
			}
			if res := f.s.ClientAs(f.agentB).Get("/admin/reponses/" + ref); res.Status != 404 {
				t.Errorf("agent B page: %d", res.Status)
			}
			// The citizen proves the email (guest link) and sees the status and the message.
			if err := f.m.guests.Start(ctx, "lea@example.org", "/compte/demandes", "fr"); err != nil {
				t.Fatal(err)
			}
			var text string
			_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT text_body FROM mail_messages WHERE text_body LIKE '%/compte/invite?t=%' ORDER BY id DESC LIMIT 1`).Scan(&text)
			tok := regexp.MustCompile(`/compte/invite\?t=([A-Za-z0-9_-]+)`).FindStringSubmatch(text)
			if tok == nil {
				t.Fatalf("guest link not found in %q", text)
			}
			c.Get("/compte/invite?t=" + tok[1])
			c.Post("/compte/invite", url.Values{"t": {tok[1]}})
			list := c.Get("/compte/demandes")
			if list.Status != 200 || !strings.Contains(list.Body, ref) || !strings.Contains(list.Body, "Demande traitée") {
				t.Fatalf("my requests: %d\n%s", list.Status, list.Body)
			}
			page := c.Get("/compte/demandes/" + ref)
			if page.Status != 200 || !strings.Contains(page.Body, "Nous passerons mardi.") || !strings.Contains(page.Body, "Demande traitée") {
				t.Fatalf("my request: %d\n%s", page.Status, page.Body)
			}
			if res := c.Post("/compte/demandes/"+ref, url.Values{"message": {"Merci !"}}); res.Status != 303 {
				t.Errorf("citizen message: %d", res.Status)
			}
			if res := c.Get("/compte/demandes/" + ref + "/recu.pdf"); res.Status != 200 || !strings.HasPrefix(res.Body, "%PDF-") {
				t.Errorf("receipt: %d", res.Status)
			}
			// Exports: CSV and XLSX carry the row; the ZIP carries the file.
			adm := f.s.ClientAs(f.admin)
			if res := adm.Get("/admin/forms/essai/responses.csv"); res.Status != 200 || !strings.Contains(res.Body, ref) || !strings.Contains(res.Body, "Léa Martin") {
				t.Errorf("csv: %d %s", res.Status, res.Body)
			}
			if res := adm.Get("/admin/forms/essai/responses.xlsx"); res.Status != 200 || !strings.HasPrefix(res.Body, "PK") {
				t.Errorf("xlsx: %d", res.Status)
			} else if x, err := excelize.OpenReader(strings.NewReader(res.Body)); err != nil {
				t.Errorf("xlsx unreadable: %v", err)
			} else {
				rows, _ := x.GetRows(x.GetSheetName(0))
				if len(rows) != 2 || rows[1][0] != ref || !slices.Contains(rows[1], "Léa Martin") || rows[0][0] != "Référence" {
					t.Errorf("xlsx rows: %q", rows)
				}
				x.Close()
			}
			if res := adm.Get("/admin/forms/essai/files.zip"); res.Status != 200 || !strings.Contains(res.Body, ref+"/1-plan.pdf") {
				t.Errorf("zip: %d", res.Status)
			}
			if res := adm.Get("/admin/forms/essai/responses?q=armoire"); res.Status != 200 || !strings.Contains(res.Body, ref) {
				t.Errorf("search: %d", res.Status)
			}
			if res := adm.Get("/admin/forms/essai/responses?q=commode"); res.Status != 200 || strings.Contains(res.Body, ref) {
				t.Errorf("search for something else: %d", res.Status)
			}
			if res := adm.Get("/admin/forms/essai/responses?state=received"); strings.Contains(res.Body, ">"+ref+"<") {
				t.Errorf("state filter")
			}
		})
	}
}

// TestResponsesListOrderAndUnits: the list's orders (newest, oldest, last changed first —
// paged by the same cursor) and its unit filter, a choice among the units the agent may see
// rather than a number to type; an unknown order is a 400.
func TestResponsesListOrderAndUnits(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d)
			ctx := context.Background()
			tok := f.s.APIToken(f.s.NewAgent(f.org, "app@ville.test", PermSubmit), PermSubmit)
			var refs []string
			for _, pc := range []string{"75011 Paris", "69001 Lyon", "75011 Paris"} { // Paris → unit A, elsewhere → unit B
				f.clock.mu.Lock()
				f.clock.t = f.clock.t.Add(time.Minute)
				f.clock.mu.Unlock()
				code, town, _ := strings.Cut(pc, " ")
				st, body := apiPost(t, f.s.URL, tok, "/api/forms/essai/responses", strings.NewReplacer(`"75011"`, `"`+code+`"`, `"Paris"`, `"`+town+`"`).Replace(essaiAnswers))
				if st != 201 {
					t.Fatalf("submit: %d %s", st, body)
				}
				m := regexp.MustCompile(`"(?:ref|reference)":"([A-Z0-9-]+)"`).FindStringSubmatch(body)
				if m == nil {
					t.Fatalf("no reference in %s", body)
				}
				refs = append(refs, m[1])
			}
			// The first request changed last.
			if _, err := f.s.DB.Write().ExecContext(ctx, `UPDATE forms_responses SET updated_at = ? WHERE ref = ?`, f.clock.Now().Add(time.Hour), refs[0]); err != nil {
				t.Fatal(err)
			}
			adm := f.s.ClientAs(f.admin)
			order := func(q string) []string {
				t.Helper()
				res := adm.Get("/admin/forms/essai/responses" + q)
				if res.Status != 200 {
					t.Fatalf("list %s: %d", q, res.Status)
				}
				var got []string
				for _, m := range regexp.MustCompile(`<a href="/admin/reponses/([A-Z0-9-]+)">`).FindAllStringSubmatch(res.Body, -1) {
					got = append(got, m[1])
				}
				return got
			}
			for _, tc := range []struct {
				q    string
				want []string
			}{
				{"", []string{refs[2], refs[1], refs[0]}},
				{"?sort=old", []string{refs[0], refs[1], refs[2]}},
				{"?sort=changed", []string{refs[0], refs[2], refs[1]}},
				{fmt.Sprintf("?unit=%d", f.unitB), []string{refs[1]}},
				{fmt.Sprintf("?unit=%d&sort=changed", f.unitA), []string{refs[0], refs[2]}},
			} {
				if got := order(tc.q); !slices.Equal(got, tc.want) {
					t.Errorf("list%s: %v, want %v", tc.q, got, tc.want)
				}
			}
			if res := adm.Get("/admin/forms/essai/responses?sort=random"); res.Status != 400 {
				t.Errorf("unknown order: %d", res.Status)
			}
			// The unit filter names the units; an agent of unit A is offered only A.
			if res := adm.Get("/admin/forms/essai/responses"); !strings.Contains(res.Body, `name="unit"`) || !strings.Contains(res.Body, ">Mairie du 15e</option>") {
				t.Error("the unit filter does not offer the units by name")
			}
			res := f.s.ClientAs(f.agentA).Get("/admin/forms/essai/responses")
			if !strings.Contains(res.Body, ">Mairie du 11e</option>") || strings.Contains(res.Body, ">Mairie du 15e</option>") {
				t.Error("unit A's agent is offered another unit, or not theirs")
			}
		})
	}
}
