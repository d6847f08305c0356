package appointments

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/web"
	"parvis.org/parvis/modules/forms"
)

// The questions asked to the citizen before the recap. A service names a form built with the
// forms builder (Service.FormKey); the forms module, through the service it publishes
// (kernel.Service[forms.Questions]), renders its questions inside the questions page,
// validates the answers with its own validators and messages, and writes them back as label
// and value for the recap, the agent's page and the mails. The answers are stored with the
// appointment as its inline answers are (a map of strings by question key).
//
// The inline list (Service.Questions) stays the fallback: for a service naming no form, and
// when the forms module is not part of the binary or the form is no longer published.

// questionPrefix names the answers' fields in the page (q_<key>), apart from the page's own.
const questionPrefix = "q_"

var formKeyRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// formQuestions returns the forms module's service, when that module is present.
func (m *Module) formQuestions() (forms.Questions, bool) {
	if m.env == nil {
		return nil, false
	}
	return kernel.Service[forms.Questions](m.env)
}

// questionSet returns the forms' service when the service's form can be used now; false
// means the inline list applies.
func (m *Module) questionSet(ctx context.Context, s *Service) (forms.Questions, bool) {
	if s.FormKey == "" {
		return nil, false
	}
	q, ok := m.formQuestions()
	if !ok {
		return nil, false
	}
	if _, err := q.QuestionSet(ctx, s.OrgID, s.FormKey); err != nil {
		if errs.CodeOf(err) != errs.NotFound {
			m.log.Error("appointments: question set", "service", s.ID, "form", s.FormKey, "err", err)
		} else {
			m.log.Warn("appointments: the service's form is not available, its inline questions are asked", "service", s.ID, "form", s.FormKey)
		}
		return nil, false
	}
	return q, true
}

// bindForm gives a loaded service the check of its form's answers (booking.go's
// checkDetails calls it through Service.checkAnswers).
func (m *Module) bindForm(s *Service) {
	if s.FormKey == "" {
		return
	}
	org, key := s.OrgID, s.FormKey
	s.formCheck = func(answers map[string]string) (bool, error) {
		q, ok := m.formQuestions()
		if !ok {
			return false, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		fes, err := q.CheckAnswers(ctx, org, key, questionPrefix, answers)
		if errs.CodeOf(err) == errs.NotFound {
			return false, nil
		}
		if err != nil {
			return true, err
		}
		if len(fes) > 0 {
			return true, errs.OnField(errs.Invalid, fes[0].Field, fes[0].Message, fes[0].Args...)
		}
		return true, nil
	}
}

// checkAnswers validates the answers against the service's form, or its inline questions.
func (s *Service) checkAnswers(answers map[string]string) error {
	if s.formCheck != nil {
		if handled, err := s.formCheck(answers); handled {
			return err
		}
	}
	for _, q := range s.Questions {
		v := strings.TrimSpace(answers[q.Key])
		if q.Required && v == "" {
			return errs.OnField(errs.Invalid, questionPrefix+q.Key, "appointments.error.required")
		}
		if q.Kind == "choice" && v != "" {
			ok := false
			for _, c := range q.Choices {
				ok = ok || c == v
			}
			if !ok {
				return errs.OnField(errs.Invalid, questionPrefix+q.Key, "appointments.error.choice")
			}
		}
		if len(v) > 2000 {
			return errs.OnField(errs.Invalid, questionPrefix+q.Key, "appointments.error.too_long")
		}
	}
	return nil
}

// questionValues writes stored answers as the page's fields.
func (m *Module) questionValues(ctx context.Context, s *Service, answers map[string]string, into url.Values) error {
	if q, ok := m.questionSet(ctx, s); ok {
		vals, err := q.QuestionValues(ctx, s.OrgID, s.FormKey, questionPrefix, answers)
		if err != nil {
			return err
		}
		for k, v := range vals {
			into[k] = v
		}
		return nil
	}
	for k, x := range answers {
		into.Set(questionPrefix+k, x)
	}
	return nil
}

// parseAnswers reads the posted answers. With a form, its problems are returned as field
// errors (all of them); the inline list is checked by SaveDetails.
func (m *Module) parseAnswers(ctx context.Context, s *Service, f *web.Form) (map[string]string, []web.FieldError, error) {
	if q, ok := m.questionSet(ctx, s); ok {
		return q.ParseAnswers(ctx, s.OrgID, s.FormKey, questionPrefix, f.Values)
	}
	out := map[string]string{}
	for _, q := range s.Questions {
		out[q.Key] = f.Get(questionPrefix + q.Key)
	}
	return out, nil, nil
}

// formQuestionsHTML is the form's questions for the questions page ("" for the inline list).
func (m *Module) formQuestionsHTML(r *http.Request, s *Service, f *web.Form) (template.HTML, error) {
	q, ok := m.questionSet(r.Context(), s)
	if !ok {
		return "", nil
	}
	return q.RenderQuestions(r, s.OrgID, s.FormKey, forms.Embed{Prefix: questionPrefix, Form: f})
}

// AnswerLine is one answer as the recap, the agent's page and the mails show it.
type AnswerLine struct{ Key, Label, Value string }

// answerLines lists an appointment's answers as label and value, in the questions' order.
// Answers no question names any more keep their key as label: nothing given is hidden.
func (m *Module) answerLines(ctx context.Context, s *Service, answers map[string]string, lang string) []AnswerLine {
	if len(answers) == 0 {
		return nil
	}
	if q, ok := m.questionSet(ctx, s); ok {
		ls, err := q.DisplayAnswers(ctx, s.OrgID, s.FormKey, lang, answers)
		if err == nil {
			out := make([]AnswerLine, len(ls))
			for i, l := range ls {
				out[i] = AnswerLine{Key: l.Key, Label: l.Label, Value: l.Value}
			}
			return out
		}
		m.log.Error("appointments: display answers", "service", s.ID, "err", err)
	}
	var out []AnswerLine
	seen := map[string]bool{}
	for _, q := range s.Questions {
		seen[q.Key] = true
		if v := answers[q.Key]; v != "" {
			out = append(out, AnswerLine{Key: q.Key, Label: q.Label, Value: v})
		}
	}
	var rest []string
	for k, v := range answers {
		if !seen[k] && v != "" {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		out = append(out, AnswerLine{Key: k, Label: k, Value: answers[k]})
	}
	return out
}

// answerLinesOf is answerLines for an appointment whose service is to be loaded.
func (m *Module) answerLinesOf(ctx context.Context, a *Appointment, lang string) []AnswerLine {
	if len(a.Answers) == 0 {
		return nil
	}
	s, err := m.cachedService(ctx, a.ServiceID)
	if err != nil {
		return m.answerLines(ctx, &Service{ID: a.ServiceID, OrgID: a.OrgID}, a.Answers, lang)
	}
	return m.answerLines(ctx, &s, a.Answers, lang)
}

// formOptions are the choices of the service form's "questions" field: the inline list, the
// forms usable as question sets, and the current form when it no longer is (kept on save).
func (m *Module) formOptions(ctx context.Context, org int64, lang, current string) ([]map[string]string, bool) {
	q, ok := m.formQuestions()
	if !ok {
		return nil, false
	}
	opts := []map[string]string{{"Value": "", "Label": m.i18n.T(lang, "appointments.sf.form_inline")}}
	sets, err := q.QuestionSets(ctx, org)
	if err != nil {
		m.log.Error("appointments: question sets", "err", err)
	}
	found := current == ""
	for _, st := range sets {
		found = found || st.Key == current
		opts = append(opts, map[string]string{"Value": st.Key, "Label": st.Title})
	}
	if !found {
		opts = append(opts, map[string]string{"Value": current, "Label": m.i18n.T(lang, "appointments.sf.form_unavailable", "key", current)})
	}
	return opts, true
}
