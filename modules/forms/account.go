package forms

import (
	"context"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
	"parvis.org/parvis/modules/workflow"
)

// The citizen's "my requests" pages: the list, one request with its public status, history
// and message thread, the receipt, and the correction page a workflow asks for.

// owner is who the request's browser proves to be: a citizen account, or a verified email.
func (m *Module) owner(r *http.Request) (id int64, email string, ok bool) {
	if cz := kernel.CitizenFrom(r.Context()); cz != nil && (cz.ID != 0 || cz.Verified) {
		id, email = cz.ID, cz.Email
	}
	if id == 0 && email == "" {
		if e, ok := m.guests.Verified(r); ok {
			email = e
		}
	}
	return id, email, id != 0 || email != ""
}

func (m *Module) mine(r *http.Request, resp Response) bool {
	id, email, ok := m.owner(r)
	if !ok {
		return false
	}
	return (id != 0 && resp.CitizenID == id) || (email != "" && strings.EqualFold(resp.Email, email))
}

type requestRow struct {
	Ref, Form, Label string
	Response         Response
}

func (m *Module) myRequests(w http.ResponseWriter, r *http.Request) {
	id, email, ok := m.owner(r)
	if !ok {
		http.Redirect(w, r, "/compte/connexion?next=/compte/demandes", http.StatusSeeOther)
		return
	}
	rows, err := m.db.Read().QueryContext(r.Context(), `SELECT r.ref, f.title, r.public_label, r.created_at FROM forms_responses r
 JOIN forms_forms f ON f.id = r.form_id WHERE (r.citizen_id = ? OR (? <> '' AND r.email = ?)) ORDER BY r.created_at DESC, r.id DESC LIMIT 200`, id, email, email)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	defer rows.Close()
	var list []requestRow
	for rows.Next() {
		var row requestRow
		if err := rows.Scan(&row.Ref, &row.Form, &row.Label, &row.Response.CreatedAt); err != nil {
			m.fail(w, r, err)
			return
		}
		list = append(list, row)
	}
	m.views.Render(w, r, web.Page{Name: "forms/requests.html", Title: "forms.mine.title", Data: list})
}

type requestView struct {
	Response Response
	Def      *Definition
	Lines    []Line
	History  template.HTML
	Messages []Message
	Files    []workflow.File
}

func (m *Module) ownResponse(w http.ResponseWriter, r *http.Request) (Response, *Definition, bool) {
	resp, def, err := m.loadResponse(r.Context(), m.db.Read(), r.PathValue("ref"))
	if err != nil || !m.mine(r, resp) {
		if _, _, ok := m.owner(r); !ok {
			http.Redirect(w, r, "/compte/connexion?next=/compte/demandes/"+r.PathValue("ref"), http.StatusSeeOther)
			return resp, nil, false
		}
		// Someone else's request and an unknown one look the same.
		m.fail(w, r, errs.New(errs.NotFound, "forms.error.response_not_found"))
		return resp, nil, false
	}
	return resp, def, true
}

func (m *Module) myRequest(w http.ResponseWriter, r *http.Request) {
	resp, def, ok := m.ownResponse(w, r)
	if !ok {
		return
	}
	m.renderRequest(w, r, resp, def, nil, http.StatusOK)
}

func (m *Module) renderRequest(w http.ResponseWriter, r *http.Request, resp Response, def *Definition, form *web.Form, status int) {
	lang := m.lang(r)
	v := requestView{Response: resp, Def: def, Lines: def.Lines(resp.Answers, m.t(lang, "forms.yes"), m.t(lang, "forms.no"))}
	ref := workflow.Ref{Type: ResourceType, ID: resp.Ref}
	var err error
	if v.History, err = m.wf.HistoryHTML(r, ref, true); err != nil {
		m.log.WarnContext(r.Context(), "forms: history", "ref", resp.Ref, "err", err)
	}
	v.Messages, _ = listMessages(r.Context(), m.db.Read(), resp.ID)
	v.Files, _ = m.wf.Files(r.Context(), ref)
	m.views.Render(w, r, web.Page{Name: "forms/request.html", Title: "forms.mine.request", Status: status, Form: form, Data: v})
}

const maxMessage = 5000

func (m *Module) myMessage(w http.ResponseWriter, r *http.Request) {
	resp, def, ok := m.ownResponse(w, r)
	if !ok {
		return
	}
	form, err := web.ParseForm(r)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	body := form.Get("message")
	switch {
	case body == "":
		form.Fail("message", "forms.error.required")
	case utf8.RuneCountInString(body) > maxMessage:
		form.Fail("message", "forms.error.too_long", "max", maxMessage)
	}
	if !form.Valid() {
		m.renderRequest(w, r, resp, def, form, http.StatusBadRequest)
		return
	}
	author := resp.Email
	if cz := kernel.CitizenFrom(r.Context()); cz != nil && cz.Name != "" {
		author = cz.Name
	}
	err = m.db.InTx(r.Context(), func(tx *store.Tx) error {
		return insertMessage(r.Context(), tx, resp.ID, Message{Author: author, Body: body, At: m.now()})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/compte/demandes/"+resp.Ref+"#messages", http.StatusSeeOther)
}

func (m *Module) myReceipt(w http.ResponseWriter, r *http.Request) {
	resp, def, ok := m.ownResponse(w, r)
	if !ok {
		return
	}
	pdf, err := m.receiptPDF(resp, def)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", `attachment; filename="recu-`+resp.Ref+`.pdf"`)
	_, _ = w.Write(pdf)
}

// myDocument sends a document the workflow attached to the citizen's request (an
// authorisation made on acceptance, say).
func (m *Module) myDocument(w http.ResponseWriter, r *http.Request) {
	resp, _, ok := m.ownResponse(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		m.fail(w, r, errs.New(errs.NotFound, "forms.error.file_not_found"))
		return
	}
	f, err := m.wf.File(r.Context(), workflow.Ref{Type: ResourceType, ID: resp.Ref}, id)
	if err != nil {
		m.fail(w, r, errs.New(errs.NotFound, "forms.error.file_not_found"))
		return
	}
	w.Header().Set("Content-Type", f.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(f.Name, `"`, "")+`"`)
	_, _ = w.Write(f.Data)
}

// agentMessage adds an agent's message to the thread and mails the citizen.
func (m *Module) agentMessage(ctx context.Context, a *kernel.Agent, resp Response, body string) error {
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		if err := insertMessage(ctx, tx, resp.ID, Message{FromAgent: true, Author: a.Name, Body: body, At: m.now()}); err != nil {
			return err
		}
		if resp.Email == "" {
			return nil
		}
		return m.mail.Send(ctx, tx, kernel.Mail{To: []string{resp.Email}, Lang: resp.Lang, Template: "forms/message", OrgID: resp.OrgID,
			Data: map[string]any{"Ref": resp.Ref, "Body": body, "Link": "/compte/demandes/" + resp.Ref}})
	})
}

// --- corrections asked by the workflow

type correctView struct {
	Response Response
	Def      *Definition
	Message  string
	Qs       []qview
	Done     bool // the corrections were saved
}

func (m *Module) correction(w http.ResponseWriter, r *http.Request) (Response, *Definition, workflow.Correction, bool) {
	corr, err := m.wf.Correction(r.Context(), r.PathValue("token"))
	if err != nil || corr.Ref.ID != r.PathValue("ref") || corr.Ref.Type != ResourceType {
		m.fail(w, r, errs.New(errs.NotFound, "forms.error.correction_link"))
		return Response{}, nil, corr, false
	}
	resp, def, err := m.loadResponse(r.Context(), m.db.Read(), corr.Ref.ID)
	if err != nil {
		m.fail(w, r, err)
		return resp, nil, corr, false
	}
	return resp, def, corr, true
}

// correctable lists the questions a correction lets the citizen edit: the ones the agent's
// task named that exist in the response's version and are shown with its answers, outside
// repeatable sections, and not files (the correction page takes no upload).
func correctable(def *Definition, corr workflow.Correction, a Answers) []*Question {
	var out []*Question
	path := def.Path(a)
	for _, k := range corr.Fields {
		loc, ok := def.Question(k)
		if !ok || loc.Sec.Repeat != nil || loc.Q.Type == TFile || loc.Q.Type == TPhoto || loc.Q.Type == TInfo {
			continue
		}
		if !slices.Contains(path, loc.Step) || !Visible(loc.Sec, loc.Q, a) {
			continue
		}
		out = append(out, loc.Q)
	}
	return out
}

// flatValue is a corrected answer as the workflow receives it: as Fields writes it on
// submission (a count for lists of rows or files), and for the questions made of parts every
// part named, nil for those the answer lacks, so that the engine drops their old fields.
func flatValue(q *Question, v any) any {
	var parts []string
	switch q.Type {
	case TAddress:
		parts = []string{"street", "postcode", "town"}
	case TMap:
		parts = []string{"lat", "lng", "address"}
	default:
		if f := Fields(nil, Answers{q.Key: v}); len(f) == 1 {
			return f[q.Key]
		}
		return v
	}
	m, _ := v.(map[string]any)
	out := map[string]any{}
	for _, p := range parts {
		out[p] = m[p] // nil when absent
	}
	return out
}

// correctStep is a page of the correctable questions, for valuesOf and rawOf.
func correctStep(qs []*Question) *Step {
	sec := Section{Key: "correction"}
	for _, q := range qs {
		sec.Questions = append(sec.Questions, *q)
	}
	return &Step{Key: "correction", Sections: []Section{sec}}
}

func (m *Module) correctPage(w http.ResponseWriter, r *http.Request) {
	resp, def, corr, ok := m.correction(w, r)
	if !ok {
		return
	}
	vals := valuesOf(def, correctStep(correctable(def, corr, resp.Answers)), resp.Answers)
	m.renderCorrect(w, r, resp, def, corr, web.NewForm(vals), http.StatusOK)
}

func (m *Module) renderCorrect(w http.ResponseWriter, r *http.Request, resp Response, def *Definition, corr workflow.Correction, form *web.Form, status int) {
	lang := m.lang(r)
	v := correctView{Response: resp, Def: def, Message: corr.Message}
	qb := m.newQBuilder(lang, form, resp.Answers)
	for _, q := range correctable(def, corr, resp.Answers) {
		v.Qs = append(v.Qs, qb.build(q, ""))
	}
	m.views.Render(w, r, web.Page{Name: "forms/correct.html", Title: "forms.correct.title", Status: status, Form: form, Data: v})
}

func (m *Module) correctPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	resp, def, corr, ok := m.correction(w, r)
	if !ok {
		return
	}
	form, err := web.ParseForm(r)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	// Only the questions the agent chose are read; the others keep their answers, and a
	// field of any other question is refused.
	qs := correctable(def, corr, resp.Answers)
	in, unknown := rawOf(def, correctStep(qs), form.Values, func(*Section, *Question) bool { return true })
	if len(unknown) > 0 {
		m.log.WarnContext(ctx, "forms: unknown fields in a correction", "ref", resp.Ref, "fields", unknown)
		m.fail(w, r, errs.New(errs.Invalid, "forms.error.unknown_fields"))
		return
	}
	answers := Answers{}
	for k, v := range resp.Answers {
		answers[k] = v
	}
	c := &checker{d: def, today: m.today()}
	changed := map[string]any{}
	for _, q := range qs {
		if v, ok := c.value(q, q.Key, in[q.Key]); ok {
			if isEmpty(v) {
				delete(answers, q.Key)
			} else {
				answers[q.Key] = v
			}
			changed[q.Key] = flatValue(q, v)
		}
	}
	if len(c.ps) > 0 {
		for _, p := range c.ps {
			form.Fail(p.Path, p.Key, p.Args...)
		}
		m.renderCorrect(w, r, resp, def, corr, form, http.StatusBadRequest)
		return
	}
	answers = def.Prune(answers)
	err = m.db.InTx(ctx, func(tx *store.Tx) error {
		b, err := jsonText(answers)
		if err != nil {
			return err
		}
		search := def.SearchText(resp.Ref, answers)
		if _, err := tx.ExecContext(ctx, `UPDATE forms_responses SET answers = ?, search = ?, updated_at = ? WHERE id = ?`, b, search, m.now(), resp.ID); err != nil {
			return err
		}
		if tx.Dialect == store.SQLite {
			if _, err := tx.ExecContext(ctx, `DELETE FROM forms_search WHERE rowid = ?`, resp.ID); err != nil {
				return err
			}
			if err := m.indexSearch(ctx, tx, resp.ID, search); err != nil {
				return err
			}
		}
		// The engine stores the corrected values as the flat fields its conditions and
		// routing read ("adresse_postcode"), before the request returns to its state.
		_, err = m.wf.Resubmit(ctx, tx, r.PathValue("token"), changed)
		return err
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if m.mine(r, resp) {
		http.Redirect(w, r, "/compte/demandes/"+resp.Ref, http.StatusSeeOther)
		return
	}
	// A guest who followed the mailed link may not be signed in: the page says it went.
	m.views.Render(w, r, web.Page{Name: "forms/correct.html", Title: "forms.correct.title",
		Data: correctView{Response: resp, Def: def, Done: true}})
}
