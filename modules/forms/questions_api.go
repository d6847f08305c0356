package forms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/web"
)

// Questions is the service the forms module publishes (kernel.Provide[forms.Questions]) for
// modules that ask a form's questions inside their own pages: the appointments module asks
// those of a service before its recap. A town builds the questions with the form builder,
// publishes the form, and names it in the other module's settings; every question type but
// files works, with the same validators and messages as on the forms' own pages.
//
// The questions of every step are shown on one page (steps become headed groups): the
// other module's page is a single step of its own flow, often under a time limit (a held
// appointment slot), so no second navigation is added inside it. Conditions still work: the
// server evaluates them on the posted answers as it does for a whole submission (CheckAll,
// branches included, so answers to skipped steps are dropped), and forms.js shows and hides
// questions in the browser. File and photo questions and repeatable sections need the
// forms' own draft and pages, so forms holding any are not offered as question sets.
//
// Answers travel as map[string]string by question key, so that the other module stores them
// as it stores its own short answers: scalars as the clean text, lists and structured
// answers (multiple choices, addresses, map points, tables) as JSON.
type Questions interface {
	// QuestionSets lists the organisation's published forms usable as question sets, by title.
	QuestionSets(ctx context.Context, orgID int64) ([]QuestionSet, error)
	// QuestionSet describes one; an errs.NotFound error when the form is not published or
	// not usable as a question set.
	QuestionSet(ctx context.Context, orgID int64, key string) (QuestionSet, error)
	// RenderQuestions writes the form's questions as HTML to put inside the caller's
	// <form method="post" novalidate data-forms data-answers="{}">: fields named with
	// e.Prefix, values and errors taken from e.Form, and the script that shows and hides
	// conditional questions.
	RenderQuestions(r *http.Request, orgID int64, key string, e Embed) (template.HTML, error)
	// QuestionValues writes stored answers as the fields of RenderQuestions (to show them again).
	QuestionValues(ctx context.Context, orgID int64, key, prefix string, answers map[string]string) (url.Values, error)
	// ParseAnswers reads and validates posted fields. Problems come as field errors in the
	// error-summary style (web.Form.Fail): Field is the prefixed field name (the summary
	// links to #f-<Field>), Message a locale key and Args its placeholders. The answers
	// are those of the visible questions only.
	ParseAnswers(ctx context.Context, orgID int64, key, prefix string, posted url.Values) (map[string]string, []web.FieldError, error)
	// CheckAnswers validates stored or API-given answers strictly: unknown keys and answers
	// to hidden questions are problems too.
	CheckAnswers(ctx context.Context, orgID int64, key, prefix string, answers map[string]string) ([]web.FieldError, error)
	// DisplayAnswers lists answers as label → value in the form's order, in lang, for
	// recaps, mails and the back office. An answer whose question the published version no
	// longer has keeps its key as label, so that nothing given is hidden.
	DisplayAnswers(ctx context.Context, orgID int64, key, lang string, answers map[string]string) ([]AnswerLine, error)
}

// QuestionSet is a published form offered as a set of questions.
type QuestionSet struct {
	Key     string
	Title   string
	Version int
	Steps   int
}

// Embed says how RenderQuestions fits the caller's page.
type Embed struct {
	// Prefix of the field names and ids ("q_"), so that the form's keys cannot meet the
	// page's own fields: lower-case letters and underscores.
	Prefix string
	// Form holds the values (posted, or from QuestionValues) and the errors (from
	// ParseAnswers) of the caller's page.
	Form *web.Form
	// Heading is the level of the steps' titles (2 when 0, at most 5), shown when the form
	// has several steps; sections' titles are one level below them, or at this level.
	Heading int
}

// AnswerLine is one answer as shown in a summary.
type AnswerLine struct {
	Key, Label, Value string
}

var _ Questions = questionsSvc{}

// questionsSvc implements Questions over the module.
type questionsSvc struct{ m *Module }

// QuestionsService returns the module's Questions service (what Provision publishes).
func (m *Module) QuestionsService() Questions { return questionsSvc{m} }

var qsPrefixRe = regexp.MustCompile(`^[a-z_]{0,20}$`)

// qsUsable reports whether a definition can be asked inside another page.
func qsUsable(d *Definition) bool {
	if d == nil || len(d.Steps) == 0 {
		return false
	}
	for _, st := range d.Steps {
		for _, sec := range st.Sections {
			if sec.Repeat != nil {
				return false
			}
			for _, q := range sec.Questions {
				if q.Type == TFile || q.Type == TPhoto {
					return false
				}
			}
		}
	}
	return true
}

var errNoQuestionSet = errs.New(errs.NotFound, "forms.error.form_not_found")

// set loads the published version of an organisation's form usable as a question set. A
// closed form stays usable: closing stops its own responses, not the questions another
// module asks with it.
func (q questionsSvc) set(ctx context.Context, orgID int64, key string) (Form, *Definition, error) {
	if !keyRe.MatchString(key) {
		return Form{}, nil, errNoQuestionSet
	}
	f, err := getForm(ctx, q.m.db.Read(), orgID, key)
	if err != nil {
		return f, nil, err
	}
	if f.Published == 0 {
		return f, nil, errNoQuestionSet
	}
	d, err := q.m.publishedDef(ctx, f)
	if err != nil {
		return f, nil, err
	}
	if !qsUsable(d) {
		return f, nil, errNoQuestionSet
	}
	return f, d, nil
}

func (q questionsSvc) QuestionSets(ctx context.Context, orgID int64) ([]QuestionSet, error) {
	fs, err := listForms(ctx, q.m.db.Read(), orgID, true)
	if err != nil {
		return nil, err
	}
	var out []QuestionSet
	for _, f := range fs {
		d, err := q.m.publishedDef(ctx, f)
		if err != nil {
			return nil, err
		}
		if qsUsable(d) {
			out = append(out, QuestionSet{Key: f.Key, Title: d.Title, Version: d.Version, Steps: len(d.Steps)})
		}
	}
	return out, nil
}

func (q questionsSvc) QuestionSet(ctx context.Context, orgID int64, key string) (QuestionSet, error) {
	f, d, err := q.set(ctx, orgID, key)
	if err != nil {
		return QuestionSet{}, err
	}
	return QuestionSet{Key: f.Key, Title: d.Title, Version: d.Version, Steps: len(d.Steps)}, nil
}

// --- answers as strings

// qsStructured reports whether answers of type t travel as JSON.
func qsStructured(t string) bool {
	return t == TMulti || t == TAddress || t == TMap || t == TTable
}

// qsEncode writes clean answers as strings.
func qsEncode(d *Definition, a Answers) map[string]string {
	out := make(map[string]string, len(a))
	for k, v := range a {
		loc, ok := d.Question(k)
		if ok && qsStructured(loc.Q.Type) {
			b, _ := json.Marshal(v)
			out[k] = string(b)
			continue
		}
		out[k] = str(v)
	}
	return out
}

// qsDecode reads strings back into raw values (JSON for structured types; a string
// that is not JSON stays a string, which the checker refuses with "type").
func qsDecode(d *Definition, in map[string]string) map[string]any {
	out := make(map[string]any, len(in))
	for k, s := range in {
		loc, ok := d.Question(k)
		if ok && qsStructured(loc.Q.Type) {
			var v any
			if err := json.Unmarshal([]byte(s), &v); err == nil {
				out[k] = v
				continue
			}
		}
		out[k] = s
	}
	return out
}

func qsFieldErrors(prefix string, ps []Problem) []web.FieldError {
	out := make([]web.FieldError, 0, len(ps))
	for _, p := range ps {
		out = append(out, web.FieldError{Field: prefix + p.Path, Message: p.Key, Args: p.Args})
	}
	return out
}

func (q questionsSvc) QuestionValues(ctx context.Context, orgID int64, key, prefix string, answers map[string]string) (url.Values, error) {
	_, d, err := q.set(ctx, orgID, key)
	if err != nil {
		return nil, err
	}
	a := Answers{}
	for k, v := range qsDecode(d, answers) {
		a[k] = d.restore(k, v)
	}
	out := url.Values{}
	for si := range d.Steps {
		for k, v := range valuesOf(d, &d.Steps[si], a) {
			out[prefix+k] = v
		}
	}
	return out, nil
}

func (q questionsSvc) ParseAnswers(ctx context.Context, orgID int64, key, prefix string, posted url.Values) (map[string]string, []web.FieldError, error) {
	_, d, err := q.set(ctx, orgID, key)
	if err != nil {
		return nil, nil, err
	}
	// The form's own fields, without the prefix; the page's other fields are not ours.
	vals := url.Values{}
	for k, v := range posted {
		if rest, ok := strings.CutPrefix(k, prefix); ok && rest != "" {
			vals[rest] = v
		}
	}
	in := map[string]any{}
	all := func(*Section, *Question) bool { return true }
	for si := range d.Steps {
		raw, _ := rawOf(d, &d.Steps[si], vals, all)
		for k, v := range raw {
			in[k] = v
		}
	}
	got, ps := d.CheckAll(in, q.m.today(), false)
	if len(ps) > 0 {
		return nil, qsFieldErrors(prefix, ps), nil
	}
	return qsEncode(d, got), nil, nil
}

func (q questionsSvc) CheckAnswers(ctx context.Context, orgID int64, key, prefix string, answers map[string]string) ([]web.FieldError, error) {
	_, d, err := q.set(ctx, orgID, key)
	if err != nil {
		return nil, err
	}
	_, ps := d.CheckAll(qsDecode(d, answers), q.m.today(), true)
	return qsFieldErrors(prefix, ps), nil
}

func (q questionsSvc) DisplayAnswers(ctx context.Context, orgID int64, key, lang string, answers map[string]string) ([]AnswerLine, error) {
	_, d, err := q.set(ctx, orgID, key)
	if err != nil {
		return nil, err
	}
	a := Answers{}
	var unknown []string
	for k, v := range qsDecode(d, answers) {
		if _, ok := d.Question(k); !ok {
			unknown = append(unknown, k)
			continue
		}
		a[k] = d.restore(k, v)
	}
	var out []AnswerLine
	for _, l := range d.Lines(a, q.m.t(lang, "forms.yes"), q.m.t(lang, "forms.no")) {
		out = append(out, AnswerLine{Key: l.Key, Label: l.Label, Value: l.Value})
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		out = append(out, AnswerLine{Key: k, Label: k, Value: answers[k]})
	}
	return out, nil
}

// --- rendering

type embedStep struct {
	Title    string
	If       string
	Sections []sectionView
}

// condPrefixed copies a condition with its fields renamed as the page's fields (for forms.js).
func condPrefixed(c *Condition, prefix string) *Condition {
	if c == nil {
		return nil
	}
	out := *c
	if out.Field != "" {
		out.Field = prefix + out.Field
	}
	out.All, out.Any = nil, nil
	for _, x := range c.All {
		out.All = append(out.All, condPrefixed(x, prefix))
	}
	for _, x := range c.Any {
		out.Any = append(out.Any, condPrefixed(x, prefix))
	}
	return &out
}

func condJSON(c *Condition, prefix string) string {
	if c == nil {
		return ""
	}
	b, _ := json.Marshal(condPrefixed(c, prefix))
	return string(b)
}

func (q questionsSvc) RenderQuestions(r *http.Request, orgID int64, key string, e Embed) (template.HTML, error) {
	if !qsPrefixRe.MatchString(e.Prefix) {
		return "", fmt.Errorf("forms: embed prefix %q: lower-case letters and underscores only", e.Prefix)
	}
	_, d, err := q.set(r.Context(), orgID, key)
	if err != nil {
		return "", err
	}
	form := e.Form
	if form == nil {
		form = web.NewForm(nil)
	}
	m := q.m
	// The stored-answers view of the posted values (the rows of a table are counted on it).
	vals := url.Values{}
	for k, v := range form.Values {
		if rest, ok := strings.CutPrefix(k, e.Prefix); ok && rest != "" {
			vals[rest] = v
		}
	}
	answers := Answers{}
	all := func(*Section, *Question) bool { return true }
	for si := range d.Steps {
		raw, _ := rawOf(d, &d.Steps[si], vals, all)
		for k, v := range raw {
			answers[k] = v
		}
	}
	// The questions are built as on the forms' own pages (fill.go), with the prefix.
	qb := m.newQBuilder(m.lang(r), form, answers)
	build := func(qu *Question) qview {
		qv := qb.build(qu, e.Prefix)
		qv.If = condJSON(qu.If, e.Prefix)
		return qv
	}
	var steps []embedStep
	for si := range d.Steps {
		st := &d.Steps[si]
		es := embedStep{If: condJSON(st.If, e.Prefix)}
		if len(d.Steps) > 1 {
			es.Title = st.Title
		}
		for ci := range st.Sections {
			sec := &st.Sections[ci]
			sv := sectionView{Sec: sec, ID: "f-" + e.Prefix + sec.Key, If: condJSON(sec.If, e.Prefix)}
			for qi := range sec.Questions {
				sv.Qs = append(sv.Qs, build(&sec.Questions[qi]))
			}
			es.Sections = append(es.Sections, sv)
		}
		steps = append(steps, es)
	}
	h := e.Heading
	if h == 0 {
		h = 2
	}
	h = min(max(h, 2), 5)
	sh := h // sections' titles: one level below the steps' when those are shown
	if len(d.Steps) > 1 {
		sh = h + 1
	}
	data := map[string]any{"V": m.views.NewView(r, web.Page{Form: form}), "H": h, "SH": sh, "Steps": steps}
	if m.views.Assets != nil { // conditions shown and hidden, maps: forms.js
		data["Script"] = m.views.Assets.URL("forms/forms.js")
	}
	var buf bytes.Buffer
	// templates/partials/embed.html: the steps and sections around the question partial.
	if err := m.views.ExecutePartial(&buf, ID, "forms-embed", data); err != nil {
		return "", fmt.Errorf("forms: render questions of %s: %w", key, err)
	}
	return template.HTML(buf.String()), nil //nolint:gosec // built by html/template from escaped parts
}
