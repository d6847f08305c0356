package forms

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
	"parvis.org/parvis/modules/workflow"
)

// apiPost posts a JSON body with a bearer token and returns the status and body.
func apiPost(t *testing.T, base, tok, path, body string) (int, string) {
	t.Helper()
	return apiCall(t, base, tok, "POST", path, body)
}

// apiCall sends a JSON request with a bearer token and returns the status and body.
func apiCall(t testing.TB, base, tok, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

const essaiAnswers = `{"answers":{"nom":"Léa Martin","email":"lea@example.org","pro":"no","adresse":{"street":"1 rue X","postcode":"75011","town":"Paris"},"objets":[{"quoi":"armoire"}]}}`

// TestShareAcrossInstances: a form exported with its workflow (YAML, then JSON) carries no
// response, and imports into another town's instance, where it is published and filled; an
// import with errors in the form and in the workflow names each by its path and stores
// nothing of either.
func TestShareAcrossInstances(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d)
			ctx := context.Background()
			tok := f.s.APIToken(f.s.NewAgent(f.org, "app@ville.test", PermSubmit), PermSubmit)
			if st, body := apiPost(t, f.s.URL, tok, "/api/forms/essai/responses", essaiAnswers); st != 201 {
				t.Fatalf("submit: %d %s", st, body)
			}
			adm := f.s.ClientAs(f.admin)
			exported := map[string]string{}
			for _, format := range []string{"yaml", "json"} {
				res := adm.Get("/admin/forms/essai/export?format=" + format)
				if res.Status != 200 || !strings.Contains(res.Body, "Demande d'essai") || !strings.Contains(res.Body, "adresse_postcode") {
					t.Fatalf("export %s: %d\n%s", format, res.Status, res.Body)
				}
				for _, personal := range []string{"Léa", "lea@example.org", "armoire"} {
					if strings.Contains(res.Body, personal) {
						t.Errorf("export %s carries %q", format, personal)
					}
				}
				exported[format] = res.Body
			}

			// Another town: a fresh instance.
			s2 := servertest.New(t, d, servertest.Options{})
			org2 := s2.DefaultOrg()
			admin2 := s2.NewAgent(org2, "admin@autre-ville.test", PermManage, PermResponses, workflow.PermManage)
			c2 := s2.ClientAs(admin2)
			c2.Get("/admin/forms")
			if res := c2.Post("/admin/forms", url.Values{"op": {"import"}, "format": {"yaml"}, "doc": {exported["yaml"]}}); res.Status != 303 || res.Location != "/admin/forms/essai/edit" {
				t.Fatalf("import in the other instance: %d %q\n%s", res.Status, res.Location, res.Body)
			}
			m2 := moduleOf(t, s2)
			if _, err := m2.Publish(kernel.WithAgent(ctx, admin2), org2, "essai"); err != nil {
				t.Fatalf("publish the imported form: %v", err)
			}
			tok2 := s2.APIToken(s2.NewAgent(org2, "app@autre-ville.test", PermSubmit), PermSubmit)
			if st, body := apiPost(t, s2.URL, tok2, "/api/forms/essai/responses", essaiAnswers); st != 201 || !strings.Contains(body, `"state":"received"`) {
				t.Fatalf("submit in the other instance: %d %s", st, body)
			}
			b1, _ := f.m.ExportForm(ctx, f.org, "essai", "json")
			b2, _ := m2.ExportForm(ctx, org2, "essai", "json")
			if string(b1) != string(b2) {
				t.Errorf("the imported form and workflow differ from the exported ones:\n%s\n%s", b1, b2)
			}
			if string(b1) != exported["json"] {
				t.Errorf("the JSON export page differs from ExportForm")
			}

			// Errors on both sides: each named, nothing stored.
			var bundle map[string]any
			_ = json.Unmarshal([]byte(exported["json"]), &bundle)
			form := bundle["form"].(map[string]any)
			form["key"] = "autre"
			form["steps"].([]any)[0].(map[string]any)["key"] = "Bad Key"
			wf := bundle["workflow"].(map[string]any)
			wf["key"] = "autre-circuit"
			wf["actions"].([]any)[0].(map[string]any)["to"] = "nowhere"
			bad, _ := json.Marshal(bundle)
			res := c2.Post("/admin/forms", url.Values{"op": {"import"}, "format": {"json"}, "doc": {string(bad)}})
			if res.Status != 400 || !strings.Contains(res.Body, "form.steps[0].key") || !strings.Contains(res.Body, "workflow.actions[0].to") {
				t.Fatalf("bad import: %d\n%s", res.Status, res.Body)
			}
			// A workflow the form does not run in.
			wf["actions"].([]any)[0].(map[string]any)["to"] = "done"
			form["steps"].([]any)[0].(map[string]any)["key"] = "vous"
			mismatch, _ := json.Marshal(bundle)
			res = c2.Post("/admin/forms", url.Values{"op": {"import"}, "format": {"json"}, "doc": {string(mismatch)}})
			if res.Status != 400 || !strings.Contains(res.Body, "form.workflow") || !strings.Contains(res.Body, "autre-circuit") {
				t.Fatalf("mismatched workflow: %d\n%s", res.Status, res.Body)
			}
			var forms, wfs int
			_ = s2.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM forms_forms WHERE key = 'autre'`).Scan(&forms)
			_ = s2.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM workflow_defs WHERE key = 'autre-circuit'`).Scan(&wfs)
			if forms != 0 || wfs != 0 {
				t.Errorf("refused imports stored %d forms and %d workflows", forms, wfs)
			}
		})
	}
}

const limitForm = `
key: limite
title: Inscription
settings: {email_question: email, max_responses: 2, one_per_citizen: true}
steps:
  - key: s
    title: Vous
    sections:
      - key: s1
        questions:
          - {key: nom, type: text, label: Nom, required: true}
          - {key: email, type: email, label: Courriel, required: true}
`

// TestLimits: one response per citizen, a maximum number of responses, opening and closing
// dates; each refusal is a 409 with its message, and nothing is stored.
func TestLimits(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d)
			ctx := context.Background()
			actx := kernel.WithAgent(ctx, f.admin)
			save := func(def *Definition) {
				t.Helper()
				if err := f.s.DB.InTx(actx, func(tx *store.Tx) error { _, err := f.m.SaveForm(actx, tx, f.org, def); return err }); err != nil {
					t.Fatal(err)
				}
				if _, err := f.m.Publish(actx, f.org, def.Key); err != nil {
					t.Fatal(err)
				}
			}
			save(mustDef(t, limitForm))
			tok := f.s.APIToken(f.s.NewAgent(f.org, "app@ville.test", PermSubmit), PermSubmit)
			send := func(key, email string) (int, string) {
				return apiPost(t, f.s.URL, tok, "/api/forms/"+key+"/responses", `{"answers":{"nom":"X","email":"`+email+`"}}`)
			}
			count := func(key string) int {
				var n int
				_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM forms_responses r JOIN forms_forms f ON f.id = r.form_id WHERE f.key = ?`, key).Scan(&n)
				return n
			}
			cases := []struct {
				email  string
				status int
				want   string
			}{
				{"a@example.org", 201, `"state":"received"`},
				{"A@example.org", 409, "déjà envoyé une demande"}, // the same person, whatever the case
				{"b@example.org", 201, `"state":"received"`},
				{"c@example.org", 409, "nombre maximal"},
			}
			for _, c := range cases {
				if st, body := send("limite", c.email); st != c.status || !strings.Contains(body, c.want) {
					t.Errorf("%s: %d %s, want %d %q", c.email, st, body, c.status, c.want)
				}
			}
			if n := count("limite"); n != 2 {
				t.Errorf("responses stored: %d, want 2", n)
			}
			// Not open yet, then closed by its date: refused on the page and through the API.
			later := mustDef(t, strings.Replace(strings.Replace(limitForm, "key: limite", "key: plustard", 1), "max_responses: 2, one_per_citizen: true", "max_responses: 0", 1))
			opens := f.clock.Now().Add(24 * time.Hour)
			later.Settings.OpensAt = &opens
			save(later)
			gone := mustDef(t, strings.Replace(strings.Replace(limitForm, "key: limite", "key: passe", 1), "max_responses: 2, one_per_citizen: true", "max_responses: 0", 1))
			closes := f.clock.Now().Add(-time.Hour)
			gone.Settings.ClosesAt = &closes
			save(gone)
			for key, want := range map[string]string{"plustard": "pas encore ouverte", "passe": "close"} {
				if st, body := send(key, "d@example.org"); st != 409 || !strings.Contains(body, want) {
					t.Errorf("%s through the API: %d %s", key, st, body)
				}
				if res := f.s.Client().Get("/demarches/" + key); res.Status != 409 || !strings.Contains(res.Body, want) {
					t.Errorf("%s page: %d", key, res.Status)
				}
				c := f.s.Client()
				c.Get("/demarches/essai") // an open form's page, for the CSRF token
				if res := c.Post("/demarches/"+key, nil); res.Status != 409 {
					t.Errorf("%s: a draft was started: %d", key, res.Status)
				}
				if n := count(key); n != 0 {
					t.Errorf("%s: %d responses stored", key, n)
				}
			}
			// The opening day comes.
			f.clock.mu.Lock()
			f.clock.t = f.clock.t.Add(25 * time.Hour)
			f.clock.mu.Unlock()
			tok = f.s.APIToken(f.s.NewAgent(f.org, "app2@ville.test", PermSubmit), PermSubmit)
			if st, body := send("plustard", "d@example.org"); st != 201 {
				t.Errorf("once open: %d %s", st, body)
			}
		})
	}
}

// TestVersionKept: a response keeps the version it was filled in, and a draft begun on a
// version is finished on it, after a new version is published.
func TestVersionKept(t *testing.T) {
	f := setup(t, store.SQLite)
	ctx := context.Background()
	actx := kernel.WithAgent(ctx, f.admin)
	tok := f.s.APIToken(f.s.NewAgent(f.org, "app@ville.test", PermSubmit), PermSubmit)
	st, body := apiPost(t, f.s.URL, tok, "/api/forms/essai/responses", essaiAnswers)
	if st != 201 {
		t.Fatalf("submit: %d %s", st, body)
	}
	var first struct{ Reference string }
	_ = json.Unmarshal([]byte(body), &first)
	// A citizen starts a draft on version 1.
	c := f.s.Client()
	c.Post("/demarches/essai", nil)
	c.Get("/demarches/essai/etape/vous")
	if res := c.Post("/demarches/essai/etape/vous", url.Values{"nom": {"Léa"}, "email": {"lea@example.org"}, "pro": {"no"}}); res.Status != 303 {
		t.Fatalf("step 1: %d", res.Status)
	}
	// Version 2 renames the name question's label and adds a required question.
	l, _ := f.m.published(ctx, "essai")
	def := l.Def.Clone()
	loc, _ := def.Question("nom")
	loc.Q.Label = "Nom de famille"
	loc.Sec.Questions = append(loc.Sec.Questions, Question{Key: "age", Type: TNumber, Label: "Âge", Required: true})
	if err := f.s.DB.InTx(actx, func(tx *store.Tx) error { _, err := f.m.SaveForm(actx, tx, f.org, def); return err }); err != nil {
		t.Fatal(err)
	}
	if v, err := f.m.Publish(actx, f.org, "essai"); err != nil || v != 2 {
		t.Fatalf("publish v2: %d %v", v, err)
	}
	r, rdef, err := f.m.loadResponse(ctx, f.s.DB.Read(), first.Reference)
	if err != nil || r.Version != 1 || rdef.Version != 1 {
		t.Fatalf("first response: version %d (definition %v) %v", r.Version, rdef, err)
	}
	if loc, _ := rdef.Question("nom"); loc.Q.Label != "Nom" {
		t.Errorf("the first response is read with the label %q", loc.Q.Label)
	}
	// The draft goes on with version 1: no "age" asked, and its response is version 1.
	if res := c.Get("/demarches/essai/etape/vous"); strings.Contains(res.Body, `name="age"`) {
		t.Errorf("the version 1 draft shows a version 2 question")
	}
	lieu := url.Values{"adresse.street": {"1 rue X"}, "adresse.postcode": {"75011"}, "adresse.town": {"Paris"}, "objets.count": {"1"}, "objets[0].quoi": {"a"}}
	if res := multipartPost(t, c, "/demarches/essai/etape/lieu", lieu, map[string][2]string{"plan": {"plan.pdf", pdfBytes}}); res.Status != 303 {
		t.Fatalf("step lieu: %d\n%s", res.Status, res.Body)
	}
	c.Get("/demarches/essai/recapitulatif")
	res := c.Post("/demarches/essai/recapitulatif", nil)
	ref := strings.TrimPrefix(res.Location, "/demarches/essai/envoye/")
	if res.Status != 303 || ref == res.Location {
		t.Fatalf("submit the draft: %d %q", res.Status, res.Location)
	}
	if r, _, err := f.m.loadResponse(ctx, f.s.DB.Read(), ref); err != nil || r.Version != 1 {
		t.Errorf("draft's response: version %d %v", r.Version, err)
	}
	// New submissions use version 2.
	if st, body := apiPost(t, f.s.URL, tok, "/api/forms/essai/responses", essaiAnswers); st != 422 || !strings.Contains(body, `"path":"age"`) {
		t.Errorf("version 2 without age: %d %s", st, body)
	}
}

// editFields reads the question edit form of the builder's page as a browser would post it.
func editFields(t *testing.T, page string) url.Values {
	t.Helper()
	i := strings.Index(page, `id="edit"`)
	if i < 0 {
		t.Fatal("no edit form on the page")
	}
	sec := page[i:]
	sec = sec[:strings.Index(sec, "</form>")]
	out := url.Values{}
	attr := func(tag, name string) (string, bool) {
		m := regexp.MustCompile(`\s` + name + `="([^"]*)"`).FindStringSubmatch(tag)
		if m == nil {
			return "", false
		}
		return html.UnescapeString(m[1]), true
	}
	for _, tag := range regexp.MustCompile(`<input[^>]*>`).FindAllString(sec, -1) {
		name, _ := attr(tag, "name")
		if typ, _ := attr(tag, "type"); typ == "checkbox" && !strings.Contains(tag, " checked") {
			continue
		}
		v, _ := attr(tag, "value")
		out.Add(name, v)
	}
	for _, m := range regexp.MustCompile(`(?s)<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>`).FindAllStringSubmatch(sec, -1) {
		opts := regexp.MustCompile(`<option value="([^"]*)"( selected)?`).FindAllStringSubmatch(m[2], -1)
		v := opts[0][1]
		for _, o := range opts {
			if o[2] != "" {
				v = o[1]
			}
		}
		out.Set(m[1], html.UnescapeString(v))
	}
	for _, m := range regexp.MustCompile(`(?s)<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>`).FindAllStringSubmatch(sec, -1) {
		out.Set(m[1], html.UnescapeString(strings.TrimPrefix(m[2], "\n")))
	}
	out.Del("csrf")
	return out
}

// TestBuilderQuestionSettings: the builder sets each type's settings (length, phone numbers,
// number step, dates relative to today, choice display and selection bounds, table rows,
// files, the map's tiles and first view), refuses a malformed number, and editing a
// question through its form keeps every setting it has.
func TestBuilderQuestionSettings(t *testing.T) {
	f := setup(t, store.SQLite)
	ctx := context.Background()
	adm := f.s.ClientAs(f.admin)
	const edit = "/admin/forms/essai/edit"
	adm.Get(edit)
	add := func(v url.Values) {
		t.Helper()
		v.Set("op", "add_question")
		v.Set("step", "0")
		if res := adm.Post(edit, v); res.Status != 303 {
			t.Fatalf("add %s: %d\n%s", v.Get("q_key"), res.Status, res.Body)
		}
	}
	add(url.Values{"q_type": {"text"}, "q_key": {"code"}, "q_label": {"Code"}, "q_min_length": {"3"}, "q_max_length": {"8"},
		"q_pattern": {"[A-Z0-9]+"}, "q_pattern_message": {"Lettres capitales et chiffres"}})
	add(url.Values{"q_type": {"phone"}, "q_key": {"tel"}, "q_label": {"Téléphone"}, "q_phone": {"fr"}})
	add(url.Values{"q_type": {"number"}, "q_key": {"surface"}, "q_label": {"Surface"}, "q_min": {"1"}, "q_max": {"200"}, "q_step": {"0,5"}})
	add(url.Values{"q_type": {"date"}, "q_key": {"jour"}, "q_label": {"Jour"}, "q_min_date": {"+2d"}, "q_max_date": {"+3m"}})
	add(url.Values{"q_type": {"choice"}, "q_key": {"genre"}, "q_label": {"Genre"}, "q_options": {"a|A\nb|B"}, "q_display": {"select"}})
	add(url.Values{"q_type": {"multi"}, "q_key": {"jours"}, "q_label": {"Jours"}, "q_options": {"lu|Lundi\nma|Mardi\nme|Mercredi"}, "q_min_select": {"1"}, "q_max_select": {"2"}})
	add(url.Values{"q_type": {"table"}, "q_key": {"lignes"}, "q_label": {"Lignes"}, "q_options": {"quoi|Quoi\ncombien|Combien"}, "q_max_rows": {"4"}})
	add(url.Values{"q_type": {"file"}, "q_key": {"pieces"}, "q_label": {"Pièces"}, "q_max_mb": {"2"}, "q_max_files": {"3"}, "q_accept": {"application/pdf, image/*"}})
	add(url.Values{"q_type": {"map"}, "q_key": {"point"}, "q_label": {"Point"}, "q_map_tiles": {"https://tuiles.ville.test/{z}/{x}/{y}.png"},
		"q_map_attribution": {"© Ville"}, "q_map_attribution_url": {"https://ville.test/credits"}, "q_map_lat": {"45,75"}, "q_map_lng": {"4.85"}, "q_map_zoom": {"14"}})
	_, v, err := f.m.loadEdit(ctx, f.org, "essai")
	if err != nil {
		t.Fatal(err)
	}
	q := func(k string) *Question {
		loc, ok := v.Def.Question(k)
		if !ok {
			t.Fatalf("question %s missing", k)
		}
		return loc.Q
	}
	checks := []struct {
		key string
		ok  bool
	}{
		{"code", q("code").MinLength == 3 && q("code").MaxLength == 8 && q("code").PatternMessage != ""},
		{"tel", q("tel").Phone == "fr"},
		{"surface", *q("surface").Min == 1 && *q("surface").Max == 200 && q("surface").Step == 0.5},
		{"jour", q("jour").MinDate == "+2d" && q("jour").MaxDate == "+3m"},
		{"genre", q("genre").Display == "select" && len(q("genre").Options) == 2},
		{"jours", q("jours").MinSelect == 1 && q("jours").MaxSelect == 2},
		{"lignes", q("lignes").MaxRows == 4 && len(q("lignes").Columns) == 2 && len(q("lignes").Options) == 0},
		{"pieces", q("pieces").MaxSize == 2<<20 && q("pieces").MaxFiles == 3 && strings.Join(q("pieces").Accept, " ") == "application/pdf image/*"},
		{"point", q("point").Map != nil && q("point").Map.Tiles == "https://tuiles.ville.test/{z}/{x}/{y}.png" && q("point").Map.Lat == 45.75 &&
			q("point").Map.Zoom == 14 && q("point").Map.Attribution == "© Ville"},
	}
	for _, c := range checks {
		if !c.ok {
			b, _ := json.Marshal(q(c.key))
			t.Errorf("%s: settings not applied: %s", c.key, b)
		}
	}
	// The edit form shows each setting and posts it back: only the label changes.
	for _, k := range []string{"code", "tel", "surface", "jour", "genre", "jours", "lignes", "pieces", "point", "adresse"} {
		before, _ := json.Marshal(q(k))
		vals := editFields(t, adm.Get(edit+"?q="+k).Body)
		vals.Set("q_label", "Nouveau libellé")
		if res := adm.Post(edit, vals); res.Status != 303 {
			t.Fatalf("edit %s: %d\n%s", k, res.Status, res.Body)
		}
		_, v2, _ := f.m.loadEdit(ctx, f.org, "essai")
		loc, _ := v2.Def.Question(k)
		loc.Q.Label = q(k).Label
		if after, _ := json.Marshal(loc.Q); string(after) != string(before) {
			t.Errorf("editing %s changed its settings:\n%s\n%s", k, before, after)
		}
	}
	// A malformed number is refused, naming its field; the map settings are checked.
	if res := adm.Post(edit, url.Values{"op": {"add_question"}, "step": {"0"}, "q_type": {"number"}, "q_key": {"n2"}, "q_label": {"N"}, "q_step": {"un demi"}}); res.Status != 400 || !strings.Contains(res.Body, "q_step") {
		t.Errorf("malformed step: %d", res.Status)
	}
	if res := adm.Post(edit, url.Values{"op": {"add_question"}, "step": {"0"}, "q_type": {"map"}, "q_key": {"p2"}, "q_label": {"P"}, "q_map_tiles": {"http://x/{z}/{x}/{y}.png"}}); res.Status != 400 || !strings.Contains(res.Body, "map.tiles") {
		t.Errorf("bad tiles: %d", res.Status)
	}
}

// TestRetentionPerRequest: on a form that stays open, retention counts from each request's
// closing (its workflow's final state): the sweep purges or anonymises the requests closed
// long enough ago — answers, files on disk, messages, search entry and what the workflow
// holds — keeps the others, and records each run in the audit log.
func TestRetentionPerRequest(t *testing.T) {
	for _, d := range storetest.Engines() {
		for _, mode := range []string{"purge", "anonymise"} {
			t.Run(string(d)+"/"+mode, func(t *testing.T) {
				f := setup(t, d)
				ctx := context.Background()
				actx := kernel.WithAgent(ctx, f.admin)
				l, _ := f.m.published(ctx, "essai")
				def := l.Def.Clone()
				def.Settings.RetentionMonths, def.Settings.RetentionMode = 2, mode
				if err := f.s.DB.InTx(actx, func(tx *store.Tx) error { _, err := f.m.SaveForm(actx, tx, f.org, def); return err }); err != nil {
					t.Fatal(err)
				}
				if _, err := f.m.Publish(actx, f.org, "essai"); err != nil {
					t.Fatal(err)
				}
				later := func(days int) {
					f.clock.mu.Lock()
					f.clock.t = f.clock.t.AddDate(0, 0, days)
					f.clock.mu.Unlock()
				}
				r1 := fill(t, f, f.s.Client(), "75011") // with a file
				r2 := fill(t, f, f.s.Client(), "75011")
				r3 := fill(t, f, f.s.Client(), "75011")
				q := f.s.DB.Read()
				var fileID string
				_ = q.QueryRowContext(ctx, `SELECT f.id FROM forms_files f JOIN forms_responses r ON r.id = f.response_id WHERE r.ref = ?`, r1).Scan(&fileID)
				if _, err := os.Stat(f.m.filePath(fileID)); fileID == "" || err != nil {
					t.Fatalf("r1's file: %q %v", fileID, err)
				}
				resp1, _, _ := f.m.loadResponse(ctx, q, r1)
				if err := f.m.agentMessage(ctx, f.agentA, resp1, "Nous passerons lundi chez Mme Martin."); err != nil {
					t.Fatal(err)
				}
				done := func(ref string) {
					t.Helper()
					if _, err := f.m.wf.Run(ctx, f.agentA, workflow.Ref{Type: ResourceType, ID: ref}, "done", workflow.Input{Comment: "vu avec Mme Martin"}); err != nil {
						t.Fatal(err)
					}
				}
				done(r1)
				later(40)
				done(r2)  // r3 stays open
				later(21) // r1 closed 61 days ago, r2 21
				res, err := f.m.Sweep(ctx)
				if err != nil {
					t.Fatal(err)
				}
				n := res.Purged + res.Anonymised
				if n != 1 {
					t.Fatalf("first sweep: %+v, want r1 only", res)
				}
				count := func(query string, args ...any) int {
					t.Helper()
					var n int
					if err := q.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
						t.Fatalf("%s: %v", query, err)
					}
					return n
				}
				wref := workflow.Ref{Type: ResourceType, ID: r1}
				if _, err := os.Stat(f.m.filePath(fileID)); !os.IsNotExist(err) {
					t.Errorf("r1's file is still on disk: %v", err)
				}
				if count(`SELECT COUNT(*) FROM forms_files WHERE id = ?`, fileID) != 0 || count(`SELECT COUNT(*) FROM forms_messages m JOIN forms_responses r ON r.id = m.response_id WHERE r.ref = ?`, r1) != 0 {
					t.Errorf("r1's file row or messages remain")
				}
				if res := f.s.ClientAs(f.admin).Get("/admin/forms/essai/responses?q=martin"); strings.Contains(res.Body, r1) || !strings.Contains(res.Body, r2) {
					t.Errorf("search after retention: r1 found or r2 not")
				}
				st, err := f.m.wf.State(ctx, wref)
				if mode == "purge" {
					if count(`SELECT COUNT(*) FROM forms_responses WHERE ref = ?`, r1) != 0 || err == nil {
						t.Errorf("r1 not purged: workflow %+v %v", st, err)
					}
					if count(`SELECT COUNT(*) FROM workflow_history h JOIN workflow_resources r ON r.id = h.resource_id WHERE r.rid = ?`, r1) != 0 {
						t.Errorf("r1's workflow history remains")
					}
				} else {
					r, _, err := f.m.loadResponse(ctx, q, r1)
					if err != nil || !r.Anonymised || len(r.Answers) != 0 || r.Email != "" || r.State != "done" {
						t.Errorf("r1 not anonymised: %+v %v", r, err)
					}
					if err != nil || len(st.Fields) != 0 || st.CitizenEmail != "" || st.Title != r1 || st.State != "done" {
						t.Errorf("r1's workflow resource not anonymised: %+v %v", st, err)
					}
					if count(`SELECT COUNT(*) FROM workflow_history h JOIN workflow_resources r ON r.id = h.resource_id WHERE r.rid = ? AND h.message <> ''`, r1) != 0 {
						t.Errorf("r1's workflow history keeps texts")
					}
					if count(`SELECT COUNT(*) FROM workflow_history h JOIN workflow_resources r ON r.id = h.resource_id WHERE r.rid = ? AND h.kind IN ('attach', 'transition')`, r1) != 2 {
						t.Errorf("r1's transitions are gone")
					}
				}
				for _, ref := range []string{r2, r3} {
					if r, _, err := f.m.loadResponse(ctx, q, ref); err != nil || r.Anonymised || r.Answers["nom"] != "Léa Martin" {
						t.Errorf("%s touched too early: %+v %v", ref, r, err)
					}
				}
				// Forty more days: r2's turn; r3 is still open and stays.
				later(40)
				if res, err := f.m.Sweep(ctx); err != nil || res.Purged+res.Anonymised != 1 {
					t.Fatalf("second sweep: %+v %v", res, err)
				}
				if r, _, err := f.m.loadResponse(ctx, q, r3); err != nil || r.Anonymised {
					t.Errorf("open r3: %+v %v", r, err)
				}
				if n := count(`SELECT COUNT(*) FROM audit_entries WHERE action = ?`, "forms.retention."+mode); n != 2 {
					t.Errorf("audit entries: %d, want 2", n)
				}
				if res, err := f.m.Sweep(ctx); err != nil || res.Purged+res.Anonymised != 0 {
					t.Errorf("third sweep: %+v %v", res, err)
				}
			})
		}
	}
}

// TestBuilderStructure: the builder adds and edits sections (repeatable, with their bounds),
// puts a question in a chosen section, shows or hides a section or a whole step on a
// condition, branches to a later step or to the end, and refuses what the definition
// forbids (a branch backwards, a condition on a later question, a section of another step).
func TestBuilderStructure(t *testing.T) {
	f := setup(t, store.SQLite)
	ctx := context.Background()
	adm := f.s.ClientAs(f.admin)
	const edit = "/admin/forms/essai/edit"
	adm.Get(edit)
	latest := func() *Definition {
		t.Helper()
		_, v, err := f.m.loadEdit(ctx, f.org, "essai")
		if err != nil {
			t.Fatal(err)
		}
		return v.Def
	}
	ops := []struct {
		name   string
		form   url.Values
		status int
		check  func(d *Definition) bool
	}{
		{"a repeatable section", url.Values{"op": {"add_section"}, "step": {"lieu"}, "section_key": {"pieces"}, "section_title": {"Pièce"},
			"repeat": {"yes"}, "repeat_min": {"1"}, "repeat_max": {"4"}}, 303, func(d *Definition) bool {
			sec := sectionByKey(d, "pieces")
			return sec != nil && sec.Title == "Pièce" && sec.Repeat != nil && sec.Repeat.Min == 1 && sec.Repeat.Max == 4
		}},
		{"a question in it", url.Values{"op": {"add_question"}, "step": {"2"}, "section": {"pieces"}, "q_type": {"text"}, "q_key": {"piece"}, "q_label": {"Pièce"}},
			303, func(d *Definition) bool { loc, ok := d.Question("piece"); return ok && loc.Sec.Key == "pieces" }},
		{"not in another step's section", url.Values{"op": {"add_question"}, "step": {"0"}, "section": {"pieces"}, "q_type": {"text"}, "q_key": {"x"}, "q_label": {"X"}},
			400, func(d *Definition) bool { _, ok := d.Question("x"); return !ok }},
		{"bounds", url.Values{"op": {"edit_section"}, "key": {"pieces"}, "section_title": {"Pièce jointe"}, "repeat": {"yes"}, "repeat_min": {"0"}, "repeat_max": {"2"}},
			303, func(d *Definition) bool {
				s := sectionByKey(d, "pieces")
				return s.Title == "Pièce jointe" && s.Repeat.Max == 2 && s.Repeat.Min == 0
			}},
		{"bad bounds", url.Values{"op": {"edit_section"}, "key": {"pieces"}, "repeat": {"yes"}, "repeat_min": {"3"}, "repeat_max": {"2"}},
			400, func(d *Definition) bool { return sectionByKey(d, "pieces").Repeat.Max == 2 }},
		{"a section shown on a condition", url.Values{"op": {"condition"}, "key": {"section:pieces"}, "field": {"pro"}, "cond_op": {"eq"}, "value": {"yes"}},
			303, func(d *Definition) bool { c := sectionByKey(d, "pieces").If; return c != nil && c.Field == "pro" }},
		{"a step shown on a condition", url.Values{"op": {"condition"}, "key": {"step:entreprise"}, "field": {"nom"}, "cond_op": {"not_empty"}},
			303, func(d *Definition) bool { c := d.Steps[1].If; return c != nil && c.Op == "not_empty" }},
		{"combined with OR", url.Values{"op": {"condition"}, "key": {"step:entreprise"}, "field": {"email"}, "cond_op": {"contains"}, "value": {"@mairie"}, "join": {"or"}},
			303, func(d *Definition) bool { return len(d.Steps[1].If.Any) == 2 }},
		{"a step on a later question", url.Values{"op": {"condition"}, "key": {"step:vous"}, "field": {"effectif"}, "cond_op": {"gt"}, "value": {"3"}},
			400, func(d *Definition) bool { return d.Steps[0].If == nil }},
		{"a branch to the end", url.Values{"op": {"branch"}, "step": {"entreprise"}, "field": {"effectif"}, "cond_op": {"gt"}, "value": {"50"}, "goto": {"end"}},
			303, func(d *Definition) bool {
				n := d.Steps[1].Next
				return len(n) == 1 && n[0].Goto == "end" && n[0].If.Field == "effectif"
			}},
		{"not backwards", url.Values{"op": {"branch"}, "step": {"lieu"}, "field": {"nom"}, "cond_op": {"empty"}, "goto": {"vous"}},
			400, func(d *Definition) bool { return len(d.Steps[2].Next) == 0 }},
		{"branches removed", url.Values{"op": {"branch"}, "step": {"entreprise"}, "clear": {"yes"}},
			303, func(d *Definition) bool { return len(d.Steps[1].Next) == 0 }},
		{"branch again", url.Values{"op": {"branch"}, "step": {"entreprise"}, "field": {"effectif"}, "cond_op": {"gt"}, "value": {"50"}, "goto": {"end"}},
			303, nil},
	}
	for _, op := range ops {
		res := adm.Post(edit, op.form)
		if res.Status != op.status {
			t.Fatalf("%s: %d, want %d\n%s", op.name, res.Status, op.status, res.Body)
		}
		if op.check != nil && !op.check(latest()) {
			b, _ := json.Marshal(latest().Steps)
			t.Fatalf("%s: not applied: %s", op.name, b)
		}
	}
	page := adm.Get(edit).Body
	for _, want := range []string{"répétable, de 0 à 2 fois", "Étape proposée si : (nom not_empty) OU (email contains @mairie)",
		"Si effectif gt 50 : aller à « end »", "Affichée si : pro eq yes"} {
		if !strings.Contains(html.UnescapeString(page), want) {
			t.Errorf("the builder page lacks %q", want)
		}
	}
	// Published, the structure rules the path: "entreprise" only with a name, the end
	// after it for a big company, the section only for a professional.
	if res := adm.Post(edit, url.Values{"op": {"publish"}}); res.Status != 303 {
		t.Fatalf("publish: %d\n%s", res.Status, res.Body)
	}
	l, _ := f.m.published(ctx, "essai")
	if p := l.Def.Path(Answers{"nom": "L", "pro": "yes", "effectif": 60.0}); len(p) != 2 || p[1] != 1 {
		t.Errorf("path of a big company: %v", p)
	}
	if p := l.Def.Path(Answers{"nom": "L", "pro": "yes", "effectif": 5.0}); len(p) != 3 {
		t.Errorf("path of a small company: %v", p)
	}
	sec := sectionByKey(l.Def, "pieces")
	if Visible(sec, &sec.Questions[0], Answers{"pro": "no"}) || !Visible(sec, &sec.Questions[0], Answers{"pro": "yes"}) {
		t.Errorf("the section's condition")
	}
	// A section goes with its questions.
	if res := adm.Post(edit, url.Values{"op": {"delete"}, "key": {"section:pieces"}}); res.Status != 303 {
		t.Fatalf("delete section: %d", res.Status)
	}
	if _, ok := latest().Question("piece"); ok || sectionByKey(latest(), "pieces") != nil {
		t.Errorf("the section or its question remain")
	}
}

// TestOpenAPIValidationErrors: the refusals of submitResponse are what the document says: a
// 422 whose body, checked against the document's own schema, lists {path, code, message};
// and the operations the issue names are there with their stable ids.
func TestOpenAPIValidationErrors(t *testing.T) {
	f := setup(t, store.SQLite)
	res := f.s.Client().Get("/api/openapi.json")
	doc, err := openapi3.NewLoader().LoadFromData([]byte(res.Body))
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]*openapi3.Operation{}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			ops[op.OperationID] = op
		}
	}
	for id, where := range map[string]string{"listForms": "GET /api/forms", "getForm": "GET /api/forms/{key}", "submitResponse": "POST /api/forms/{key}/responses",
		"listResponses": "GET /api/forms/{key}/responses", "getResponse": "GET /api/responses/{ref}", "runResponseAction": "POST /api/responses/{ref}/actions/{action}"} {
		method, path, _ := strings.Cut(where, " ")
		if item := doc.Paths.Find(path); item == nil || item.GetOperation(method) == nil || item.GetOperation(method).OperationID != id {
			t.Errorf("%s is not %s", where, id)
		}
	}
	r422 := ops["submitResponse"].Responses.Status(422)
	if r422 == nil {
		t.Fatal("submitResponse documents no 422")
	}
	schema := r422.Value.Content.Get("application/json").Schema.Value
	tok := f.s.APIToken(f.s.NewAgent(f.org, "app@ville.test", PermSubmit), PermSubmit)
	st, body := apiPost(t, f.s.URL, tok, "/api/forms/essai/responses", `{"answers":{"nom":"","email":"x","pro":"peut-être","couleur":"rouge"}}`)
	if st != 422 {
		t.Fatalf("bad answers: %d %s", st, body)
	}
	var v map[string]any
	_ = json.Unmarshal([]byte(body), &v)
	if err := schema.VisitJSON(v); err != nil {
		t.Errorf("the 422 body does not match its schema: %v\n%s", err, body)
	}
	var got struct {
		Errors []struct{ Path, Code, Message string }
	}
	_ = json.Unmarshal([]byte(body), &got)
	paths := map[string]string{}
	for _, e := range got.Errors {
		if e.Message == "" || e.Code == "" {
			t.Errorf("problem without code or message: %+v", e)
		}
		paths[e.Path] = e.Code
	}
	for path, code := range map[string]string{"nom": "required", "email": "email", "pro": "yesno", "couleur": "unknown"} {
		if paths[path] != code {
			t.Errorf("problem %s: %q, want %q (all: %v)", path, paths[path], code, paths)
		}
	}
	// Another shape (no such form) is not a list of problems, but an Error.
	if st, body := apiPost(t, f.s.URL, tok, "/api/forms/nothing/responses", `{"answers":{}}`); st != 404 || !strings.Contains(body, `"code"`) {
		t.Errorf("unknown form: %d %s", st, body)
	}
}
