package forms

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// threeSteps is the form of the scenarios: a condition inside a step, a branch that skips a
// step, a repeatable section, and a file question.
const threeSteps = `
key: essai
title: Demande d'essai
settings: {email_question: email, columns: [nom]}
steps:
  - key: vous
    title: Vous
    sections:
      - key: s1
        questions:
          - {key: nom, type: text, label: Nom, required: true}
          - {key: email, type: email, label: Courriel, required: true}
          - {key: pro, type: yesno, label: Professionnel ?, required: true}
          - {key: siret, type: siret, label: SIRET, required: true, if: {field: pro, op: eq, value: "yes"}}
    next:
      - {if: {field: pro, op: eq, value: "no"}, goto: lieu}
  - key: entreprise
    title: Entreprise
    sections:
      - key: s2
        questions:
          - {key: effectif, type: number, label: Effectif, required: true, min: 1}
  - key: lieu
    title: Lieu
    sections:
      - key: s3
        questions:
          - {key: adresse, type: address, label: Adresse, required: true}
          - {key: plan, type: file, label: Plan, accept: [application/pdf]}
      - key: objets
        title: Objet
        repeat: {min: 1, max: 3}
        questions:
          - {key: quoi, type: text, label: Quoi, required: true}
`

func mustDef(t testing.TB, doc string) *Definition {
	t.Helper()
	d, err := ParseDefinition([]byte(doc), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConditions(t *testing.T) {
	a := Answers{"n": 12.0, "s": "Paris", "m": []string{"a", "b"}, "e": "", "d": "2026-03-02", "y": "yes"}
	cases := []struct {
		c    Condition
		want bool
	}{
		{Condition{Field: "n", Op: "eq", Value: "12"}, true},
		{Condition{Field: "n", Op: "gt", Value: 10.0}, true},
		{Condition{Field: "n", Op: "lt", Value: "10"}, false},
		{Condition{Field: "s", Op: "ne", Value: "Lyon"}, true},
		{Condition{Field: "s", Op: "contains", Value: "ari"}, true},
		{Condition{Field: "s", Op: "in", Values: []any{"Lyon", "Paris"}}, true},
		{Condition{Field: "m", Op: "contains", Value: "b"}, true},
		{Condition{Field: "m", Op: "eq", Value: "a"}, false},
		{Condition{Field: "e", Op: "empty"}, true},
		{Condition{Field: "missing", Op: "empty"}, true},
		{Condition{Field: "missing", Op: "eq", Value: ""}, false},
		{Condition{Field: "missing", Op: "gt", Value: "0"}, false},
		{Condition{Field: "d", Op: "gt", Value: "2026-01-01"}, true},
		{Condition{Field: "y", Op: "eq", Value: true}, true},
		{Condition{All: []*Condition{{Field: "s", Op: "eq", Value: "Paris"}, {Field: "n", Op: "lt", Value: 5.0}}}, false},
		{Condition{Any: []*Condition{{Field: "s", Op: "eq", Value: "Lyon"}, {Field: "n", Op: "gt", Value: 5.0}}}, true},
		{Condition{Any: []*Condition{{All: []*Condition{{Field: "s", Op: "eq", Value: "Paris"}, {Field: "y", Op: "eq", Value: "yes"}}}, {Field: "e", Op: "not_empty"}}}, true},
	}
	for i, c := range cases {
		if got := c.c.Holds(a); got != c.want {
			t.Errorf("case %d %+v: %v", i, c.c, got)
		}
	}
}

func TestPathAndHidden(t *testing.T) {
	d := mustDef(t, threeSteps)
	today := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	if p := d.Path(Answers{"pro": "no"}); len(p) != 2 || p[1] != 2 {
		t.Errorf("branch: %v", p)
	}
	if p := d.Path(Answers{"pro": "yes"}); len(p) != 3 {
		t.Errorf("no branch: %v", p)
	}
	base := map[string]any{"nom": "Léa", "email": "lea@example.org", "pro": "no",
		"adresse": map[string]any{"street": "1 rue de la Roquette", "postcode": "75011", "town": "Paris"},
		"objets":  []any{map[string]any{"quoi": "armoire"}}}
	got, ps := d.CheckAll(base, today, true)
	if len(ps) > 0 || got["siret"] != nil || got["effectif"] != nil {
		t.Fatalf("valid submission: %v %v", got, ps)
	}
	// Strict (API): answers to a hidden question, to a skipped step, or to an unknown key.
	for name, extra := range map[string]map[string]any{
		"hidden question": {"siret": "73282932000074"},
		"skipped step":    {"effectif": 3.0},
		"unknown":         {"couleur": "rouge"},
	} {
		in := map[string]any{}
		for k, v := range base {
			in[k] = v
		}
		for k, v := range extra {
			in[k] = v
		}
		_, ps := d.CheckAll(in, today, true)
		if len(ps) != 1 {
			t.Errorf("%s: problems %+v", name, ps)
		}
	}
	// Not strict (a browser without JavaScript): hidden answers are dropped, not stored.
	in := map[string]any{"siret": "garbage"}
	for k, v := range base {
		in[k] = v
	}
	got, ps = d.CheckAll(in, today, false)
	if len(ps) > 0 || got["siret"] != nil {
		t.Errorf("hidden answer kept or validated: %v %v", got, ps)
	}
	// Visible: validated.
	in["pro"] = "yes"
	_, ps = d.CheckAll(in, today, false)
	codes := map[string]string{}
	for _, p := range ps {
		codes[p.Path] = p.Code
	}
	if codes["siret"] != "siret" || codes["effectif"] != "required" {
		t.Errorf("visible questions not checked: %+v", ps)
	}
	// Repeat bounds.
	in = map[string]any{}
	for k, v := range base {
		in[k] = v
	}
	in["objets"] = []any{map[string]any{"quoi": "a"}, map[string]any{"quoi": "b"}, map[string]any{"quoi": "c"}, map[string]any{"quoi": "d"}}
	if _, ps := d.CheckAll(in, today, true); len(ps) != 1 || ps[0].Code != "too_many_items" {
		t.Errorf("repeat max: %+v", ps)
	}
}

func TestDefinitionProblems(t *testing.T) {
	bad := []struct {
		name, doc string
		paths     []string
	}{
		{"bad key and type", `{"key":"Bad Key","title":"T","steps":[{"key":"a","title":"A","sections":[{"key":"s","questions":[{"key":"q","type":"teleport","label":"Q"}]}]}]}`,
			[]string{"key", "steps[0].sections[0].questions[0].type"}},
		{"condition looks ahead", `{"key":"k","title":"T","steps":[{"key":"a","title":"A","sections":[{"key":"s","questions":[{"key":"q","type":"text","label":"Q","if":{"field":"later","op":"eq","value":"x"}},{"key":"later","type":"text","label":"L"}]}]}]}`,
			[]string{"steps[0].sections[0].questions[0].if.field"}},
		{"branch backwards", `{"key":"k","title":"T","steps":[{"key":"a","title":"A","sections":[{"key":"s","questions":[{"key":"q","type":"text","label":"Q"}]}]},{"key":"b","title":"B","next":[{"if":{"field":"q","op":"empty"},"goto":"a"}],"sections":[{"key":"s2","questions":[{"key":"r","type":"text","label":"R"}]}]}]}`,
			[]string{"steps[1].next[0].goto"}},
		{"duplicate keys", `{"key":"k","title":"T","steps":[{"key":"a","title":"A","sections":[{"key":"s","questions":[{"key":"q","type":"text","label":"Q"},{"key":"q","type":"text","label":"Q"}]}]}]}`,
			[]string{"steps[0].sections[0].questions[1].key"}},
		{"choice without options, bad op", `{"key":"k","title":"T","steps":[{"key":"a","title":"A","sections":[{"key":"s","questions":[{"key":"q","type":"choice","label":"Q"},{"key":"r","type":"text","label":"R","if":{"field":"q","op":"like"}}]}]}]}`,
			[]string{"steps[0].sections[0].questions[0].options", "steps[0].sections[0].questions[1].if.op"}},
		{"bad pattern and dates", `{"key":"k","title":"T","steps":[{"key":"a","title":"A","sections":[{"key":"s","questions":[{"key":"q","type":"text","label":"Q","pattern":"(["},{"key":"d","type":"date","label":"D","min_date":"tomorrow"}]}]}]}`,
			[]string{"steps[0].sections[0].questions[0].pattern", "steps[0].sections[0].questions[1].min_date"}},
		{"unknown field", `{"key":"k","title":"T","steps":[],"colour":"red"}`, []string{"colour"}},
		{"wrong type", `{"key":"k","title":"T","steps":{"a":1}}`, []string{"steps"}},
		{"no steps", `{"key":"k","title":"T","steps":[]}`, []string{"steps"}},
		{"bad yaml", "key: [", []string{""}},
	}
	for _, c := range bad {
		d, err := ParseDefinition([]byte(c.doc), "")
		if err == nil {
			err = d.Validate()
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: %v, want a ValidationError", c.name, err)
			continue
		}
		var paths []string
		for _, p := range ve.Problems {
			paths = append(paths, p.Path)
		}
		for _, want := range c.paths {
			if !strings.Contains(","+strings.Join(paths, ",")+",", ","+want+",") {
				t.Errorf("%s: problems %v lack path %q", c.name, paths, want)
			}
		}
	}
	// Both shipped examples are valid, and survive a JSON/YAML round trip.
	for _, name := range []string{"bulky", "terrace"} {
		b, _ := Example(name, 0)
		bundle, err := ParseBundle(b, "yaml")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := bundle.Form.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		y, _ := bundle.Form.Marshal("yaml")
		d2, err := ParseDefinition(y, "yaml")
		if err != nil || d2.Validate() != nil || len(d2.Steps) != len(bundle.Form.Steps) {
			t.Errorf("%s round trip: %v", name, err)
		}
	}
}
