package forms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// The public pages: one page per step, a review page, a confirmation page; the draft lives in
// the database and the browser holds its token in a cookie scoped to the form's address.

type errorData struct{ Message, Back string }

// fail renders an error page for a domain error (404, 409…), never a 500 for bad input.
func (m *Module) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := web.StatusOf(err)
	key := "forms.error.internal"
	if e, ok := errs.As(err); ok && status < 500 {
		key = e.Key
	} else if errors.Is(err, web.ErrBodyTooLarge) {
		status, key = http.StatusRequestEntityTooLarge, "forms.error.body_too_large"
	} else if status >= 500 {
		m.log.ErrorContext(r.Context(), "forms", "err", err, "path", r.URL.Path)
	}
	layout, back := "public", "/"
	if strings.HasPrefix(r.URL.Path, "/admin") {
		layout, back = "backoffice", "/admin/forms"
	}
	m.views.Render(w, r, web.Page{Name: "kernel/error.html", Layout: layout, Status: status, Title: "kernel.error.title",
		Data: errorData{Message: m.t(m.lang(r), key), Back: back}})
}

// loaded is a published form with the definition citizens fill.
type loaded struct {
	Form Form
	Def  *Definition
}

func (m *Module) published(ctx context.Context, key string) (loaded, error) {
	f, err := publicForm(ctx, m.db.Read(), key)
	if err != nil {
		return loaded{}, err
	}
	d, err := m.publishedDef(ctx, f)
	if err != nil {
		return loaded{}, err
	}
	return loaded{f, d}, nil
}

// publishedDef returns the definition of f's published version. A published version is
// frozen: its decoded definition is kept (one per form, the latest seen) instead of being
// read and decoded on every page, submission or question set. The version number itself
// comes from the form's row the caller just read, so every node follows a new publication
// at once. Callers only read the definition.
func (m *Module) publishedDef(ctx context.Context, f Form) (*Definition, error) {
	if c, ok := m.defs.Load(f.ID); ok {
		if d := c.(*Definition); d.Version == f.Published {
			return d, nil
		}
	}
	v, err := getVersion(ctx, m.db.Read(), f.ID, f.Published)
	if err != nil {
		return nil, err
	}
	if v.Frozen {
		m.defs.Store(f.ID, v.Def)
	}
	return v.Def, nil
}

func cookieName(key string) string { return "pvf_" + key }

func (m *Module) setDraftCookie(w http.ResponseWriter, key, token string, expires time.Time) {
	// MaxAge rather than Expires: the browser's clock is not the server's (nor the tests').
	age := int(time.Until(expires).Seconds())
	if now := m.clock.Now(); !now.IsZero() {
		age = int(expires.Sub(now).Seconds())
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName(key), Value: token, Path: "/demarches/" + key, MaxAge: max(age, 1),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: m.cfg != nil && m.cfg.Secure()})
}

// current is the draft of the request's browser, with the definition of its version.
type current struct {
	loaded
	Draft *Draft
	Path  []int
}

var errNoDraft = errs.New(errs.NotFound, "forms.error.draft_not_found")

func (m *Module) current(r *http.Request) (*current, error) {
	l, err := m.published(r.Context(), r.PathValue("form"))
	if err != nil {
		return nil, err
	}
	ck, err := r.Cookie(cookieName(l.Form.Key))
	if err != nil || len(ck.Value) != 32 {
		return nil, errNoDraft
	}
	id, version, err := draftByToken(r.Context(), m.db.Read(), l.Form.ID, ck.Value)
	if err != nil {
		return nil, errNoDraft
	}
	if version != l.Def.Version {
		v, err := getVersion(r.Context(), m.db.Read(), l.Form.ID, version)
		if err != nil {
			return nil, err
		}
		l.Def = v.Def
	}
	dr, err := loadDraft(r.Context(), m.db.Read(), id, l.Def)
	if err != nil {
		m.log.WarnContext(r.Context(), "forms: draft unreadable", "id", id, "err", err)
		return nil, errNoDraft
	}
	if !dr.ExpiresAt.After(m.now()) {
		return nil, errNoDraft
	}
	return &current{loaded: l, Draft: dr, Path: l.Def.Path(dr.Answers)}, nil
}

// firstUndone is the first step of the path not yet validated, -1 when all are.
func (c *current) firstUndone() int {
	for _, si := range c.Path {
		if !slices.Contains(c.Draft.Done, c.Def.Steps[si].Key) {
			return si
		}
	}
	return -1
}

// reachable reports whether step si may be shown: on the path, every step before it done.
func (c *current) reachable(si int) bool {
	for _, p := range c.Path {
		if p == si {
			return true
		}
		if !slices.Contains(c.Draft.Done, c.Def.Steps[p].Key) {
			return false
		}
	}
	return false
}

func (c *current) stepURL(si int) string {
	if si < 0 {
		return "/demarches/" + c.Form.Key + "/recapitulatif"
	}
	return "/demarches/" + c.Form.Key + "/etape/" + c.Def.Steps[si].Key
}

func (m *Module) draftDays(d *Definition) int {
	if d.Settings.DraftDays > 0 {
		return d.Settings.DraftDays
	}
	return 30
}

// --- start

type startData struct {
	Form    Form
	Def     *Definition
	Closed  string
	Current string // the address of the browser's draft
	Drafts  []int64
}

func (m *Module) start(w http.ResponseWriter, r *http.Request) {
	l, err := m.published(r.Context(), r.PathValue("form"))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	data := startData{Form: l.Form, Def: l.Def, Closed: m.openProblem(l.Form, l.Def, m.now())}
	if c, err := m.current(r); err == nil {
		if u := c.firstUndone(); u >= 0 {
			data.Current = c.stepURL(u)
		} else {
			data.Current = c.stepURL(-1)
		}
	}
	if cz := kernel.CitizenFrom(r.Context()); cz != nil && cz.ID != 0 {
		rows, err := m.db.Read().QueryContext(r.Context(), `SELECT id FROM forms_drafts WHERE citizen_id = ? AND form_id = ? AND expires_at > ? ORDER BY updated_at DESC`, cz.ID, l.Form.ID, m.now())
		if err == nil {
			for rows.Next() {
				var id int64
				if rows.Scan(&id) == nil {
					data.Drafts = append(data.Drafts, id)
				}
			}
			rows.Close()
		}
	}
	status := http.StatusOK
	if data.Closed != "" {
		status = http.StatusConflict
	}
	m.views.Render(w, r, web.Page{Name: "forms/start.html", Title: "forms.fill.title", Status: status, Data: data})
}

// begin creates a draft (or takes up a signed-in citizen's) and opens its first step.
func (m *Module) begin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	l, err := m.published(ctx, r.PathValue("form"))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if key := m.openProblem(l.Form, l.Def, m.now()); key != "" {
		m.fail(w, r, errs.New(errs.Conflict, key))
		return
	}
	f, err := web.ParseForm(r)
	if err != nil {
		m.fail(w, r, errs.New(errs.Invalid, "forms.error.malformed"))
		return
	}
	cz := kernel.CitizenFrom(ctx)
	expires := m.now().AddDate(0, 0, m.draftDays(l.Def))
	if f.Get("draft") != "" {
		id, _ := strconv.ParseInt(f.Get("draft"), 10, 64)
		var owner int64
		_ = m.db.Read().QueryRowContext(ctx, `SELECT COALESCE(citizen_id, 0) FROM forms_drafts WHERE id = ? AND form_id = ?`, id, l.Form.ID).Scan(&owner)
		if cz == nil || cz.ID == 0 || owner != cz.ID {
			m.fail(w, r, errs.New(errs.NotFound, "forms.error.draft_not_found"))
			return
		}
		tok, err := retoken(ctx, m.db.Write(), id)
		if err != nil {
			m.fail(w, r, err)
			return
		}
		m.setDraftCookie(w, l.Form.Key, tok, expires)
		http.Redirect(w, r, "/demarches/"+l.Form.Key+"/etape/"+l.Def.Steps[l.Def.Path(nil)[0]].Key, http.StatusSeeOther)
		return
	}
	dr := &Draft{FormID: l.Form.ID, Version: l.Def.Version, ExpiresAt: expires}
	if cz != nil {
		dr.CitizenID, dr.Email = cz.ID, cz.Email
	} else if email, ok := m.guests.Verified(r); ok {
		dr.Email = email
	}
	if err := m.db.InTx(ctx, func(tx *store.Tx) error { return insertDraft(ctx, tx, dr, m.now()) }); err != nil {
		m.fail(w, r, err)
		return
	}
	m.setDraftCookie(w, l.Form.Key, dr.token, expires)
	path := l.Def.Path(Answers{})
	http.Redirect(w, r, "/demarches/"+l.Form.Key+"/etape/"+l.Def.Steps[path[0]].Key, http.StatusSeeOther)
}

// --- steps

// qview is one question as the step template renders it.
type qview struct {
	Q       *Question
	F       web.FieldView
	Parts   map[string]web.FieldView // address and map parts
	Rows    [][]web.FieldView        // table cells
	Files   []FileRef
	Options []optView
	If      string // the condition as JSON, for the browser
}

type optView struct{ Value, Label, Hint string }

type sectionView struct {
	Sec       *Section
	ID        string
	Qs        []qview
	Items     [][]qview
	If        string
	Count     int
	CanAdd    bool
	CanRemove bool
	Error     string
}

type stepView struct {
	Form        Form
	Def         *Definition
	Step        *Step
	Position    int // 1-based position on the path
	Total       int
	Sections    []sectionView
	Back        string
	Action      string
	Return      string
	Multipart   bool
	Answers     string // earlier answers the step's conditions read, as JSON
	CanSave     bool
	Cancellable bool
}

func (m *Module) stepIndex(c *current, r *http.Request) (int, error) {
	si := c.Def.StepIndex(r.PathValue("step"))
	if si < 0 {
		return -1, errs.New(errs.NotFound, "forms.error.step_not_found")
	}
	return si, nil
}

func (m *Module) stepPage(w http.ResponseWriter, r *http.Request) {
	c, err := m.current(r)
	if err != nil {
		m.noDraft(w, r, err)
		return
	}
	si, err := m.stepIndex(c, r)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if !c.reachable(si) {
		http.Redirect(w, r, c.stepURL(c.firstUndone()), http.StatusSeeOther)
		return
	}
	vals := valuesOf(c.Def, &c.Def.Steps[si], c.Draft.Answers)
	m.renderStep(w, r, c, si, web.NewForm(vals), http.StatusOK)
}

func (m *Module) noDraft(w http.ResponseWriter, r *http.Request, err error) {
	if err == errNoDraft {
		// No draft (expired, or another browser): start again from the form's first page.
		http.Redirect(w, r, "/demarches/"+r.PathValue("form"), http.StatusSeeOther)
		return
	}
	m.fail(w, r, err)
}

func (m *Module) renderStep(w http.ResponseWriter, r *http.Request, c *current, si int, form *web.Form, status int) {
	lang := m.lang(r)
	st := &c.Def.Steps[si]
	v := stepView{Form: c.Form, Def: c.Def, Step: st, Total: len(c.Path), Action: c.stepURL(si), Return: r.URL.Query().Get("retour"),
		CanSave: true}
	if v.Return == "" {
		v.Return = form.Values.Get("retour")
	}
	for i, p := range c.Path {
		if p == si {
			v.Position = i + 1
			if i == 0 {
				v.Back = "/demarches/" + c.Form.Key
			} else {
				v.Back = c.stepURL(c.Path[i-1])
			}
		}
	}
	if v.Return == "recap" {
		v.Back = c.stepURL(-1)
	}
	prev := Answers{}
	for k, val := range c.Draft.Answers {
		prev[k] = val
	}
	refs := map[string]any{}
	qb := m.newQBuilder(lang, form, c.Draft.Answers)
	build := func(q *Question, prefix string) qview {
		qv := qb.build(q, prefix)
		if q.Type == TFile || q.Type == TPhoto {
			v.Multipart = true
		}
		if q.If != nil {
			b, _ := json.Marshal(q.If)
			qv.If = string(b)
			// Not hidden by the server: without JavaScript nothing could show it again once
			// the citizen answers; forms.js hides it on load, and the server ignores the
			// answer when the condition does not hold.
			collect(q.If, prev, refs)
		}
		return qv
	}
	for ci := range st.Sections {
		sec := &st.Sections[ci]
		on := sec.If.Holds(prev) || c.Def.refsStep(sec.If, st)
		if !on {
			continue
		}
		sv := sectionView{Sec: sec, ID: "f-" + sec.Key}
		if sec.If != nil {
			b, _ := json.Marshal(sec.If)
			sv.If = string(b)
			collect(sec.If, prev, refs)
		}
		if e, ok := qb.errsBy[sec.Key]; ok {
			sv.Error = m.t(lang, e.Message, e.Args...)
		}
		if sec.Repeat != nil {
			sv.Count, _ = strconv.Atoi(form.Values.Get(sec.Key + ".count"))
			sv.Count = max(sv.Count, sec.Repeat.Min, 1)
			sv.Count = min(sv.Count, sec.Repeat.Max)
			for i := range sv.Count {
				var item []qview
				for qi := range sec.Questions {
					q := &sec.Questions[qi]
					if q.If.Holds(prev) {
						item = append(item, build(q, fmt.Sprintf("%s[%d].", sec.Key, i)))
					}
				}
				sv.Items = append(sv.Items, item)
			}
			sv.CanAdd, sv.CanRemove = sv.Count < sec.Repeat.Max, sv.Count > max(sec.Repeat.Min, 1)
		} else {
			for qi := range sec.Questions {
				q := &sec.Questions[qi]
				if c.Def.OnPage(st, sec, q, prev) {
					sv.Qs = append(sv.Qs, build(q, ""))
				}
			}
		}
		v.Sections = append(v.Sections, sv)
	}
	b, _ := json.Marshal(refs)
	v.Answers = string(b)
	m.views.Render(w, r, web.Page{Name: "forms/step.html", Title: "forms.fill.title", Status: status, Form: form, Data: v})
}

// qbuilder makes the views of questions for the step and correction pages, from the posted
// (or stored) values and the errors of a form.
type qbuilder struct {
	m       *Module
	lang    string
	form    *web.Form
	errsBy  map[string]web.FieldError
	answers Answers // stored answers: the files already sent, the rows of a table
}

func (m *Module) newQBuilder(lang string, form *web.Form, answers Answers) *qbuilder {
	b := &qbuilder{m: m, lang: lang, form: form, errsBy: map[string]web.FieldError{}, answers: answers}
	for _, e := range form.Errors {
		if _, ok := b.errsBy[e.Field]; !ok {
			b.errsBy[e.Field] = e
		}
	}
	return b
}

func (b *qbuilder) field(name, label, hint string, required bool) web.FieldView {
	m, lang := b.m, b.lang
	fv := web.FieldView{ID: "f-" + name, Name: name, Label: label, Hint: hint, Value: b.form.Values.Get(name), Values: b.form.Values[name]}
	if !required && label != "" {
		fv.Label += " " + m.t(lang, "forms.optional")
	}
	if e, ok := b.errsBy[name]; ok {
		fv.Error = m.t(lang, e.Message, e.Args...)
		fv.ErrorPrefix = m.t(lang, "kernel.error_prefix") + " "
	}
	return fv
}

func (b *qbuilder) build(q *Question, prefix string) qview {
	m, lang, field := b.m, b.lang, b.field
	name := prefix + q.Key
	qv := qview{Q: q, F: field(name, q.Label, q.Hint, q.Required || q.Type == TTerms)}
	for _, o := range q.Options {
		qv.Options = append(qv.Options, optView{Value: o.Value, Label: o.Label})
	}
	switch q.Type {
	case TYesNo:
		qv.Options = []optView{{"yes", m.t(lang, "forms.yes"), ""}, {"no", m.t(lang, "forms.no"), ""}}
	case TTerms:
		qv.Options = []optView{{"yes", m.t(lang, "forms.terms_accept"), ""}}
	case TChoice:
		if q.Display == "select" {
			qv.Options = append([]optView{{"", m.t(lang, "forms.choose"), ""}}, qv.Options...)
		}
	case TAddress:
		qv.Parts = map[string]web.FieldView{
			"street":   field(name+".street", m.t(lang, "forms.address.street"), "", true),
			"postcode": field(name+".postcode", m.t(lang, "forms.address.postcode"), "", true),
			"town":     field(name+".town", m.t(lang, "forms.address.town"), "", true),
		}
	case TMap:
		qv.Parts = map[string]web.FieldView{
			"address": field(name+".address", m.t(lang, "forms.map.address"), m.t(lang, "forms.map.address_hint"), true),
			"lat":     field(name+".lat", m.t(lang, "forms.map.lat"), "", true),
			"lng":     field(name+".lng", m.t(lang, "forms.map.lng"), "", true),
		}
	case TTable:
		n := len(maps(toAny(b.answers[q.Key]))) + 2
		if max := q.MaxRows; max == 0 && n > 10 {
			n = 10
		} else if max > 0 && n > max {
			n = max
		}
		for i := range n {
			var row []web.FieldView
			for _, col := range q.Columns {
				row = append(row, field(fmt.Sprintf("%s[%d].%s", name, i, col.Value), col.Label, "", true))
			}
			qv.Rows = append(qv.Rows, row)
		}
	case TFile, TPhoto:
		qv.Files, _ = b.answers[q.Key].([]FileRef)
	}
	return qv
}

// collect copies the earlier answers a condition reads, for the browser's script.
func collect(c *Condition, a Answers, out map[string]any) {
	if c == nil {
		return
	}
	if c.Field != "" {
		if v, ok := a[c.Field]; ok {
			out[c.Field] = v
		}
	}
	for _, x := range append(append([]*Condition{}, c.All...), c.Any...) {
		collect(x, a, out)
	}
}

// valuesOf writes stored answers as the form fields of a step.
func valuesOf(d *Definition, st *Step, a Answers) url.Values {
	vals := url.Values{}
	var put func(q *Question, name string, v any)
	put = func(q *Question, name string, v any) {
		switch q.Type {
		case TMulti:
			switch l := v.(type) {
			case []string:
				vals[name] = l
			case []any:
				for _, x := range l {
					vals.Add(name, str(x))
				}
			}
		case TAddress, TMap:
			if mp, ok := v.(map[string]any); ok {
				for k, x := range mp {
					vals.Set(name+"."+k, str(x))
				}
			}
		case TTable:
			for i, row := range maps(toAny(v)) {
				for k, x := range row {
					vals.Set(fmt.Sprintf("%s[%d].%s", name, i, k), str(x))
				}
			}
		case TDate:
			if t, ok := ParseDate(str(v)); ok {
				vals.Set(name+"-day", strconv.Itoa(t.Day()))
				vals.Set(name+"-month", strconv.Itoa(int(t.Month())))
				vals.Set(name+"-year", strconv.Itoa(t.Year()))
			}
		case TFile, TPhoto:
		default:
			if v != nil {
				vals.Set(name, str(v))
			}
		}
	}
	for _, sec := range st.Sections {
		if sec.Repeat != nil {
			items := maps(toAny(a[sec.Key]))
			vals.Set(sec.Key+".count", strconv.Itoa(max(len(items), sec.Repeat.Min, 1)))
			for i, item := range items {
				for qi := range sec.Questions {
					q := &sec.Questions[qi]
					put(q, fmt.Sprintf("%s[%d].%s", sec.Key, i, q.Key), item[q.Key])
				}
			}
			continue
		}
		for qi := range sec.Questions {
			q := &sec.Questions[qi]
			put(q, q.Key, a[q.Key])
		}
	}
	return vals
}

// rawOf reads a step's posted fields into raw values by question key; names that are not
// fields of the page are returned as unknown.
func rawOf(d *Definition, st *Step, vals url.Values, shown func(sec *Section, q *Question) bool) (map[string]any, []string) {
	in := map[string]any{}
	allowed := map[string]bool{"csrf": true, "op": true, "retour": true}
	var read func(q *Question, name string) any
	read = func(q *Question, name string) any {
		switch q.Type {
		case TMulti:
			allowed[name] = true
			return vals[name]
		case TAddress:
			return parts(vals, name, allowed, "street", "postcode", "town")
		case TMap:
			return parts(vals, name, allowed, "lat", "lng", "address")
		case TDate:
			for _, p := range []string{"-day", "-month", "-year"} {
				allowed[name+p] = true
			}
			dd, mm, yy := strings.TrimSpace(vals.Get(name+"-day")), strings.TrimSpace(vals.Get(name+"-month")), strings.TrimSpace(vals.Get(name+"-year"))
			if dd == "" && mm == "" && yy == "" {
				return ""
			}
			day, e1 := strconv.Atoi(dd)
			mon, e2 := strconv.Atoi(mm)
			year, e3 := strconv.Atoi(yy)
			if e1 != nil || e2 != nil || e3 != nil || year < 1000 || year > 9999 {
				return "invalid"
			}
			return fmt.Sprintf("%04d-%02d-%02d", year, mon, day)
		case TTable:
			var rows []any
			for i := 0; i < maxTableRows; i++ {
				row := map[string]any{}
				for _, col := range q.Columns {
					n := fmt.Sprintf("%s[%d].%s", name, i, col.Value)
					allowed[n] = true
					if s := strings.TrimSpace(vals.Get(n)); s != "" {
						row[col.Value] = s
					}
				}
				if len(row) > 0 {
					rows = append(rows, row)
				}
			}
			return rows
		case TFile, TPhoto, TInfo:
			allowed[name] = true
			return nil
		}
		allowed[name] = true
		if len(vals[name]) > 1 {
			return vals[name]
		}
		return vals.Get(name)
	}
	for ci := range st.Sections {
		sec := &st.Sections[ci]
		if sec.Repeat != nil {
			allowed[sec.Key+".count"] = true
			n, _ := strconv.Atoi(vals.Get(sec.Key + ".count"))
			n = min(max(n, 1), sec.Repeat.Max)
			var items []any
			for i := range n {
				item := map[string]any{}
				for qi := range sec.Questions {
					q := &sec.Questions[qi]
					if v := read(q, fmt.Sprintf("%s[%d].%s", sec.Key, i, q.Key)); !isEmpty(v) {
						item[q.Key] = v
					}
				}
				items = append(items, item)
			}
			in[sec.Key] = items
			continue
		}
		for qi := range sec.Questions {
			q := &sec.Questions[qi]
			if shown(sec, q) {
				in[q.Key] = read(q, q.Key)
			}
		}
	}
	var unknown []string
	for k, v := range vals {
		if !allowed[k] && strings.Join(v, "") != "" {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	return in, unknown
}

func parts(vals url.Values, name string, allowed map[string]bool, names ...string) any {
	out := map[string]any{}
	for _, p := range names {
		allowed[name+"."+p] = true
		if s := strings.TrimSpace(vals.Get(name + "." + p)); s != "" {
			out[p] = s
		}
	}
	return out
}

func (m *Module) stepPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := m.current(r)
	if err != nil {
		m.noDraft(w, r, err)
		return
	}
	si, err := m.stepIndex(c, r)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if !c.reachable(si) {
		// A tampered or stale step order: refused, nothing stored.
		m.fail(w, r, errs.New(errs.Conflict, "forms.error.step_order"))
		return
	}
	form, err := web.ParseForm(r)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if r.MultipartForm != nil {
		defer r.MultipartForm.RemoveAll()
	}
	st := &c.Def.Steps[si]
	prev := Answers{}
	for k, v := range c.Draft.Answers {
		prev[k] = v
	}
	op := form.Get("op")
	// Repeatable sections: add or remove an item, then show the page again.
	if sec, ok := strings.CutPrefix(op, "add:"); ok {
		n, _ := strconv.Atoi(form.Values.Get(sec + ".count"))
		form.Values.Set(sec+".count", strconv.Itoa(n+1))
		m.renderStep(w, r, c, si, form, http.StatusOK)
		return
	}
	if rest, ok := strings.CutPrefix(op, "remove:"); ok {
		sec, idx, _ := strings.Cut(rest, ":")
		i, _ := strconv.Atoi(idx)
		removeItem(form.Values, sec, i)
		m.renderStep(w, r, c, si, form, http.StatusOK)
		return
	}
	shown := func(sec *Section, q *Question) bool { return c.Def.OnPage(st, sec, q, prev) }
	in, unknown := rawOf(c.Def, st, form.Values, shown)
	if len(unknown) > 0 {
		m.log.WarnContext(ctx, "forms: unknown fields posted", "form", c.Form.Key, "fields", unknown)
		m.fail(w, r, errs.New(errs.Invalid, "forms.error.unknown_fields"))
		return
	}
	// Files: sniffed and stored at once, so a later error on the page does not lose them.
	var fileProblems []Problem
	changedFiles := false
	if rest, ok := strings.CutPrefix(op, "rmfile:"); ok {
		qk, id, _ := strings.Cut(rest, ":")
		refs, _ := c.Draft.Answers[qk].([]FileRef)
		refs = slices.DeleteFunc(slices.Clone(refs), func(f FileRef) bool { return f.ID == id })
		c.Draft.Answers[qk] = refs
		changedFiles = true
	}
	for ci := range st.Sections {
		sec := &st.Sections[ci]
		for qi := range sec.Questions {
			q := &sec.Questions[qi]
			if (q.Type != TFile && q.Type != TPhoto) || !shown(sec, q) || r.MultipartForm == nil {
				continue
			}
			refs, _ := c.Draft.Answers[q.Key].([]FileRef)
			for _, fh := range r.MultipartForm.File[q.Key] {
				if fh.Filename == "" && fh.Size == 0 {
					continue
				}
				ref, code, err := m.storeUpload(ctx, c.Draft.ID, q, fh)
				if err != nil {
					m.fail(w, r, err)
					return
				}
				if code != "" {
					fileProblems = append(fileProblems, Problem{Path: q.Key, Code: code, Key: "forms.error." + code,
						Args: []any{"name", fh.Filename, "max", strconv.FormatInt(maxSize(q)>>10, 10)}})
					continue
				}
				refs = append(refs, ref)
				changedFiles = true
			}
			c.Draft.Answers[q.Key] = refs
		}
	}
	for k := range in {
		if loc, ok := c.Def.Question(k); ok && (loc.Q.Type == TFile || loc.Q.Type == TPhoto) {
			in[k] = c.Draft.Answers[k]
		}
	}
	if changedFiles {
		if err := saveDraft(ctx, m.db.Write(), c.Draft, m.now()); err != nil {
			m.fail(w, r, err)
			return
		}
	}
	if strings.HasPrefix(op, "rmfile:") {
		m.renderStep(w, r, c, si, form, http.StatusOK)
		return
	}
	// The step's own earlier answers do not count for its conditions: drop them first.
	for ci := range st.Sections {
		delete(prev, st.Sections[ci].Key)
		for _, q := range st.Sections[ci].Questions {
			delete(prev, q.Key)
		}
	}
	got, ps := c.Def.CheckStep(si, in, prev, m.today(), false)
	ps = append(fileProblems, ps...)
	if len(ps) > 0 && op != "save" {
		for _, p := range ps {
			form.Fail(p.Path, p.Key, p.Args...)
		}
		m.renderStep(w, r, c, si, form, http.StatusBadRequest)
		return
	}
	for k, v := range got {
		prev[k] = v
	}
	dr := c.Draft
	dr.Answers = c.Def.Prune(prev)
	if len(ps) == 0 && !slices.Contains(dr.Done, st.Key) {
		dr.Done = append(dr.Done, st.Key)
	}
	// Steps no longer on the path are forgotten.
	path := c.Def.Path(dr.Answers)
	dr.Done = slices.DeleteFunc(dr.Done, func(k string) bool { return !slices.Contains(path, c.Def.StepIndex(k)) })
	dr.ExpiresAt = m.now().AddDate(0, 0, m.draftDays(c.Def))
	if err := saveDraft(ctx, m.db.Write(), dr, m.now()); err != nil {
		m.fail(w, r, err)
		return
	}
	m.setDraftCookie(w, c.Form.Key, mustCookie(r, c.Form.Key), dr.ExpiresAt)
	if op == "save" {
		http.Redirect(w, r, "/demarches/"+c.Form.Key+"/sauvegarder", http.StatusSeeOther)
		return
	}
	c.Path = path
	next := c.firstUndone()
	if form.Get("retour") != "recap" {
		// Go on to the step after this one even when later ones are done already.
		for i, p := range path {
			if p == si && i+1 < len(path) {
				next = path[i+1]
			}
		}
		if slices.Index(path, si) == len(path)-1 && c.firstUndone() < 0 {
			next = -1
		}
	}
	http.Redirect(w, r, c.stepURL(next), http.StatusSeeOther)
}

func mustCookie(r *http.Request, key string) string {
	ck, _ := r.Cookie(cookieName(key))
	return ck.Value
}

// removeItem drops item i of a repeatable section from posted values, shifting the others.
func removeItem(vals url.Values, sec string, i int) {
	n, _ := strconv.Atoi(vals.Get(sec + ".count"))
	prefix := func(k int) string { return fmt.Sprintf("%s[%d].", sec, k) }
	for k := i; k < n; k++ {
		for name := range vals {
			if strings.HasPrefix(name, prefix(k)) {
				delete(vals, name)
			}
		}
		for name, v := range vals {
			if rest, ok := strings.CutPrefix(name, prefix(k+1)); ok {
				vals[prefix(k)+rest] = v
			}
		}
	}
	for name := range vals {
		if strings.HasPrefix(name, prefix(n-1)) {
			delete(vals, name)
		}
	}
	vals.Set(sec+".count", strconv.Itoa(max(n-1, 1)))
}

// --- review and submit

type reviewView struct {
	Form    Form
	Def     *Definition
	Steps   []reviewStep
	Back    string
	Captcha *captchaView // guests of a form that asks for it
}

type reviewStep struct {
	Title string
	Rows  []reviewRow
}

type reviewRow struct{ Key, Value, Href, Action string }

func (m *Module) review(w http.ResponseWriter, r *http.Request) {
	c, err := m.current(r)
	if err != nil {
		m.noDraft(w, r, err)
		return
	}
	if u := c.firstUndone(); u >= 0 {
		http.Redirect(w, r, c.stepURL(u), http.StatusSeeOther)
		return
	}
	m.renderReview(w, r, c, nil, http.StatusOK)
}

func (m *Module) renderReview(w http.ResponseWriter, r *http.Request, c *current, form *web.Form, status int) {
	lang := m.lang(r)
	v := reviewView{Form: c.Form, Def: c.Def, Back: c.stepURL(c.Path[len(c.Path)-1])}
	lines := c.Def.Lines(c.Draft.Answers, m.t(lang, "forms.yes"), m.t(lang, "forms.no"))
	for _, si := range c.Path {
		rs := reviewStep{Title: c.Def.Steps[si].Title}
		for _, l := range lines {
			if l.Step == si {
				rs.Rows = append(rs.Rows, reviewRow{Key: l.Label, Value: l.Value, Href: c.stepURL(si) + "?retour=recap#f-" + l.Path, Action: m.t(lang, "forms.change")})
			}
		}
		v.Steps = append(v.Steps, rs)
	}
	if m.needsCaptcha(r, c.Def) {
		cv := m.newCaptcha(lang, c.Form.ID, c.Draft.ID)
		// A new question each time: the answer field starts empty.
		cv.F = web.FieldView{ID: "f-" + captchaField, Name: captchaField, Label: cv.Question, Hint: m.t(lang, "forms.captcha.hint")}
		if form != nil {
			for _, e := range form.Errors {
				if e.Field == captchaField {
					cv.F.Error, cv.F.ErrorPrefix = m.t(lang, e.Message, e.Args...), m.t(lang, "kernel.error_prefix")+" "
				}
			}
		}
		v.Captcha = &cv
	}
	m.views.Render(w, r, web.Page{Name: "forms/review.html", Title: "forms.review.title", Status: status, Form: form, Data: v})
}

func (m *Module) submit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := m.current(r)
	if err != nil {
		m.noDraft(w, r, err)
		return
	}
	if u := c.firstUndone(); u >= 0 {
		m.fail(w, r, errs.New(errs.Conflict, "forms.error.step_order"))
		return
	}
	if m.needsCaptcha(r, c.Def) {
		form, err := web.ParseForm(r)
		if err != nil {
			m.fail(w, r, err)
			return
		}
		if key := m.checkCaptcha(form.Values, c.Form.ID, c.Draft.ID); key != "" {
			m.log.InfoContext(ctx, "forms: captcha refused", "form", c.Form.Key, "why", key)
			failed := web.NewForm(nil)
			failed.Fail(captchaField, key)
			m.renderReview(w, r, c, failed, http.StatusBadRequest)
			return
		}
	}
	// The server checks everything again: the stored draft could predate a rule's change of
	// date ("today"), and nothing a browser sent is trusted.
	in := map[string]any{}
	for k, v := range c.Draft.Answers {
		in[k] = v
	}
	answers, ps := c.Def.CheckAll(in, m.today(), false)
	if len(ps) > 0 {
		form := web.NewForm(nil)
		for _, p := range ps {
			form.Fail(p.Path, p.Key, p.Args...)
		}
		m.renderReview(w, r, c, form, http.StatusBadRequest)
		return
	}
	cz := kernel.CitizenFrom(ctx)
	email := c.Draft.Email
	if cz != nil && cz.Email != "" {
		email = cz.Email
	}
	if k := c.Def.Settings.EmailQuestion; k != "" && str(answers[k]) != "" {
		email = str(answers[k])
	}
	var cid int64
	if cz != nil {
		cid = cz.ID
	} else {
		cid = c.Draft.CitizenID
	}
	if c.Def.Settings.OnePerCitizen && cid == 0 {
		if e, ok := m.guests.Verified(r); ok {
			email = e
		} else {
			m.fail(w, r, errs.New(errs.Forbidden, "forms.error.sign_in_needed"))
			return
		}
	}
	resp, err := m.Submit(ctx, Submission{Form: c.Form, Def: c.Def, Answers: answers, CitizenID: cid, Email: email,
		Lang: m.lang(r), SubmitKey: "d:" + hashToken(mustCookie(r, c.Form.Key)), DraftID: c.Draft.ID})
	if err != nil {
		if e, ok := errs.As(err); !ok || e.Key != "forms.error.already_submitted" || resp.Ref == "" {
			m.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName(c.Form.Key), Path: "/demarches/" + c.Form.Key, MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: m.cfg != nil && m.cfg.Secure()})
	http.Redirect(w, r, "/demarches/"+c.Form.Key+"/envoye/"+resp.Ref, http.StatusSeeOther)
}

type confirmView struct {
	Form      Form
	Def       *Definition
	Ref       string
	Label     string
	Email     string
	Signed    bool
	TrackPath string
}

func (m *Module) confirmation(w http.ResponseWriter, r *http.Request) {
	l, err := m.published(r.Context(), r.PathValue("form"))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	resp, err := responseByRef(r.Context(), m.db.Read(), r.PathValue("ref"))
	if err != nil || resp.FormID != l.Form.ID {
		m.fail(w, r, errs.New(errs.NotFound, "forms.error.response_not_found"))
		return
	}
	cz := kernel.CitizenFrom(r.Context())
	m.views.Render(w, r, web.Page{Name: "forms/confirmation.html", Title: "forms.confirm.title", Data: confirmView{
		Form: l.Form, Def: l.Def, Ref: resp.Ref, Label: resp.PublicLabel, Email: maskEmail(resp.Email),
		Signed: cz != nil, TrackPath: "/compte/demandes/" + resp.Ref}})
}

// maskEmail shows enough of an address to recognise it, not to harvest it: "l…@example.org".
func maskEmail(e string) string {
	at := strings.IndexByte(e, '@')
	if at < 1 {
		return ""
	}
	return e[:1] + "…" + e[at:]
}

// --- save and resume

type saveView struct {
	Form    Form
	Def     *Definition
	Signed  bool
	Sent    string
	Expires time.Time
	Resume  string
}

func (m *Module) saveForLater(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := m.current(r)
	if err != nil {
		m.noDraft(w, r, err)
		return
	}
	form, err := web.ParseForm(r)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	v := saveView{Form: c.Form, Def: c.Def, Expires: c.Draft.ExpiresAt}
	if u := c.firstUndone(); u >= 0 {
		v.Resume = c.stepURL(u)
	} else {
		v.Resume = c.stepURL(-1)
	}
	cz := kernel.CitizenFrom(ctx)
	if cz != nil && cz.ID != 0 {
		v.Signed = true
		m.views.Render(w, r, web.Page{Name: "forms/saved.html", Title: "forms.save.title", Data: v})
		return
	}
	if form.Get("email") == "" && form.Get("op") != "send" {
		m.views.Render(w, r, web.Page{Name: "forms/saved.html", Title: "forms.save.title", Form: form, Data: v})
		return
	}
	email, ok := Email(form.Get("email"))
	if !ok {
		form.Fail("email", "forms.error.email")
		m.views.Render(w, r, web.Page{Name: "forms/saved.html", Title: "forms.save.title", Status: http.StatusBadRequest, Form: form, Data: v})
		return
	}
	var tok string
	err = m.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if tok, err = retoken(ctx, tx, c.Draft.ID); err != nil {
			return err
		}
		return m.mail.Send(ctx, tx, kernel.Mail{To: []string{email}, Lang: m.lang(r), Template: "forms/resume", OrgID: c.Form.OrgID,
			Data: map[string]any{"Title": c.Def.Title, "Link": "/demarches/" + c.Form.Key + "/reprendre/" + tok, "Expires": c.Draft.ExpiresAt}})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.setDraftCookie(w, c.Form.Key, tok, c.Draft.ExpiresAt)
	v.Sent = email
	m.views.Render(w, r, web.Page{Name: "forms/saved.html", Title: "forms.save.title", Data: v})
}

func (m *Module) resume(w http.ResponseWriter, r *http.Request) {
	l, err := m.published(r.Context(), r.PathValue("form"))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	tok := r.PathValue("token")
	id, _, err := draftByToken(r.Context(), m.db.Read(), l.Form.ID, tok)
	if err != nil || len(tok) != 32 {
		m.fail(w, r, errs.New(errs.NotFound, "forms.error.resume_link"))
		return
	}
	dr, err := loadDraft(r.Context(), m.db.Read(), id, nil)
	if err != nil || !dr.ExpiresAt.After(m.now()) {
		m.fail(w, r, errs.New(errs.NotFound, "forms.error.resume_link"))
		return
	}
	m.setDraftCookie(w, l.Form.Key, tok, dr.ExpiresAt)
	http.Redirect(w, r, "/demarches/"+l.Form.Key, http.StatusSeeOther)
}
