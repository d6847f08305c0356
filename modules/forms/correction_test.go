package forms

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
	"parvis.org/parvis/modules/workflow"
)

const fixForm = `
key: fix
title: Demande à corriger
workflow: fixwf
settings: {email_question: email}
steps:
  - key: s
    title: Vous
    sections:
      - key: s1
        questions:
          - {key: nom, type: text, label: Nom, required: true}
          - {key: email, type: email, label: Courriel, required: true}
          - {key: adresse, type: address, label: Adresse, required: true}
          - {key: nombre, type: number, label: Nombre d'objets, required: true, min: 1, max: 20}
          - {key: lieu, type: map, label: Emplacement}
`

// fixWorkflow asks for corrections of two questions (and the map point); the request then
// returns to "review". Routing by postcode, so the refreshed fields show.
const fixWorkflow = `{"key":"fixwf","title":"Correction","states":[
 {"key":"received","title":"Reçue","public_label":"Demande reçue","initial":true},
 {"key":"correction","title":"Correction","public_label":"En attente de vos corrections"},
 {"key":"review","title":"Instruction","public_label":"En cours d'instruction"},
 {"key":"done","title":"Traitée","public_label":"Demande traitée","final":true}],
 "actions":[
  {"key":"ask","title":"Demander une correction","from":["received","review"],"to":"correction",
   "tasks":[{"type":"correct","config":{"fields":["nombre","adresse","lieu"],"return_state":"review","template":"fix"}}]},
  {"key":"done","title":"Traiter","from":["review"],"to":"done"}],
 "templates":{"fix":{"subject":"Corrigez votre demande {{.Reference}}","body":"Bonjour, merci de corriger votre demande : {{.Link}}"}},
 "routing":{"rules":[{"when":{"field":"adresse_postcode","op":"prefix","value":"7501"},"unit":UNIT_A}],"default_unit":UNIT_B}}`

// TestCorrectionLoop runs the workflow's correction request end to end through the forms
// pages: an agent runs the action whose task asks for chosen questions; the mail holds the
// link; the citizen opens it and sees only those questions; a bad value and a field of
// another question are refused with a clear message and change nothing; a good one updates
// the answers, the request returns to the chosen state, the history says so, and the link
// cannot be used again.
func TestCorrectionLoop(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d)
			ctx := context.Background()
			actx := kernel.WithAgent(ctx, f.admin)
			wf := strings.NewReplacer("UNIT_A", fmt.Sprint(f.unitA), "UNIT_B", fmt.Sprint(f.unitB)).Replace(fixWorkflow)
			b, _ := json.Marshal(Bundle{Form: mustDef(t, fixForm), Workflow: json.RawMessage(wf)})
			if err := f.s.DB.InTx(actx, func(tx *store.Tx) error { _, err := f.m.ImportForm(actx, tx, f.org, b, "json"); return err }); err != nil {
				t.Fatalf("import: %v", err)
			}
			if _, err := f.m.Publish(actx, f.org, "fix"); err != nil {
				t.Fatal(err)
			}
			api := func(tok, path, body string) (int, string) {
				t.Helper()
				return apiCall(t, f.s.URL, tok, "POST", path, body)
			}
			sub := f.s.APIToken(f.s.NewAgent(f.org, "guichet@ville.test", PermSubmit), PermSubmit)
			st, body := api(sub, "/api/forms/fix/responses", `{"answers":{"nom":"Léa Martin","email":"lea@example.org",
"adresse":{"street":"1 rue de la Roquette","postcode":"75011","town":"Paris"},"nombre":30,"lieu":{"address":"devant le 1"}}}`)
			if st != 422 && st != 400 {
				t.Fatalf("nombre 30 accepted at submission: %d %s", st, body)
			}
			st, body = api(sub, "/api/forms/fix/responses", `{"answers":{"nom":"Léa Martin","email":"lea@example.org",
"adresse":{"street":"1 rue de la Roquette","postcode":"75011","town":"Paris"},"nombre":12,"lieu":{"address":"devant le 1"}}}`)
			ref := regexp.MustCompile(`"reference":"([A-Z0-9]+)"`).FindStringSubmatch(body)
			if st != 201 || ref == nil {
				t.Fatalf("submit: %d %s", st, body)
			}
			wref := workflow.Ref{Type: ResourceType, ID: ref[1]}
			stored := func() Answers {
				t.Helper()
				r, _, err := f.m.loadResponse(ctx, f.s.DB.Read(), ref[1])
				if err != nil {
					t.Fatal(err)
				}
				return r.Answers
			}

			// The agent of the routed unit asks for corrections.
			tokA := f.s.APIToken(f.agentA, PermResponses, workflow.PermAct)
			if st, body := api(tokA, "/api/responses/"+ref[1]+"/actions/ask", `{"comment":"Le nombre d'objets semble trop élevé."}`); st != 200 || !strings.Contains(body, `"state":"correction"`) {
				t.Fatalf("ask: %d %s", st, body)
			}
			var text string
			if err := f.s.DB.Read().QueryRowContext(ctx, `SELECT text_body FROM mail_messages WHERE recipients LIKE '%lea@example.org%' AND subject LIKE ?`,
				"%"+ref[1]+"%").Scan(&text); err != nil {
				t.Fatalf("correction mail: %v", err)
			}
			m := regexp.MustCompile(`/compte/demandes/` + ref[1] + `/corriger/[A-Za-z0-9_-]+`).FindString(text)
			if m == "" {
				t.Fatalf("no correction link in the mail:\n%s", text)
			}
			link := m

			// The citizen (not signed in: the link is the capability) sees only those questions.
			c := f.s.Client()
			page := c.Get(link)
			if page.Status != 200 {
				t.Fatalf("correction page: %d\n%s", page.Status, page.Body)
			}
			for _, want := range []string{`name="nombre"`, `value="12"`, `name="adresse.street"`, `value="1 rue de la Roquette"`, `name="adresse.postcode"`,
				`name="lieu.address"`, `name="lieu.lat"`, "Le nombre d&#39;objets semble trop élevé."} {
				if !strings.Contains(page.Body, want) {
					t.Errorf("correction page lacks %s", want)
				}
			}
			for _, not := range []string{`name="nom"`, `name="email"`} {
				if strings.Contains(page.Body, not) {
					t.Errorf("correction page lets the citizen edit %s", not)
				}
			}
			good := url.Values{"nombre": {"5"}, "adresse.street": {"2 rue Lecourbe"}, "adresse.postcode": {"75015"}, "adresse.town": {"Paris"},
				"lieu.address": {"devant le 2"}, "lieu.lat": {"48.8443"}, "lieu.lng": {"2.3065"}}
			with := func(k, v string) url.Values {
				out := url.Values{}
				for a, b := range good {
					out[a] = b
				}
				out.Set(k, v)
				return out
			}
			// A bad value: refused with the question's message, nothing changes.
			res := c.Post(link, with("nombre", "99"))
			if res.Status != 400 || !strings.Contains(res.Body, "Saisissez un nombre inférieur ou égal à 20") || !strings.Contains(res.Body, `value="99"`) {
				t.Fatalf("bad value: %d\n%s", res.Status, res.Body)
			}
			res = c.Post(link, with("adresse.postcode", "7501"))
			if res.Status != 400 || !strings.Contains(res.Body, "pv-error-summary") {
				t.Fatalf("bad postcode: %d\n%s", res.Status, res.Body)
			}
			// A field of a question that was not asked for: refused.
			if res := c.Post(link, with("nom", "Quelqu'un d'autre")); res.Status != 400 || !strings.Contains(res.Body, "champs inconnus") {
				t.Fatalf("other question: %d\n%s", res.Status, res.Body)
			}
			if a := stored(); a["nombre"] != 12.0 || a["nom"] != "Léa Martin" {
				t.Fatalf("a refused correction changed the answers: %v", a)
			}
			if s, _ := f.m.wf.State(ctx, wref); s.State != "correction" {
				t.Fatalf("a refused correction moved the request: %s", s.State)
			}
			// The good value.
			res = c.Post(link, good)
			if res.Status != 200 || !strings.Contains(res.Body, "vos corrections ont été envoyées") {
				t.Fatalf("correction: %d\n%s", res.Status, res.Body)
			}
			a := stored()
			addr, _ := a["adresse"].(map[string]any)
			pt, _ := a["lieu"].(map[string]any)
			if a["nombre"] != 5.0 || addr["postcode"] != "75015" || addr["street"] != "2 rue Lecourbe" || a["nom"] != "Léa Martin" || pt["lat"] != 48.8443 {
				t.Fatalf("answers after the correction: %#v", a)
			}
			s, err := f.m.wf.State(ctx, wref)
			if err != nil || s.State != "review" {
				t.Fatalf("state after the correction: %+v %v", s, err)
			}
			if s.Fields["adresse_postcode"] != "75015" || s.Fields["adresse_street"] != "2 rue Lecourbe" || fmt.Sprint(s.Fields["nombre"]) != "5" ||
				fmt.Sprint(s.Fields["lieu_lat"]) != "48.8443" || s.Fields["lieu_address"] != "devant le 2" {
				t.Errorf("workflow fields not refreshed: %v", s.Fields)
			}
			// Flat, as on submission: no nested copy of the corrected answers.
			for _, k := range []string{"adresse", "lieu"} {
				if v, ok := s.Fields[k]; ok {
					t.Errorf("workflow field %s holds the nested answer %#v", k, v)
				}
			}
			var state, label string
			_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT state, public_label FROM forms_responses WHERE ref = ?`, ref[1]).Scan(&state, &label)
			if state != "review" || label != "En cours d'instruction" {
				t.Errorf("response row: %q %q", state, label)
			}
			// Full-text search finds the new street.
			if res := f.s.ClientAs(f.admin).Get("/admin/forms/fix/responses?q=lecourbe"); !strings.Contains(res.Body, ref[1]) {
				t.Errorf("search does not find the corrected answer")
			}
			// History: the agent's page and the citizen's public history show the correction.
			if res := f.s.ClientAs(f.agentA).Get("/admin/reponses/" + ref[1]); res.Status != 200 || !strings.Contains(res.Body, "Corrections envoyées par l&#39;usager") ||
				!strings.Contains(res.Body, "75015") {
				t.Errorf("agent page: %d\n%s", res.Status, res.Body)
			}
			evs, err := f.m.wf.History(ctx, wref, true)
			found := false
			for _, e := range evs {
				found = found || e.Kind == "correction"
			}
			if err != nil || !found {
				t.Errorf("public history: %+v %v", evs, err)
			}
			// The link served once.
			if res := c.Get(link); res.Status != 404 || !strings.Contains(res.Body, "lien de correction") {
				t.Errorf("link reused (GET): %d", res.Status)
			}
			if res := c.Post(link, with("nombre", "7")); res.Status != 404 {
				t.Errorf("link reused (POST): %d", res.Status)
			}
			if a := stored(); a["nombre"] != 5.0 {
				t.Errorf("a reused link changed the answers: %v", a["nombre"])
			}
		})
	}
}
