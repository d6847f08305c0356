package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

// notes has one action per way of naming whom to notify; each case runs one on a fresh
// resource routed to unit A.
const notes = `
key: notes
title: Notes
states:
  - {key: new, title: Nouvelle, public_label: Reçue, initial: true}
  - {key: seen, title: Vue, public_label: Vue}
actions:
  - {key: unit, title: Unité, from: [new], to: seen, tasks: [{type: notify, config: {unit: resource, template: note}}]}
  - {key: tree, title: Arbre, from: [new], to: seen, tasks: [{type: notify, config: {unit: resource, sub_units: true, template: note}}]}
  - {key: other, title: Autre, from: [new], to: seen, tasks: [{type: notify, config: {unit: UNIT_B, template: note}}]}
  - key: moved
    title: Transférée
    from: [new]
    to: seen
    tasks: [{type: assign, config: {unit: UNIT_B}}, {type: notify, config: {unit: resource, template: note}}]
  - key: assigned
    title: Affectée
    from: [new]
    to: seen
    tasks: [{type: assign, config: {agent: AGENT_C}}, {type: notify, config: {agent: assigned, template: note}}]
  - {key: nobody, title: Personne, from: [new], to: seen, tasks: [{type: notify, config: {agent: assigned, template: note}}]}
  - {key: both, title: Les deux, from: [new], to: seen, tasks: [{type: notify, config: {emails: [A@ville.test, x@ailleurs.test], unit: resource, template: note}}]}
templates:
  note: {subject: "Note {{.Reference}}", body: "Voir {{.Title}}"}
routing:
  default_unit: UNIT_A
`

// TestNotify: the notify task mails the active agents of a unit (the resource's or a named
// one, with sub-units on demand) or the assigned agent, each once and in their language,
// and never the agents of other units.
func TestNotify(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d, false)
			ctx := context.Background()
			sub := f.s.NewUnit(f.org, f.unitA, "Voirie du 11e")
			c := f.s.NewAgentWith(auth.NewAgent{OrgID: f.org, Email: "c@ville.test", Name: "C", Lang: "en", UnitIDs: []int64{sub}})
			gone := f.s.NewAgentWith(auth.NewAgent{OrgID: f.org, Email: "gone@ville.test", Name: "Gone", UnitIDs: []int64{f.unitA}})
			if _, err := f.s.DB.Write().ExecContext(ctx, `UPDATE auth_agents SET active = FALSE WHERE id = ?`, gone.ID); err != nil {
				t.Fatal(err)
			}
			// An agent of another organisation in a unit with the same ID must never show up.
			other := f.s.NewOrg("Autre ville")
			f.s.NewAgentWith(auth.NewAgent{OrgID: other, Email: "z@autre.test", Name: "Z", UnitIDs: []int64{f.s.NewUnit(other, 0, "Z")}})

			doc := strings.NewReplacer("UNIT_A", itoa(f.unitA), "UNIT_B", itoa(f.unitB), "AGENT_C", itoa(c.ID)).Replace(notes)
			bctx := kernel.WithAgent(ctx, f.boss)
			if err := f.s.DB.InTx(bctx, func(tx *store.Tx) error {
				_, err := f.eng.Import(bctx, tx, f.org, []byte(doc), "yaml")
				return err
			}); err != nil {
				t.Fatalf("import: %v", err)
			}

			cases := []struct {
				action string
				want   map[string]string // address → language of the mail
			}{
				{"unit", map[string]string{"a@ville.test": "fr"}},
				{"tree", map[string]string{"a@ville.test": "fr", "c@ville.test": "en"}},
				{"other", map[string]string{"b@ville.test": "fr"}},
				{"moved", map[string]string{"b@ville.test": "fr"}},
				{"assigned", map[string]string{"c@ville.test": "en"}},
				{"nobody", map[string]string{}},
				{"both", map[string]string{"A@ville.test": "fr", "x@ailleurs.test": "fr"}},
			}
			for i, tc := range cases {
				id := fmt.Sprintf("N%d", i)
				f.sample.mu.Lock()
				f.sample.docs[id] = Description{Title: "Note " + id, PublicURL: "/demandes/" + id}
				f.sample.mu.Unlock()
				if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error {
					_, err := f.eng.Attach(ctx, tx, NewResource{Ref: ref(id), OrgID: f.org, Title: "Note " + id}, "notes")
					return err
				}); err != nil {
					t.Fatalf("%s: attach: %v", tc.action, err)
				}
				if _, err := f.eng.Run(ctx, f.boss, ref(id), tc.action, Input{}); err != nil {
					t.Fatalf("%s: run: %v", tc.action, err)
				}
				got := map[string]string{}
				rows, err := f.s.DB.Read().QueryContext(ctx, `SELECT recipients, lang FROM mail_messages WHERE subject = ?`, "Note "+id)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var rcpt, lang string
					if err := rows.Scan(&rcpt, &lang); err != nil {
						t.Fatal(err)
					}
					var to []string
					if err := json.Unmarshal([]byte(rcpt), &to); err != nil || len(to) != 1 {
						t.Errorf("%s: one recipient per mail, got %s", tc.action, rcpt)
					}
					for _, a := range to {
						if _, dup := got[a]; dup {
							t.Errorf("%s: %s mailed twice", tc.action, a)
						}
						got[a] = lang
					}
				}
				rows.Close()
				if !maps.Equal(got, tc.want) {
					t.Errorf("%s: mailed %v, want %v", tc.action, got, tc.want)
				}
			}
			// The history names who was told, or that no one was.
			hist, err := f.eng.History(ctx, ref("N5"), false)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(hist, func(ev Event) bool { return ev.Task == "notify" && ev.Message == "no agent assigned" }) {
				t.Errorf("history of an empty notification: %+v", hist)
			}
		})
	}
}

func TestNotifyDefinition(t *testing.T) {
	v := validator{types: map[string]TaskType{}}
	for _, tt := range builtinTasks() {
		v.types[tt.Name()] = tt
	}
	const head = `{"key":"k","title":"T","states":[{"key":"a","title":"A","public_label":"A","initial":true},{"key":"b","title":"B","public_label":"B"}],"templates":{"n":{"subject":"s","body":"b"}},"actions":[{"key":"go","title":"Go","from":["a"],"to":"b","tasks":[{"type":"notify","config":`
	cases := []struct {
		name, cfg string
		path      string // "" when valid
	}{
		{"unit id", `{"template":"n","unit":3}`, ""},
		{"resource unit", `{"template":"n","unit":"resource","sub_units":true}`, ""},
		{"assigned agent", `{"template":"n","agent":"assigned"}`, ""},
		{"addresses", `{"template":"n","emails":["x@y.test"]}`, ""},
		{"nobody", `{"template":"n"}`, "actions[0].tasks[0].config.emails"},
		{"bad unit", `{"template":"n","unit":"district"}`, "actions[0].tasks[0].config.unit"},
		{"bad agent", `{"template":"n","agent":-2}`, "actions[0].tasks[0].config.agent"},
		{"bad address", `{"template":"n","emails":["nobody"]}`, "actions[0].tasks[0].config.emails"},
	}
	for _, c := range cases {
		d, err := ParseDefinition([]byte(head+c.cfg+`}]}]}`), "json")
		if err == nil {
			err = v.Validate(d)
		}
		if c.path == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", c.name, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || errs.CodeOf(err) != errs.Invalid {
			t.Errorf("%s: %v, want a ValidationError", c.name, err)
			continue
		}
		if !slices.ContainsFunc(ve.Problems, func(p Problem) bool { return p.Path == c.path }) {
			t.Errorf("%s: problems %v lack %q", c.name, ve.Problems, c.path)
		}
	}
}
