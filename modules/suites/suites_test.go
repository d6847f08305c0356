package suites_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"parvis.org/parvis/kernel/auth"
	_ "parvis.org/parvis/kernel/builtin"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
	"parvis.org/parvis/modules/appointments"
	"parvis.org/parvis/modules/forms"
	"parvis.org/parvis/modules/portal"
	"parvis.org/parvis/modules/suites"
	_ "parvis.org/parvis/modules/workflow"
)

type fixture struct {
	s   *servertest.Server
	m   *suites.Module
	p   *portal.Module
	f   *forms.Module
	a   *appointments.Module
	org int64
}

func setup(t *testing.T, d store.Dialect, env ...string) *fixture {
	t.Helper()
	s := servertest.New(t, d, servertest.Options{Env: env})
	f := &fixture{s: s, org: s.DefaultOrg()}
	for _, in := range s.Modules {
		switch m := in.Module.(type) {
		case *suites.Module:
			f.m = m
		case *portal.Module:
			f.p = m
		case *forms.Module:
			f.f = m
		case *appointments.Module:
			f.a = m
		}
	}
	if f.m == nil || f.p == nil || f.f == nil || f.a == nil {
		t.Fatal("suites, portal, forms or appointments not compiled in")
	}
	return f
}

func (f *fixture) load(t *testing.T, src string) *suites.Suite {
	t.Helper()
	s, err := f.m.Load(context.Background(), f.org, "test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return s
}

func (f *fixture) apply(t *testing.T, s *suites.Suite) *suites.Plan {
	t.Helper()
	p, err := f.m.Apply(context.Background(), f.org, s, false)
	if err != nil {
		t.Fatalf("apply %s: %v", s.Name, err)
	}
	return p
}

func (f *fixture) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := f.s.DB.Read().QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func dialects(t *testing.T, f func(t *testing.T, d store.Dialect)) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			f(t, d)
		})
	}
}

// Applying the demo (which includes the two other built-in suites) twice: the second time
// changes nothing, and the database holds the same rows.
func TestBuiltinSuitesIdempotent(t *testing.T) {
	dialects(t, func(t *testing.T, d store.Dialect) {
		f := setup(t, d)
		ctx := context.Background()
		demo, err := f.m.Find(ctx, f.org, "demo")
		if err != nil {
			t.Fatal(err)
		}
		dry, err := f.m.Apply(ctx, f.org, demo, true)
		if err != nil {
			t.Fatal(err)
		}
		if f.count(t, "portal_sites") != 0 || f.count(t, "suites_items") != 0 {
			t.Fatal("dry run wrote something")
		}
		p := f.apply(t, demo)
		if p.Count(suites.Create) == 0 || p.Count(suites.Create) != dry.Count(suites.Create) || p.Count(suites.Conflict) != 0 {
			t.Fatalf("first apply: %d created (dry run said %d), %d conflicts: %+v", p.Count(suites.Create), dry.Count(suites.Create), p.Count(suites.Conflict), p.Steps)
		}
		for table, want := range map[string]int{"portal_sites": 3, "forms_forms": 3, "appt_services": 2, "appt_places": 2, "appt_templates": 3} {
			if got := f.count(t, table); got != want {
				t.Fatalf("%s: %d rows, want %d", table, got, want)
			}
		}
		// The forms are published, and the services bookable where the suite says.
		entries, err := f.f.Entries(ctx, f.org)
		if err != nil || len(entries) != 3 {
			t.Fatalf("published forms: %v %v", entries, err)
		}
		tables := []string{"auth_units", "auth_roles", "auth_agents", "portal_sites", "portal_pages", "portal_page_versions", "portal_news", "workflow_defs",
			"forms_forms", "forms_versions", "appt_categories", "appt_services", "appt_places", "appt_templates", "audit_entries"}
		before := map[string]int{}
		for _, tb := range tables[:len(tables)-1] {
			before[tb] = f.count(t, tb)
		}
		p = f.apply(t, demo)
		if p.Count(suites.Unchanged) != len(p.Steps) {
			t.Fatalf("second apply changed things: %+v", p.Steps)
		}
		for _, tb := range tables[:len(tables)-1] {
			if n := f.count(t, tb); n != before[tb] {
				t.Errorf("%s: %d rows after the second apply, %d before", tb, n, before[tb])
			}
		}
		// Each included suite is recorded as installed.
		for _, name := range []string{"demo", "rendez-vous", "formulaires"} {
			var v string
			if err := f.s.DB.Read().QueryRowContext(ctx, "SELECT version FROM suites_applied WHERE org_id = ? AND name = ?", f.org, name).Scan(&v); err != nil || v != "1.0.0" {
				t.Errorf("%s installed: %q %v", name, v, err)
			}
		}
	})
}

const v1 = `format: 1
name: essai
version: 1.0.0
title: Essai
requires: [kernel.auth, portal, workflow]
units:
  - {key: accueil, name: Accueil}
  - {key: voirie, name: Voirie}
roles:
  - key: agent
    name: Agent
    grants: [{perm: workflow.inbox, scope: unit, unit: voirie}]
sites:
  - {key: ville, name: Ville, prefix: /ville}
pages:
  - {key: infos, site: ville, slug: infos, title: Infos, content: [{zone: main, type: richtext, config: {body: Bonjour}}]}
news:
  - {key: fete, site: ville, slug: fete, title: Fête, published_at: "2026-03-01T09:00:00Z"}
workflows:
  - key: demande
    title: Demande
    states:
      - {key: recue, title: Reçue, public_label: Reçue, initial: true}
      - {key: close, title: Close, public_label: Close, final: true}
    actions:
      - {key: clore, title: Clore, from: [recue], to: close}
    routing: {default_unit: voirie}
forms:
  - key: signalement
    title: Signalement
    workflow: demande
    steps: [{key: lieu, title: Lieu, sections: [{key: lieu_s, questions: [{key: quoi, type: text, label: Quoi ?, required: true}]}]}]
  - key: brouillon
    title: Brouillon
    published: false
    steps: [{key: a, title: A, sections: [{key: a_s, questions: [{key: nom, type: text, label: Nom}]}]}]
meeting_points:
  - {key: mairie, name: Mairie, city: Essai, unit: accueil}
appointment_services:
  - key: cni
    name: Carte d'identité
    category: Titres
    ants_reason: CNI
    form: signalement
    unit: accueil
    schedules:
      - meeting_point: mairie
        valid_from: "2026-01-01"
        valid_to: "2036-12-31"
        slot_minutes: 15
        capacity: 2
        days: {monday: [{start: "09:00", end: "12:00"}], thursday: [{start: "14:00", end: "18:00"}]}
`

// A newer version updates what the suite created, but leaves alone what the town changed
// by hand since (reported as conflicts), and never recreates what the town deleted.
func TestUpdateWithoutOverwrite(t *testing.T) {
	dialects(t, func(t *testing.T, d store.Dialect) {
		f := setup(t, d)
		ctx := context.Background()
		p := f.apply(t, f.load(t, v1))
		if p.Count(suites.Create) != 11 {
			t.Fatalf("v1 created %d, want 11: %+v", p.Count(suites.Create), p.Steps)
		}
		ids := map[string]string{}
		for _, st := range p.Steps {
			ids[st.Section+"/"+st.Key] = st.ID
		}
		// The town renames a unit and edits the page by hand.
		st := &auth.Store{DB: f.s.DB}
		err := f.s.DB.InTx(ctx, func(tx *store.Tx) error {
			return st.UpdateUnit(ctx, tx, f.org, idOf(t, ids["units/accueil"]), 0, "Accueil général")
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.p.SaveDraft(ctx, idOf(t, ids["pages/infos"]), portal.DraftInput{Title: "Infos pratiques", Visibility: portal.Public,
			Content: []portal.Placement{{Zone: "main", Type: "richtext", Config: map[string]string{"body": "Texte de la commune"}}}}); err != nil {
			t.Fatal(err)
		}
		// … gives the meeting point its real name, and publishes the draft form.
		place, err := f.a.Place(ctx, f.s.DB.Read(), idOf(t, ids["meeting_points/mairie"]))
		if err != nil {
			t.Fatal(err)
		}
		place.Name = "Mairie principale"
		if _, err := f.a.SavePlace(ctx, place); err != nil {
			t.Fatal(err)
		}
		if fm, _, err := f.f.Latest(ctx, f.org, "brouillon"); err != nil || fm.Published != 0 {
			t.Fatalf("draft form published by the suite: %+v %v", fm, err)
		}
		if _, err := f.f.Publish(ctx, f.org, "brouillon"); err != nil {
			t.Fatal(err)
		}
		v2 := strings.NewReplacer("version: 1.0.0", "version: 1.1.0", "name: Accueil}", "name: Accueil des usagers}",
			"name: Voirie}", "name: Voirie et propreté}", "body: Bonjour", "body: Bonjour à tous", "title: Fête,", "title: Grande fête,",
			"label: Quoi ?", "label: Que signalez-vous ?", "city: Essai", "city: Essai-sur-Mer", "capacity: 2", "capacity: 3",
			"label: Nom}", "label: Votre nom}").Replace(v1)
		plan, err := f.m.Apply(ctx, f.org, f.load(t, v2), true)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"units/accueil": suites.Conflict, "pages/infos": suites.Conflict, "units/voirie": suites.Update,
			"news/fete": suites.Update, "roles/agent": suites.Unchanged, "sites/ville": suites.Unchanged, "workflows/demande": suites.Unchanged,
			"forms/signalement": suites.Update, "forms/brouillon": suites.Conflict, "meeting_points/mairie": suites.Conflict,
			"appointment_services/cni": suites.Update}
		check := func(p *suites.Plan) {
			for _, st := range p.Steps {
				if w, ok := want[st.Section+"/"+st.Key]; ok && st.Action != w {
					t.Errorf("%s/%s: %s (%s), want %s", st.Section, st.Key, st.Action, st.Reason, w)
				}
				if st.Action == suites.Conflict && st.Reason != "suites.reason.changed" {
					t.Errorf("%s/%s: reason %q", st.Section, st.Key, st.Reason)
				}
			}
		}
		check(plan)
		check(f.apply(t, f.load(t, v2)))
		u, err := st.Unit(ctx, f.s.DB.Read(), f.org, idOf(t, ids["units/accueil"]))
		if err != nil || u.Name != "Accueil général" {
			t.Fatalf("hand-made change overwritten: %q %v", u.Name, err)
		}
		u, _ = st.Unit(ctx, f.s.DB.Read(), f.org, idOf(t, ids["units/voirie"]))
		if u.Name != "Voirie et propreté" {
			t.Fatalf("update not applied: %q", u.Name)
		}
		pg, _ := f.p.Page(ctx, idOf(t, ids["pages/infos"]))
		ver, _ := f.p.PageVersion(ctx, pg.ID, pg.DraftVersion)
		if ver.Title != "Infos pratiques" {
			t.Fatalf("page overwritten: %q", ver.Title)
		}
		place, _ = f.a.Place(ctx, f.s.DB.Read(), place.ID)
		if place.Name != "Mairie principale" || place.City != "Essai" {
			t.Fatalf("meeting point overwritten: %+v", place)
		}
		// The updated form is published as a new version; the hand-published one is kept.
		fm, v, err := f.f.Latest(ctx, f.org, "signalement")
		if err != nil || v.Version != 2 || fm.Published != 2 || v.Def.Steps[0].Sections[0].Questions[0].Label != "Que signalez-vous ?" {
			t.Fatalf("form update: %+v version %d %v", fm, v.Version, err)
		}
		if fm, v, _ := f.f.Latest(ctx, f.org, "brouillon"); fm.Published != 1 || v.Def.Steps[0].Sections[0].Questions[0].Label != "Nom" {
			t.Fatalf("hand-published form changed: %+v %+v", fm, v.Def)
		}
		// The service asks the questions of the suite's form.
		if sv, err := f.a.Service(ctx, f.s.DB.Read(), idOf(t, ids["appointment_services/cni"])); err != nil || sv.FormKey != "signalement" {
			t.Fatalf("service form: %q %v", sv.FormKey, err)
		}
		if doc, err := f.m.Export(ctx, f.org, suites.ExportOptions{Name: "essai", Only: []string{"appointment_services"}}); err != nil ||
			!strings.Contains(string(doc), "form: signalement") || !strings.Contains(string(doc), "\nforms:\n") {
			t.Fatalf("export of the service lacks its form: %v\n%s", err, doc)
		}
		// The schedule was updated in place, not doubled.
		tpls, err := f.a.Templates(ctx, place.ID, idOf(t, ids["appointment_services/cni"]))
		if err != nil || len(tpls) != 1 || tpls[0].Capacity != 3 || len(tpls[0].Days[time.Monday]) != 1 {
			t.Fatalf("schedules after update: %+v %v", tpls, err)
		}
		// Applying v2 again: nothing to do; an older version is refused.
		again := f.apply(t, f.load(t, v2))
		if again.Count(suites.Create)+again.Count(suites.Update) != 0 {
			t.Fatalf("v2 twice: %+v", again.Steps)
		}
		_, err = f.m.Apply(ctx, f.org, f.load(t, v1), false)
		var inv *suites.Invalid
		if !errors.As(err, &inv) || inv.Problems[0].Key != "suites.error.older" || inv.Problems[0].Line != 3 {
			t.Fatalf("older version: %v", err)
		}
		// A deleted item is not created again.
		if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error { return st.DeleteRole(ctx, tx, f.org, idOf(t, ids["roles/agent"])) }); err != nil {
			t.Fatal(err)
		}
		v3 := strings.Replace(strings.Replace(v2, "version: 1.1.0", "version: 1.2.0", 1), "name: Agent", "name: Agent de voirie", 1)
		for _, s := range f.apply(t, f.load(t, v3)).Steps {
			if s.Section == "roles" && (s.Action != suites.Conflict || s.Reason != "suites.reason.deleted") {
				t.Fatalf("deleted role: %+v", s)
			}
		}
	})
}

func idOf(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	for _, r := range s {
		if r < '0' || r > '9' {
			t.Fatalf("id %q", s)
		}
		n = n*10 + int64(r-'0')
	}
	return n
}

// Export from one instance, apply on an empty one, export again: the same document.
func TestRoundTrip(t *testing.T) {
	dialects(t, func(t *testing.T, d store.Dialect) {
		a := setup(t, d)
		ctx := context.Background()
		demo, err := a.m.Find(ctx, a.org, "demo")
		if err != nil {
			t.Fatal(err)
		}
		a.apply(t, demo)
		// A hand-made unit and page are exported too, under derived keys.
		if _, err := a.p.CreatePage(ctx, 1, firstHome(t, a), "piscine", "Piscine"); err != nil {
			t.Fatal(err)
		}
		opt := suites.ExportOptions{Name: "belleville", Title: "Services de Belleville"}
		doc1, err := a.m.Export(ctx, a.org, opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"\nforms:\n", "\nmeeting_points:\n", "\nappointment_services:\n", "ants_reason: CNI-PASSPORT", "meeting_point: annexe-nord", "workflow: terrasse"} {
			if !strings.Contains(string(doc1), want) {
				t.Errorf("export lacks %q", want)
			}
		}
		for _, secret := range []string{"@belleville.example.org\n    name: Camille", "password", "secret"} {
			if strings.Contains(string(doc1), secret) {
				t.Errorf("export holds %q", secret)
			}
		}
		b := setup(t, d)
		s, err := b.m.Load(ctx, b.org, "belleville.yaml", doc1)
		if err != nil {
			t.Fatalf("export does not load: %v\n%s", err, doc1)
		}
		p := b.apply(t, s)
		if p.Count(suites.Conflict) != 0 {
			t.Fatalf("conflicts on an empty instance: %+v", p.Steps)
		}
		doc2, err := b.m.Export(ctx, b.org, opt)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(doc1, doc2) {
			t.Fatalf("round trip differs:\n--- first\n%s\n--- second\n%s", doc1, doc2)
		}
		// --only keeps the chosen sections and what they refer to.
		only, err := a.m.Export(ctx, a.org, suites.ExportOptions{Only: []string{"pages"}})
		if err != nil {
			t.Fatal(err)
		}
		var h map[string]any
		if err := yaml.Unmarshal(only, &h); err != nil {
			t.Fatal(err)
		}
		if h["pages"] == nil || h["sites"] == nil || h["news"] != nil || h["workflows"] != nil {
			t.Fatalf("--only pages exported sections %v", keys(h))
		}
	})
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func firstHome(t *testing.T, f *fixture) int64 {
	t.Helper()
	pages, err := f.p.Pages(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		if p.ParentID == 0 {
			return p.ID
		}
	}
	t.Fatal("no home page")
	return 0
}

// Every bad input is refused with the file, line and path, and nothing is written.
func TestBadInput(t *testing.T) {
	dialects(t, func(t *testing.T, d store.Dialect) {
		f := setup(t, d)
		head := "format: 1\nname: x\nversion: 1.0.0\ntitle: X\n"
		cases := []struct {
			name, src, key, path string
			line                 int
		}{
			{"syntax", head + "units:\n  - key: a\n    name: [unclosed\n", "suites.error.syntax", "$", 7},
			{"newer format", "format: 2\nname: x\nversion: 1.0.0\ntitle: X\n", "suites.error.format_newer", "$.format", 1},
			{"unknown module", head + "requires: [kernel.auth, appointments.ants, budget]\n", "suites.error.modules_missing", "$.requires", 5},
			{"unknown section", head + "frobs:\n  - key: a\n", "suites.error.unknown_section", "$.frobs", 5},
			{"missing reference", head + "units:\n  - key: a\n    name: A\n    parent: nowhere\n", "suites.error.missing_ref", "$.units[0].parent", 8},
			{"duplicate key", head + "units:\n  - key: a\n    name: A\n  - key: a\n    name: B\n", "suites.error.duplicate_key", "$.units[1].key", 8},
			{"schema type", head + "units:\n  - key: a\n    name: 12\n", "suites.error.schema", "$.units[0].name", 7},
			{"missing field", head + "units:\n  - key: a\n", "suites.error.schema", "$.units[0]", 6},
			{"bad key", head + "units:\n  - key: A B\n    name: A\n", "suites.error.schema", "$.units[0].key", 6},
			{"unknown permission", head + "roles:\n  - key: r\n    name: R\n    grants: [{perm: nope.nothing}]\n", "suites.error.unknown_permission", "$.roles[0].grants[0].perm", 8},
			{"contrast", head + "sites:\n  - key: s\n    name: S\n    theme: {primary: \"#ffff00\"}\n", "kernel.theme.error.contrast", "$.sites[0].theme.primary", 8},
			{"cycle", head + "units:\n  - {key: a, name: A, parent: b}\n  - {key: b, name: B, parent: a}\n", "suites.error.cycle", "$.units[0]", 6},
			{"unknown include", head + "include: [nope]\n", "suites.error.unknown_include", "$.include", 5},
			{"schedule overlap", head + "meeting_points:\n  - {key: m, name: M}\nappointment_services:\n  - key: s\n    name: S\n    schedules:\n" +
				"      - {meeting_point: m, valid_from: \"2026-01-01\", valid_to: \"2026-12-31\", slot_minutes: 15, capacity: 1, days: {monday: [{start: \"09:00\", end: \"12:00\"}]}}\n" +
				"      - {meeting_point: m, valid_from: \"2026-06-01\", valid_to: \"2027-06-30\", slot_minutes: 15, capacity: 1, days: {}}\n",
				"suites.error.schedule_overlap", "$.appointment_services[0].schedules[1].valid_from", 12},
			{"opening ranges overlap", head + "meeting_points:\n  - {key: m, name: M}\nappointment_services:\n  - key: s\n    name: S\n    schedules:\n" +
				"      - {meeting_point: m, valid_from: \"2026-01-01\", valid_to: \"2026-12-31\", slot_minutes: 15, capacity: 1, days: {monday: [{start: \"09:00\", end: \"12:00\"}, {start: \"11:00\", end: \"13:00\"}]}}\n",
				"suites.error.range_overlap", "$.appointment_services[0].schedules[0].days.monday[1]", 11},
			{"unknown meeting point", head + "appointment_services:\n  - key: s\n    name: S\n    schedules:\n" +
				"      - {meeting_point: nowhere, valid_from: \"2026-01-01\", valid_to: \"2026-12-31\", slot_minutes: 15, capacity: 1, days: {}}\n",
				"suites.error.missing_ref", "$.appointment_services[0].schedules[0].meeting_point", 9},
			{"form question type", head + "forms:\n  - key: f\n    title: F\n    steps:\n      - key: s\n        title: S\n        sections:\n          - key: s_s\n            questions:\n              - {key: q, type: nope, label: Q}\n",
				"forms.error.type_unknown", "$.forms[0].steps[0].sections[0].questions[0].type", 14},
			{"form workflow", head + "forms:\n  - key: f\n    title: F\n    workflow: nowhere\n    steps: [{key: s, title: S, sections: [{key: t, questions: [{key: q, type: text, label: Q}]}]}]\n",
				"suites.error.missing_ref", "$.forms[0].workflow", 8},
		}
		for _, c := range cases {
			_, err := f.m.Load(context.Background(), f.org, "bad.yaml", []byte(c.src))
			var inv *suites.Invalid
			if !errors.As(err, &inv) {
				t.Errorf("%s: got %v, want problems", c.name, err)
				continue
			}
			p := inv.Problems[0]
			if p.Key != c.key || p.File != "bad.yaml" || p.Line != c.line || !strings.HasPrefix(p.Path, c.path) {
				t.Errorf("%s: got %+v, want %s at line %d path %s", c.name, inv.Problems, c.key, c.line, c.path)
			}
			if c.name == "unknown module" && !strings.Contains(p.Args[1].(string), "appointments.ants, budget") {
				t.Errorf("missing modules not listed: %v", p.Args)
			}
		}
		// A workflow the engine refuses stops the apply before the first write, even when
		// other items come before it.
		src := head + "units:\n  - {key: u, name: U}\nworkflows:\n  - key: w\n    title: W\n    states: [{key: a, title: A, public_label: A, initial: true}]\n    actions: [{key: go, title: Go, from: [a], to: a, tasks: [{type: mail, config: {template: missing}}]}]\n"
		s, err := f.m.Load(context.Background(), f.org, "bad.yaml", []byte(src))
		if err == nil {
			_, err = f.m.Apply(context.Background(), f.org, s, false)
		}
		var inv *suites.Invalid
		if !errors.As(err, &inv) || !strings.HasPrefix(inv.Problems[0].Path, "$.workflows[0]") {
			t.Fatalf("engine-refused workflow: %v", err)
		}
		if n := f.count(t, "auth_units"); n != 0 {
			t.Fatalf("%d units written despite the errors", n)
		}
		if n := f.count(t, "suites_items"); n != 0 {
			t.Fatalf("%d items recorded despite the errors", n)
		}
	})
}

// The published schema is valid JSON Schema 2020-12, accepts the built-in suites and
// refuses a broken one.
func TestSchema(t *testing.T) {
	f := setup(t, store.SQLite)
	r := f.s.Client().Get("/api/suites/schema.json")
	if r.Status != 200 {
		t.Fatalf("schema: %d", r.Status)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("suite.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("suite.json")
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	for _, name := range []string{"demo", "rendez-vous", "formulaires"} {
		_, src, _ := strings.Cut(builtin(t, f, name), "\n")
		js, err := yaml.YAMLToJSON([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(js))
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s does not validate: %v", name, err)
		}
	}
	// The formulaires suite ships the forms module's own examples, as they are.
	formulaires, err := f.m.Find(context.Background(), f.org, "formulaires")
	if err != nil {
		t.Fatal(err)
	}
	for key, example := range map[string]string{"encombrants": "bulky", "terrasse": "terrace"} {
		src, err := forms.Example(example, 0)
		if err != nil {
			t.Fatal(err)
		}
		bundle, err := forms.ParseBundle(src, "yaml")
		if err != nil {
			t.Fatal(err)
		}
		want := suites.Normalize(bundle.Form)
		delete(want, "key")
		var got map[string]any
		for _, it := range formulaires.Items["forms"] {
			if it.Key == key {
				got = suites.Normalize(it.Data)
			}
		}
		delete(got, "published")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("formulaires: form %s differs from the forms module's example %s:\n%v\n%v", key, example, got, want)
		}
	}
	bad, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"format": 1, "name": "x", "version": "1", "title": "X", "units": [{"name": "no key"}]}`))
	if sch.Validate(bad) == nil {
		t.Fatal("a unit without key validates")
	}
}

func builtin(t *testing.T, f *fixture, name string) string {
	t.Helper()
	s, err := f.m.Find(context.Background(), f.org, name)
	if err != nil {
		t.Fatal(err)
	}
	return "\n" + string(s.Source)
}

// The back-office catalogue: listing, dry-run preview, install, upload with errors
// placed by line, export; refused without suites.manage.
func TestAdminPages(t *testing.T) {
	f := setup(t, store.SQLite)
	admin := f.s.ClientAs(f.s.NewAgent(f.org, "chef@example.org", suites.PermManage))
	other := f.s.ClientAs(f.s.NewAgent(f.org, "autre@example.org", "kernel.users.manage"))
	cases := []struct {
		c      *servertest.Client
		method string
		path   string
		form   url.Values
		status int
		want   string
	}{
		{admin, "GET", "/admin/suites", nil, 200, "Rendez-vous en mairie"},
		{other, "GET", "/admin/suites", nil, 403, ""},
		{admin, "GET", "/admin/suites/plan?name=rendez-vous", nil, 200, "etat-civil"},
		{admin, "GET", "/admin/suites/plan?name=nope", nil, 404, "nope"},
		{admin, "POST", "/admin/suites/upload", url.Values{"document": {"format: 1\nname: x\nversion: 1.0.0\ntitle: X\nunits:\n  - key: a\n    parent: b\n"}}, 400, "ligne 6"},
		{admin, "POST", "/admin/suites/upload", url.Values{"document": {""}}, 400, "Choisissez un fichier"},
		{admin, "POST", "/admin/suites/upload", url.Values{"document": {"format: 1\nname: partage\nversion: 1.0.0\ntitle: Partagée\nunits:\n  - {key: a, name: A}\n"}}, 303, ""},
		{admin, "GET", "/admin/suites", nil, 200, "Partagée"},
		{admin, "POST", "/admin/suites/install", url.Values{"name": {"rendez-vous"}}, 303, ""},
		{admin, "GET", "/admin/suites/plan?name=rendez-vous&done=1", nil, 200, "inchangé"},
		{admin, "POST", "/admin/suites/export", url.Values{"export_name": {"mes-services"}, "sections": {"workflows"}}, 200, "appointments"},
		{admin, "POST", "/admin/suites/export", url.Values{"export_name": {"Bad Name"}}, 400, "minuscules"},
		{other, "POST", "/admin/suites/install", url.Values{"name": {"demo"}}, 403, ""},
	}
	for _, c := range cases {
		var r *servertest.Response
		if c.method == "GET" {
			r = c.c.Get(c.path)
		} else {
			c.c.Get("/admin/suites")
			r = c.c.Post(c.path, c.form)
		}
		if r.Status != c.status || !strings.Contains(r.Body, c.want) {
			t.Errorf("%s %s: %d, want %d with %q\n%.600s", c.method, c.path, r.Status, c.status, c.want, r.Body)
		}
	}
	var n int
	_ = f.s.DB.Read().QueryRowContext(context.Background(), "SELECT COUNT(*) FROM audit_entries WHERE action LIKE 'suites.%'").Scan(&n)
	if n == 0 {
		t.Fatal("suite changes not audited")
	}
}

// `parvis serve --suite rendez-vous` (PARVIS_SUITE) installs the suite at start; on an
// empty database (SQLite, and a fresh PostgreSQL schema) that one step gives bookable
// appointments: both services have free slots at their meeting points, and the passport /
// ID card one is booked, with ANTS off since no token is set.
func TestServeWithSuite(t *testing.T) {
	dialects(t, func(t *testing.T, d store.Dialect) {
		s := servertest.New(t, d, servertest.Options{Env: []string{"PARVIS_SUITE=rendez-vous"}, Start: true})
		var n int
		if err := s.DB.Read().QueryRowContext(context.Background(), "SELECT COUNT(*) FROM suites_items WHERE suite = 'rendez-vous'").Scan(&n); err != nil || n == 0 {
			t.Fatalf("rendez-vous not applied at start: %d %v", n, err)
		}
		// On an empty database, that one step gives bookable appointments.
		var a *appointments.Module
		for _, in := range s.Modules {
			if m, ok := in.Module.(*appointments.Module); ok {
				a = m
			}
		}
		ctx := context.Background()
		org := s.DefaultOrg()
		services, err := a.Services(ctx, org, true)
		if err != nil || len(services) != 2 {
			t.Fatalf("services: %+v %v", services, err)
		}
		st, err := a.Settings(ctx, s.DB.Read(), org)
		if err != nil || st.AntsAPIURL != "" || st.AntsHubTokenHash != "" {
			t.Fatalf("ANTS must stay off until the town sets its tokens: %+v %v", st, err)
		}
		now := time.Now()
		for _, svc := range services {
			places, err := a.Places(ctx, org, svc.ID)
			if err != nil || len(places) == 0 {
				t.Fatalf("%s: no meeting point: %v", svc.Name, err)
			}
			slots, err := a.Slots(ctx, appointments.SlotQuery{ServiceID: svc.ID, PlaceID: places[0].ID, From: now, To: now.AddDate(0, 0, 21), Units: 1, FreeOnly: true})
			if err != nil || len(slots) == 0 {
				t.Fatalf("%s at %s: no free slot in three weeks: %v", svc.Name, places[0].Name, err)
			}
			if svc.AntsReason != "CNI-PASSPORT" {
				continue
			}
			appt, err := a.Book(ctx, appointments.HoldRequest{SlotID: slots[0].ID, ServiceID: svc.ID, Units: 1, Lang: "fr"},
				appointments.Details{Email: "alex.martin@example.org", Name: "Alex Martin", AntsIDs: "AB12CD34EF"})
			if err != nil || appt.Status != appointments.StatusConfirmed {
				t.Fatalf("booking %s: %+v %v", svc.Name, appt, err)
			}
		}
	})
}
