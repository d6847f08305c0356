package forms

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
	"parvis.org/parvis/kernel/web"
)

// questionSetDoc is a form asked inside another module's page: two steps, a condition, every
// embeddable kind of answer.
const questionSetDoc = `
key: rdv_questions
title: Questions du rendez-vous
steps:
  - key: vous
    title: Vous
    sections:
      - key: contact
        title: Contact
        questions:
          - {key: courriel, type: email, label: Courriel de contact, required: true}
          - {key: enfants, type: number, label: Nombre d'enfants, required: true, min: 0, max: 6}
          - {key: pro, type: yesno, label: Professionnel ?, required: true}
          - {key: societe, type: text, label: Société, required: true, if: {field: pro, op: eq, value: "yes"}}
  - key: details
    title: Détails
    sections:
      - key: d1
        questions:
          - {key: pieces, type: multi, label: Pièces, options: [{value: cni, label: Carte d'identité}, {value: passeport, label: Passeport}]}
          - {key: adresse, type: address, label: Adresse}
          - {key: naissance, type: date, label: Date de naissance}
          - {key: tel, type: phone, label: Téléphone, phone: fr}
          - {key: enfants_liste, type: table, label: Enfants, columns: [{value: prenom, label: Prénom}, {value: age, label: Âge}]}
          - {key: lieu, type: map, label: Lieu de naissance}
`

const withFileDoc = `
key: avec_fichier
title: Avec un fichier
steps:
  - key: a
    title: A
    sections:
      - key: s
        questions:
          - {key: piece, type: file, label: Pièce}
`

const draftOnlyDoc = `
key: brouillon
title: Brouillon
steps:
  - key: a
    title: A
    sections:
      - key: s
        questions:
          - {key: x, type: text, label: X}
`

// TestQuestionsService runs the service the module publishes for other modules: only
// published forms without files are offered; the questions render with the forms' partial,
// prefixed; bad answers are refused with the forms' messages on prefixed fields; good ones
// come back as strings that check again strictly, refill the page and display as labels.
func TestQuestionsService(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) { testQuestionsService(t, d) })
	}
}

func testQuestionsService(t *testing.T, d store.Dialect) {
	clk := &testClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	s := servertest.New(t, d, servertest.Options{Clock: clk})
	var m *Module
	var q Questions
	for _, in := range s.Modules {
		if mm, ok := in.Module.(*Module); ok {
			m = mm
			q, _ = kernel.Service[Questions](in.Env)
		}
	}
	if m == nil || q == nil {
		t.Fatal("the forms module does not publish forms.Questions")
	}
	org := s.DefaultOrg()
	admin := s.NewAgent(org, "admin@ville.test", PermManage, PermResponses)
	ctx := kernel.WithAgent(context.Background(), admin)
	for _, doc := range []string{questionSetDoc, withFileDoc, draftOnlyDoc} {
		def := mustDef(t, doc)
		if err := s.DB.InTx(ctx, func(tx *store.Tx) error { _, err := m.SaveForm(ctx, tx, org, def); return err }); err != nil {
			t.Fatal(err)
		}
		if def.Key != "brouillon" {
			if _, err := m.Publish(ctx, org, def.Key); err != nil {
				t.Fatal(err)
			}
		}
	}

	sets, err := q.QuestionSets(ctx, org)
	if err != nil || len(sets) != 1 || sets[0].Key != "rdv_questions" || sets[0].Steps != 2 {
		t.Fatalf("question sets: %+v %v", sets, err)
	}
	for _, key := range []string{"avec_fichier", "brouillon", "inconnu", "../x"} {
		if _, err := q.QuestionSet(ctx, org, key); errs.CodeOf(err) != errs.NotFound {
			t.Errorf("question set %q: %v, want not found", key, err)
		}
	}
	if _, err := q.QuestionSet(ctx, s.NewOrg("Autre ville"), "rdv_questions"); errs.CodeOf(err) != errs.NotFound {
		t.Errorf("another town's form: %v", err)
	}

	// Rendering: the forms' partial, field names prefixed, conditions renamed for forms.js.
	r := httptest.NewRequest("GET", "/", nil)
	html, err := q.RenderQuestions(r, org, "rdv_questions", Embed{Prefix: "q_", Form: web.NewForm(url.Values{"q_courriel": {"lea@example.fr"}})})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`name="q_courriel"`, `id="f-q_courriel"`, `value="lea@example.fr"`, `type="email"`, `inputmode="decimal"`,
		`name="q_pro"`, `name="q_naissance-day"`, `name="q_adresse.postcode"`, `name="q_enfants_liste[1].age"`, `name="q_pieces"`, `name="q_lieu.address"`,
		`&#34;field&#34;:&#34;q_pro&#34;`, `<h2>Vous</h2>`, `<h3>Contact</h3>`, `<script src="/static/forms/forms.`, `(facultatif)`} {
		if !strings.Contains(string(html), want) {
			t.Errorf("rendered questions lack %s", want)
		}
	}
	// The rows of a table given so far, and two empty ones.
	rows := url.Values{}
	for i := range 3 {
		rows.Set(fmt.Sprintf("q_enfants_liste[%d].prenom", i), "Enfant")
	}
	if html, err := q.RenderQuestions(r, org, "rdv_questions", Embed{Prefix: "q_", Form: web.NewForm(rows)}); err != nil ||
		!strings.Contains(string(html), `name="q_enfants_liste[4].prenom"`) || strings.Contains(string(html), `name="q_enfants_liste[5].prenom"`) {
		t.Errorf("table rows: %v", err)
	}
	if _, err := q.RenderQuestions(r, org, "rdv_questions", Embed{Prefix: `x" onload="`}); err == nil {
		t.Error("a prefix that is not a plain name is accepted")
	}

	// Bad answers: each refused with the forms' message, on its prefixed field.
	bad := url.Values{"q_courriel": {"pas-une-adresse"}, "q_enfants": {"9"}, "q_pro": {"yes"}, "q_tel": {"12"},
		"q_naissance-day": {"31"}, "q_naissance-month": {"2"}, "q_naissance-year": {"2020"}}
	got, fes, err := q.ParseAnswers(ctx, org, "rdv_questions", "q_", bad)
	if err != nil || got != nil {
		t.Fatalf("bad answers: %v %v", got, err)
	}
	want := map[string]string{"q_courriel": "forms.error.email", "q_enfants": "forms.error.max", "q_societe": "forms.error.required",
		"q_tel": "forms.error.phone_fr", "q_naissance": "forms.error.date"}
	for _, fe := range fes {
		if want[fe.Field] == fe.Message {
			delete(want, fe.Field)
		}
	}
	if len(want) > 0 {
		t.Errorf("problems missing: %v (got %+v)", want, fes)
	}
	for _, fe := range fes {
		if fe.Field == "q_enfants" && (len(fe.Args) != 2 || fe.Args[1] != "6") {
			t.Errorf("max problem args %v", fe.Args)
		}
	}
	if _, fes, _ := q.ParseAnswers(ctx, org, "rdv_questions", "q_", url.Values{"q_courriel": {"a@b.fr"}, "q_enfants": {"-1"}, "q_pro": {"no"}}); len(fes) != 1 ||
		fes[0].Field != "q_enfants" || fes[0].Message != "forms.error.min" {
		t.Errorf("below the minimum: %+v", fes)
	}

	// Good answers; the hidden question's answer is dropped.
	good := url.Values{"q_courriel": {"Lea@Example.FR"}, "q_enfants": {"2"}, "q_pro": {"no"}, "q_societe": {"ignorée"},
		"q_pieces": {"cni", "passeport"}, "q_adresse.street": {"1 place de la Mairie"}, "q_adresse.postcode": {"75011"}, "q_adresse.town": {"Paris"},
		"q_naissance-day": {"14"}, "q_naissance-month": {"7"}, "q_naissance-year": {"1990"}, "q_tel": {"01 23 45 67 89"},
		"q_enfants_liste[0].prenom": {"Zoé"}, "q_enfants_liste[0].age": {"4"}, "name": {"not ours"}}
	got, fes, err = q.ParseAnswers(ctx, org, "rdv_questions", "q_", good)
	if err != nil || len(fes) > 0 {
		t.Fatalf("good answers refused: %+v %v", fes, err)
	}
	if got["courriel"] != "Lea@example.fr" || got["enfants"] != "2" || got["pro"] != "no" || got["naissance"] != "1990-07-14" ||
		got["pieces"] != `["cni","passeport"]` || got["tel"] != "+33123456789" || !strings.Contains(got["adresse"], `"postcode":"75011"`) {
		t.Errorf("answers %v", got)
	}
	if _, ok := got["societe"]; ok {
		t.Error("the answer to the hidden question is kept")
	}
	if _, ok := got["name"]; ok {
		t.Error("a field of the page was taken as an answer")
	}
	// The stored strings check again, strictly; forged ones do not.
	if fes, err := q.CheckAnswers(ctx, org, "rdv_questions", "q_", got); err != nil || len(fes) > 0 {
		t.Errorf("stored answers do not check again: %+v %v", fes, err)
	}
	for name, forged := range map[string]map[string]string{
		"unknown key":   {"courriel": "a@b.fr", "enfants": "1", "pro": "no", "autre": "x"},
		"hidden answer": {"courriel": "a@b.fr", "enfants": "1", "pro": "no", "societe": "x"},
		"not JSON":      {"courriel": "a@b.fr", "enfants": "1", "pro": "no", "adresse": "1 rue de Paris"},
		"bad choice":    {"courriel": "a@b.fr", "enfants": "1", "pro": "no", "pieces": `["visa"]`},
		"missing":       {"courriel": "a@b.fr", "pro": "no"},
	} {
		if fes, err := q.CheckAnswers(ctx, org, "rdv_questions", "q_", forged); err != nil || len(fes) == 0 || !strings.HasPrefix(fes[0].Field, "q_") {
			t.Errorf("%s: %+v %v", name, fes, err)
		}
	}
	// The page filled again from the stored answers.
	vals, err := q.QuestionValues(ctx, org, "rdv_questions", "q_", got)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"q_courriel": "Lea@example.fr", "q_naissance-day": "14", "q_naissance-year": "1990", "q_adresse.town": "Paris",
		"q_enfants_liste[0].prenom": "Zoé", "q_pro": "no"} {
		if vals.Get(k) != v {
			t.Errorf("value of %s: %q, want %q", k, vals.Get(k), v)
		}
	}
	if len(vals["q_pieces"]) != 2 {
		t.Errorf("multiple choice refilled as %v", vals["q_pieces"])
	}
	// Display: labels and values in the form's order, in the reader's language.
	lines, err := q.DisplayAnswers(ctx, org, "rdv_questions", "fr", got)
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, l := range lines {
		text = append(text, l.Label+" = "+l.Value)
	}
	joined := strings.Join(text, "\n")
	for _, want := range []string{"Courriel de contact = Lea@example.fr\nNombre d'enfants = 2\nProfessionnel ? = Non", "Pièces = Carte d'identité, Passeport",
		"Adresse = 1 place de la Mairie, 75011 Paris", "Date de naissance = 14/07/1990", "Enfants = Prénom : Zoé, Âge : 4"} {
		if !strings.Contains(joined, want) {
			t.Errorf("display lacks %q:\n%s", want, joined)
		}
	}
	if lines, _ := q.DisplayAnswers(ctx, org, "rdv_questions", "en", map[string]string{"pro": "yes", "ancienne": "gardée"}); len(lines) != 2 ||
		lines[0].Value != "Yes" || lines[1].Label != "ancienne" {
		t.Errorf("display in English with an answer no question names: %+v", lines)
	}
	// A closed form still serves as a question set (closing stops its own responses).
	if err := m.Close(ctx, org, "rdv_questions"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.QuestionSet(ctx, org, "rdv_questions"); err != nil {
		t.Errorf("closed form: %v", err)
	}
}
