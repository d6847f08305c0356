package forms

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"parvis.org/parvis/kernel/store/storetest"
)

// TestBuilderPlace: what a drop in the builder posts (op=place) moves a question within its
// section, into another step, or a step among steps, over HTTP with the page's CSRF token;
// a drop that does not fit is refused with a message and changes nothing.
func TestBuilderPlace(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d)
			ctx := context.Background()
			adm := f.s.ClientAs(f.admin)
			const edit = "/admin/forms/essai/edit"
			layout := func() string {
				t.Helper()
				_, v, err := f.m.loadEdit(ctx, f.org, "essai")
				if err != nil {
					t.Fatal(err)
				}
				var steps []string
				for _, st := range v.Def.Steps {
					var qs []string
					for _, q := range st.Sections[0].Questions {
						qs = append(qs, q.Key)
					}
					steps = append(steps, st.Key+":"+strings.Join(qs, ","))
				}
				return strings.Join(steps, " ")
			}
			page := adm.Get(edit)
			for _, want := range []string{`id="forms-builder-status"`, `aria-live="polite"`, `data-key="email"`, `data-key="step:lieu"`, "/static/forms/builder."} {
				if !strings.Contains(page.Body, want) {
					t.Fatalf("builder page lacks %s", want)
				}
			}
			// The script is served (same origin, so the CSP allows it).
			if m := regexp.MustCompile(`src="(/static/forms/builder\.[0-9a-f]+\.js)"`).FindStringSubmatch(page.Body); m == nil {
				t.Error("no builder script")
			} else if js := adm.Get(m[1]); js.Status != 200 || !strings.Contains(js.Body, `"place"`) {
				t.Errorf("builder script: %d", js.Status)
			}
			const start = "vous:nom,email,pro,siret entreprise:effectif lieu:adresse,plan"
			if got := layout(); got != start {
				t.Fatalf("layout %s", got)
			}
			place := func(key, target, pos string) url.Values {
				return url.Values{"op": {"place"}, "key": {key}, "target": {target}, "pos": {pos}}
			}
			cases := []struct {
				name   string
				form   url.Values
				status int
				layout string
				msg    string // shown on refusal
			}{
				{"before a question", place("pro", "nom", "before"), 303, "vous:pro,nom,email,siret entreprise:effectif lieu:adresse,plan", ""},
				{"after a question", place("pro", "email", "after"), 303, "vous:nom,email,pro,siret entreprise:effectif lieu:adresse,plan", ""},
				{"onto itself", place("nom", "nom", "after"), 303, start, ""},
				{"into another step, next to a question", place("email", "plan", "after"), 303, "vous:nom,pro,siret entreprise:effectif lieu:adresse,plan,email", ""},
				{"to the end of a step", place("email", "step:vous", "after"), 303, "vous:nom,pro,siret,email entreprise:effectif lieu:adresse,plan", ""},
				{"a step after a step", place("step:entreprise", "step:lieu", "after"), 303, "vous:nom,pro,siret,email lieu:adresse,plan entreprise:effectif", ""},
				{"a step before a step", place("step:entreprise", "step:lieu", "before"), 303, "vous:nom,pro,siret,email entreprise:effectif lieu:adresse,plan", ""},
				{"a condition before its question", place("siret", "nom", "before"), 400, "vous:nom,pro,siret,email entreprise:effectif lieu:adresse,plan", ""},
				{"a step next to a question", place("step:lieu", "nom", "before"), 400, "vous:nom,pro,siret,email entreprise:effectif lieu:adresse,plan", "Cet emplacement ne convient pas"},
				{"an unknown question", place("nothing", "nom", "before"), 400, "vous:nom,pro,siret,email entreprise:effectif lieu:adresse,plan", "Cette question n&#39;existe pas"},
				{"an unknown target", place("nom", "nothing", "before"), 400, "vous:nom,pro,siret,email entreprise:effectif lieu:adresse,plan", "Cette question n&#39;existe pas"},
				{"an unknown step", place("step:fin", "step:lieu", "before"), 400, "vous:nom,pro,siret,email entreprise:effectif lieu:adresse,plan", ""},
				{"a bad position", place("nom", "email", "inside"), 400, "vous:nom,pro,siret,email entreprise:effectif lieu:adresse,plan", "Cet emplacement ne convient pas"},
			}
			for _, c := range cases {
				res := adm.Post(edit, c.form)
				if res.Status != c.status {
					t.Fatalf("%s: %d, want %d\n%s", c.name, res.Status, c.status, res.Body)
				}
				if c.status == 303 && res.Location != edit {
					t.Errorf("%s: redirected to %q", c.name, res.Location)
				}
				if c.status == 400 && (!strings.Contains(res.Body, "pv-error-summary") || !strings.Contains(res.Body, `id="forms-builder"`)) {
					t.Errorf("%s: refusal page lacks the error summary or the builder", c.name)
				}
				if c.msg != "" && !strings.Contains(res.Body, c.msg) {
					t.Errorf("%s: refusal page lacks %q", c.name, c.msg)
				}
				if got := layout(); got != c.layout {
					t.Errorf("%s: layout %s, want %s", c.name, got, c.layout)
				}
				adm.Get(edit) // a fresh page, as the script reads its token from the page
			}
			// Without the page's token the move is refused.
			if res := f.s.Client().Post(edit, place("nom", "email", "after")); res.Status == 303 {
				t.Errorf("a post without a session and token was accepted")
			}
		})
	}
}
