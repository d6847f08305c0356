package forms

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/web"
	"parvis.org/parvis/modules/workflow"
)

// The JSON API, described by the OpenAPI document (openapi.go). Listing published forms and
// reading one are public; submitting a response needs a token holding forms.submit (an
// application acting for citizens: citizens in a browser use the pages); the rest needs an
// API token (or an agent session) holding forms.responses.

func (m *Module) apiError(w http.ResponseWriter, r *http.Request, err error) {
	status := web.StatusOf(err)
	var ve *ValidationError
	if errors.As(err, &ve) {
		web.WriteJSON(w, http.StatusUnprocessableEntity, map[string]any{"code": "invalid", "errors": m.messages(m.lang(r), ve.Problems)})
		return
	}
	if e, ok := errs.As(err); ok && status < 500 {
		web.WriteJSONError(w, status, string(e.Code), m.t(m.lang(r), e.Key, e.Args...), e.Field)
		return
	}
	m.log.ErrorContext(r.Context(), "forms api", "err", err)
	web.WriteJSONError(w, http.StatusInternalServerError, "internal", "internal error", "")
}

type apiForm struct {
	Key     string      `json:"key"`
	Title   string      `json:"title"`
	Version int         `json:"version"`
	Open    bool        `json:"open"`
	URL     string      `json:"url"`
	Def     *Definition `json:"definition,omitempty"`
}

func (m *Module) apiListForms(w http.ResponseWriter, r *http.Request) {
	rows, err := m.db.Read().QueryContext(r.Context(), `SELECT `+formCols+` FROM forms_forms WHERE published > 0 ORDER BY key`)
	if err != nil {
		m.apiError(w, r, err)
		return
	}
	var fs []Form
	for rows.Next() {
		f, err := scanForm(rows)
		if err != nil {
			rows.Close()
			m.apiError(w, r, err)
			return
		}
		fs = append(fs, f)
	}
	rows.Close()
	out := []apiForm{}
	for _, f := range fs {
		v, err := getVersion(r.Context(), m.db.Read(), f.ID, f.Published)
		if err != nil {
			m.apiError(w, r, err)
			return
		}
		out = append(out, apiForm{Key: f.Key, Title: v.Def.Title, Version: f.Published, Open: m.openProblem(f, v.Def, m.now()) == "", URL: "/demarches/" + f.Key})
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"forms": out})
}

func (m *Module) apiGetForm(w http.ResponseWriter, r *http.Request) {
	l, err := m.published(r.Context(), r.PathValue("key"))
	if err != nil {
		m.apiError(w, r, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, apiForm{Key: l.Form.Key, Title: l.Def.Title, Version: l.Def.Version,
		Open: m.openProblem(l.Form, l.Def, m.now()) == "", URL: "/demarches/" + l.Form.Key, Def: l.Def})
}

// SubmitRequest is the body of submitResponse.
type SubmitRequest struct {
	Answers map[string]any `json:"answers"`
	Email   string         `json:"email,omitempty"`
	Lang    string         `json:"lang,omitempty"`
}

// DecodeSubmission reads a submission body strictly (unknown fields, trailing data and
// duplicate-free JSON objects only); fuzzed in fuzz_test.go.
func DecodeSubmission(body io.Reader) (*SubmitRequest, error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var req SubmitRequest
	if err := dec.Decode(&req); err != nil {
		p := decodeProblem(err)
		p.Path = strings.TrimPrefix(p.Path, "answers.")
		return nil, &ValidationError{[]Problem{p}}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ValidationError{[]Problem{{Code: "syntax", Key: "forms.error.syntax", Message: "trailing data after the document"}}}
	}
	if req.Answers == nil {
		return nil, &ValidationError{[]Problem{{Path: "answers", Code: "required", Key: "forms.error.required"}}}
	}
	req.Answers = numbersToFloat(req.Answers).(map[string]any)
	return &req, nil
}

// numbersToFloat turns json.Number into float64 (UseNumber keeps big integers exact for the
// text questions — a SIRET sent as a number — while the checker reads numbers as float64).
func numbersToFloat(v any) any {
	switch x := v.(type) {
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			f, _ := x.Float64()
			return f
		}
		if f, err := x.Float64(); err == nil && len(x) <= 15 {
			return f
		}
		return string(x)
	case map[string]any:
		for k, y := range x {
			x[k] = numbersToFloat(y)
		}
		return x
	case []any:
		for i, y := range x {
			x[i] = numbersToFloat(y)
		}
		return x
	}
	return v
}

func (m *Module) apiSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	l, err := m.published(ctx, r.PathValue("key"))
	if err != nil {
		m.apiError(w, r, err)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			web.WriteJSONError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the request body is too large", "")
			return
		}
		m.apiError(w, r, err)
		return
	}
	req, err := DecodeSubmission(bytes.NewReader(body))
	if err != nil {
		m.apiError(w, r, err)
		return
	}
	if key := m.openProblem(l.Form, l.Def, m.now()); key != "" {
		m.apiError(w, r, errs.New(errs.Conflict, key))
		return
	}
	answers, ps := l.Def.CheckAll(req.Answers, m.today(), true)
	email := ""
	if req.Email != "" {
		e, ok := Email(req.Email)
		if !ok {
			ps = append(ps, Problem{Path: "email", Code: "email", Key: "forms.error.email"})
		}
		email = e
	}
	if len(ps) > 0 {
		m.apiError(w, r, &ValidationError{ps})
		return
	}
	if k := l.Def.Settings.EmailQuestion; k != "" && str(answers[k]) != "" {
		email = str(answers[k])
	}
	var cid int64
	if cz := kernel.CitizenFrom(ctx); cz != nil {
		cid = cz.ID
		if email == "" {
			email = cz.Email
		}
	}
	s := Submission{Form: l.Form, Def: l.Def, Answers: answers, CitizenID: cid, Email: email, Lang: req.Lang}
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		if len(k) > 200 {
			web.WriteJSONError(w, http.StatusBadRequest, "invalid", "Idempotency-Key is longer than 200 characters", "")
			return
		}
		s.SubmitKey = "k:" + hashToken(l.Form.Key+"\x00"+k)
	}
	resp, err := m.Submit(ctx, s)
	status := http.StatusCreated
	if e, ok := errs.As(err); ok && e.Key == "forms.error.already_submitted" && resp.Ref != "" {
		status, err = http.StatusOK, nil
	}
	if err != nil {
		m.apiError(w, r, err)
		return
	}
	web.WriteJSON(w, status, apiResponse(resp, nil))
}

type apiResp struct {
	Reference string         `json:"reference"`
	Form      int64          `json:"form_id"`
	Version   int            `json:"version"`
	State     string         `json:"state"`
	Label     string         `json:"public_label"`
	Unit      int64          `json:"unit_id"`
	Created   string         `json:"created_at"`
	Answers   map[string]any `json:"answers,omitempty"`
}

func apiResponse(r Response, answers Answers) apiResp {
	return apiResp{Reference: r.Ref, Form: r.FormID, Version: r.Version, State: r.State, Label: r.PublicLabel, Unit: r.UnitID,
		Created: r.CreatedAt.Format("2006-01-02T15:04:05Z07:00"), Answers: answers}
}

func (m *Module) apiListResponses(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	f, err := getForm(r.Context(), m.db.Read(), a.OrgID, r.PathValue("key"))
	if err != nil {
		m.apiError(w, r, err)
		return
	}
	flt, err := readFilter(r)
	if err != nil {
		m.apiError(w, r, err)
		return
	}
	p, err := m.List(r.Context(), a, f.ID, flt)
	if err != nil {
		m.apiError(w, r, err)
		return
	}
	out := []apiResp{}
	for _, resp := range p.Rows {
		out = append(out, apiResponse(resp, nil))
	}
	body := map[string]any{"responses": out}
	if p.Next != "" {
		body["next"] = p.Next
	}
	web.WriteJSON(w, http.StatusOK, body)
}

func (m *Module) apiGetResponse(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	resp, _, err := m.allowed(r.Context(), a, r.PathValue("ref"))
	if err != nil {
		m.apiError(w, r, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, apiResponse(resp, resp.Answers))
}

func (m *Module) apiRunAction(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	resp, _, err := m.allowed(r.Context(), a, r.PathValue("ref"))
	if err != nil {
		m.apiError(w, r, err)
		return
	}
	var in struct {
		Comment string            `json:"comment"`
		Values  map[string]string `json:"values"`
	}
	if r.ContentLength != 0 && !web.DecodeJSON(w, r, &in) {
		return
	}
	st, err := m.wf.Run(r.Context(), a, workflow.Ref{Type: ResourceType, ID: resp.Ref}, r.PathValue("action"), workflow.Input{Comment: in.Comment, Values: in.Values})
	if err != nil {
		m.apiError(w, r, err)
		return
	}
	resp.State, resp.PublicLabel, resp.UnitID = st.State, st.PublicLabel, st.UnitID
	web.WriteJSON(w, http.StatusOK, apiResponse(resp, nil))
}
