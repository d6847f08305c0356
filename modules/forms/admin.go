package forms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
	"parvis.org/parvis/modules/workflow"
)

// The back office: the list of forms, the builder (no code: forms of buttons, with up and down
// buttons to reorder; the whole document can also be edited as JSON or YAML), publishing,
// versions, import and export.

type listView struct {
	Forms     []Form
	CanManage bool
	Problems  []Problem
}

func (m *Module) adminList(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	fs, err := listForms(r.Context(), m.db.Read(), a.OrgID, false)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.views.Render(w, r, web.Page{Name: "forms/admin_list.html", Layout: "backoffice", Title: "forms.menu.forms",
		Data: listView{Forms: fs, CanManage: m.auth.Can(r.Context(), a, PermManage, nil)}})
}

// starter is the definition of a new form: one step with one question, to edit.
func starter(key, title string) *Definition {
	return &Definition{Key: key, Title: title, Steps: []Step{{Key: "etape_1", Title: "Étape 1", Sections: []Section{{Key: "section_1",
		Questions: []Question{{Key: "nom", Type: TText, Label: "Nom", Required: true}}}}}}}
}

func (m *Module) adminCreate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := kernel.AgentFrom(ctx)
	form, err := web.ParseForm(r)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	var def *Definition
	var imported error
	err = m.db.InTx(ctx, func(tx *store.Tx) error {
		switch form.Get("op") {
		case "import":
			def, imported = m.ImportForm(ctx, tx, a.OrgID, []byte(form.Values.Get("doc")), form.Get("format"))
			return imported
		default:
			def = starter(form.Get("key"), form.Get("title"))
			if _, err := getForm(ctx, tx, a.OrgID, def.Key); err == nil {
				return &ValidationError{[]Problem{{Path: "key", Code: "duplicate", Key: "forms.error.duplicate"}}}
			}
			_, err := m.SaveForm(ctx, tx, a.OrgID, def)
			return err
		}
	})
	var ve *ValidationError
	if errors.As(err, &ve) {
		fs, _ := listForms(ctx, m.db.Read(), a.OrgID, false)
		m.views.Render(w, r, web.Page{Name: "forms/admin_list.html", Layout: "backoffice", Title: "forms.menu.forms", Status: http.StatusBadRequest,
			Form: form, Data: listView{Forms: fs, CanManage: true, Problems: m.messages(m.lang(r), ve.Problems)}})
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/forms/"+def.Key+"/edit", http.StatusSeeOther)
}

// Bundle is what export writes and import reads: a form and its workflow, no personal data.
type Bundle struct {
	Form     *Definition     `json:"form"`
	Workflow json.RawMessage `json:"workflow,omitempty"`
}

// ExportForm writes the form's latest version with its workflow as "json" or "yaml".
func (m *Module) ExportForm(ctx context.Context, orgID int64, key, format string) ([]byte, error) {
	f, err := getForm(ctx, m.db.Read(), orgID, key)
	if err != nil {
		return nil, err
	}
	v, err := getVersion(ctx, m.db.Read(), f.ID, 0)
	if err != nil {
		return nil, err
	}
	b := Bundle{Form: v.Def}
	b.Form.Version = 0
	if v.Def.Workflow != "" {
		wf, err := m.wf.Export(ctx, orgID, v.Def.Workflow, "json")
		if err != nil {
			return nil, err
		}
		b.Workflow = wf
	}
	j, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, err
	}
	if format == "yaml" || format == "yml" {
		return yaml.JSONToYAML(j)
	}
	return append(j, '\n'), nil
}

// ImportForm reads a bundle and saves its workflow and form in tx: on any error, nothing is kept
// (the caller rolls back) and every problem is named by its path ("form.steps[0].key",
// "workflow.actions[1].to").
func (m *Module) ImportForm(ctx context.Context, tx *store.Tx, orgID int64, data []byte, format string) (*Definition, error) {
	b, err := ParseBundle(data, format)
	if err != nil {
		return nil, err
	}
	var ps []Problem
	if verr := b.Form.Validate(); verr != nil {
		var ve *ValidationError
		if errors.As(verr, &ve) {
			for _, p := range ve.Problems {
				p.Path = "form." + p.Path
				ps = append(ps, p)
			}
		}
	}
	if len(b.Workflow) > 0 {
		wd, err := m.wf.Import(ctx, tx, orgID, b.Workflow, "json")
		if err != nil {
			var wve *workflow.ValidationError
			if !errors.As(err, &wve) {
				return nil, err
			}
			for _, p := range wve.Problems {
				ps = append(ps, Problem{Path: strings.TrimSuffix("workflow."+p.Path, "."), Code: p.Code, Message: p.Message})
			}
		} else if wd.Key != b.Form.Workflow {
			// The workflow that comes with the form is the one it runs in.
			ps = append(ps, Problem{Path: "form.workflow", Code: "workflow", Key: "forms.error.workflow_mismatch", Args: []any{"key", wd.Key}})
		}
	}
	if len(ps) > 0 {
		return nil, &ValidationError{ps}
	}
	if _, err := m.SaveForm(ctx, tx, orgID, b.Form); err != nil {
		return nil, err
	}
	return b.Form, nil
}

// ParseBundle reads an exported bundle strictly.
func ParseBundle(data []byte, format string) (*Bundle, error) {
	var raw struct {
		Form     json.RawMessage `json:"form"`
		Workflow json.RawMessage `json:"workflow"`
	}
	trimmed := strings.TrimSpace(string(data))
	if format == "" {
		format = "yaml"
		if strings.HasPrefix(trimmed, "{") {
			format = "json"
		}
	}
	if format == "yaml" || format == "yml" {
		j, err := yaml.YAMLToJSON([]byte(trimmed))
		if err != nil {
			return nil, &ValidationError{[]Problem{{Code: "syntax", Key: "forms.error.syntax", Message: err.Error()}}}
		}
		trimmed = string(j)
	} else if format != "json" {
		return nil, &ValidationError{[]Problem{{Code: "format", Key: "forms.error.format"}}}
	}
	dec := json.NewDecoder(strings.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, &ValidationError{[]Problem{decodeProblem(err)}}
	}
	if len(raw.Form) == 0 || string(raw.Form) == "null" {
		return nil, &ValidationError{[]Problem{{Path: "form", Code: "required", Key: "forms.error.required"}}}
	}
	def, err := ParseDefinition(raw.Form, "json")
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			for i := range ve.Problems {
				ve.Problems[i].Path = strings.TrimSuffix("form."+ve.Problems[i].Path, ".")
			}
		}
		return nil, err
	}
	b := &Bundle{Form: def}
	if len(raw.Workflow) > 0 && string(raw.Workflow) != "null" {
		b.Workflow = raw.Workflow
	}
	return b, nil
}

func (m *Module) adminExport(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	format := r.URL.Query().Get("format")
	if format != "yaml" {
		format = "json"
	}
	b, err := m.ExportForm(r.Context(), a.OrgID, r.PathValue("key"), format)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	ctype := "application/json"
	if format == "yaml" {
		ctype = "application/yaml"
	}
	w.Header().Set("Content-Type", ctype+"; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, r.PathValue("key"), format))
	_, _ = w.Write(b)
}

// --- the builder

type editView struct {
	Form      Form
	Def       *Definition
	Versions  []Version
	Types     []string
	Doc       string
	Problems  []Problem
	Published bool
	Draft     bool // the latest version is not frozen
	Edit      *Question
	Questions []Question // earlier questions, for the conditions editor
}

func (m *Module) loadEdit(ctx context.Context, orgID int64, key string) (Form, Version, error) {
	f, err := getForm(ctx, m.db.Read(), orgID, key)
	if err != nil {
		return f, Version{}, err
	}
	v, err := getVersion(ctx, m.db.Read(), f.ID, 0)
	return f, v, err
}

func (m *Module) adminEdit(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	f, v, err := m.loadEdit(r.Context(), a.OrgID, r.PathValue("key"))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.renderEdit(w, r, f, v, v.Def, nil, nil, http.StatusOK)
}

func (m *Module) renderEdit(w http.ResponseWriter, r *http.Request, f Form, v Version, def *Definition, form *web.Form, ps []Problem, status int) {
	doc, _ := def.Marshal("yaml")
	ev := editView{Form: f, Def: def, Types: Types, Doc: string(doc), Problems: m.messages(m.lang(r), ps), Published: f.Published > 0, Draft: !v.Frozen}
	if form != nil && form.Values.Get("doc") != "" && len(ps) > 0 {
		ev.Doc = form.Values.Get("doc")
	}
	ev.Versions, _ = listVersions(r.Context(), m.db.Read(), f.ID)
	if k := r.URL.Query().Get("q"); k != "" {
		if loc, ok := def.Question(k); ok {
			ev.Edit = loc.Q
		}
	}
	for _, st := range def.Steps {
		for _, sec := range st.Sections {
			if sec.Repeat == nil {
				ev.Questions = append(ev.Questions, sec.Questions...)
			}
		}
	}
	m.views.Render(w, r, web.Page{Name: "forms/admin_edit.html", Layout: "backoffice", Title: "forms.builder.title", Status: status, Form: form, Data: ev})
}

func options(text string) []Option {
	var out []Option
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		val, label, ok := strings.Cut(line, "|")
		if !ok {
			label = val
			val = strings.ReplaceAll(Fold(val), " ", "_")
		}
		out = append(out, Option{Value: strings.TrimSpace(val), Label: strings.TrimSpace(label)})
	}
	return out
}

func (m *Module) adminEditPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := kernel.AgentFrom(ctx)
	f, v, err := m.loadEdit(ctx, a.OrgID, r.PathValue("key"))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	form, err := web.ParseForm(r)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	def := v.Def.Clone()
	op := form.Get("op")
	back := "/admin/forms/" + f.Key + "/edit"
	switch op {
	case "publish":
		if _, err := m.Publish(ctx, a.OrgID, f.Key); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				m.renderEdit(w, r, f, v, def, form, ve.Problems, http.StatusBadRequest)
				return
			}
			m.fail(w, r, err)
			return
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	case "close":
		if err := m.Close(ctx, a.OrgID, f.Key); err != nil {
			m.fail(w, r, err)
			return
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	case "doc":
		d, err := ParseDefinition([]byte(form.Values.Get("doc")), form.Get("format"))
		if err != nil {
			var ve *ValidationError
			errors.As(err, &ve)
			m.renderEdit(w, r, f, v, def, form, ve.Problems, http.StatusBadRequest)
			return
		}
		d.Key = f.Key // the key names the form; it is not renamed here
		def = d
	default:
		if p := editOp(def, op, form); p != nil {
			m.renderEdit(w, r, f, v, def, form, []Problem{*p}, http.StatusBadRequest)
			return
		}
	}
	err = m.db.InTx(ctx, func(tx *store.Tx) error { _, err := m.SaveForm(ctx, tx, a.OrgID, def); return err })
	var ve *ValidationError
	if errors.As(err, &ve) {
		m.renderEdit(w, r, f, v, def, form, ve.Problems, http.StatusBadRequest)
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// editOp applies one builder operation to def; a returned problem names what is wrong.
func editOp(def *Definition, op string, form *web.Form) *Problem {
	bad := func(path, key string) *Problem { return &Problem{Path: path, Code: "invalid", Key: key} }
	switch op {
	case "meta":
		def.Title = form.Get("title")
		def.Description = form.Get("description")
		def.Workflow = form.Get("workflow")
		s := &def.Settings
		s.Summary = form.Get("summary")
		s.MaxResponses, _ = strconv.Atoi(form.Get("max_responses"))
		s.DraftDays, _ = strconv.Atoi(form.Get("draft_days"))
		s.RetentionMonths, _ = strconv.Atoi(form.Get("retention_months"))
		s.RetentionMode = form.Get("retention_mode")
		s.OnePerCitizen = form.Get("one_per_citizen") == "yes"
		s.Captcha = form.Get("captcha") == "yes"
		s.EmailQuestion = form.Get("email_question")
		s.TitleQuestion = form.Get("title_question")
		s.Columns = nil
		for _, c := range strings.FieldsFunc(form.Get("columns"), func(r rune) bool { return r == ',' || r == ' ' }) {
			s.Columns = append(s.Columns, c)
		}
		s.ClosesAt = nil
		if c := form.Get("closes_at"); c != "" {
			t, ok := ParseDate(c)
			if !ok {
				return bad("closes_at", "forms.error.date")
			}
			s.ClosesAt = &t
		}
	case "add_step":
		n := len(def.Steps) + 1
		key := form.Get("step_key")
		if key == "" {
			key = fmt.Sprintf("etape_%d", n)
		}
		def.Steps = append(def.Steps, Step{Key: key, Title: form.Get("step_title"),
			Sections: []Section{{Key: fmt.Sprintf("%s_s1", key)}}})
	case "add_question", "edit_question":
		q := Question{Key: form.Get("q_key"), Type: form.Get("q_type"), Label: form.Get("q_label"), Hint: form.Get("q_hint"),
			Required: form.Get("q_required") == "yes", Text: form.Get("q_text"), Options: options(form.Values.Get("q_options")),
			Pattern: form.Get("q_pattern"), PatternMessage: form.Get("q_pattern_message")}
		if p := questionSettings(&q, form); p != nil {
			return p
		}
		if op == "edit_question" {
			loc, ok := def.Question(form.Get("key"))
			if !ok {
				return bad("key", "forms.error.unknown_question")
			}
			q.If = loc.Q.If
			*loc.Q = q
			return nil
		}
		si, err := strconv.Atoi(form.Get("step"))
		if err != nil || si < 0 || si >= len(def.Steps) {
			return bad("step", "forms.error.step_not_found")
		}
		st := &def.Steps[si]
		if len(st.Sections) == 0 {
			st.Sections = append(st.Sections, Section{Key: st.Key + "_s1"})
		}
		sec := &st.Sections[len(st.Sections)-1]
		if k := form.Get("section"); k != "" {
			if sec = sectionByKey(def, k); sec == nil || !slices.ContainsFunc(st.Sections, func(x Section) bool { return x.Key == k }) {
				return bad("section", "forms.error.section_not_found")
			}
		}
		sec.Questions = append(sec.Questions, q)
	case "place":
		return placeOp(def, form)
	case "move":
		key, dir := form.Get("key"), form.Get("dir")
		if sk, ok := strings.CutPrefix(key, "step:"); ok {
			i := def.StepIndex(sk)
			j := i - 1
			if dir == "down" {
				j = i + 1
			}
			if i < 0 || j < 0 || j >= len(def.Steps) {
				return nil
			}
			def.Steps[i], def.Steps[j] = def.Steps[j], def.Steps[i]
			return nil
		}
		loc, ok := def.Question(key)
		if !ok {
			return bad("key", "forms.error.unknown_question")
		}
		qs := loc.Sec.Questions
		j := loc.Index - 1
		if dir == "down" {
			j = loc.Index + 1
		}
		if j >= 0 && j < len(qs) {
			qs[loc.Index], qs[j] = qs[j], qs[loc.Index]
			return nil
		}
		// Past the section's end: into the neighbouring step's section (keyboard users can
		// move a question anywhere with the two buttons).
		to := loc.Step - 1
		if dir == "down" {
			to = loc.Step + 1
		}
		if to < 0 || to >= len(def.Steps) || len(def.Steps[to].Sections) == 0 {
			return nil
		}
		q := qs[loc.Index]
		loc.Sec.Questions = append(qs[:loc.Index:loc.Index], qs[loc.Index+1:]...)
		ts := &def.Steps[to].Sections[0]
		if dir == "down" {
			ts.Questions = append([]Question{q}, ts.Questions...)
		} else {
			ts = &def.Steps[to].Sections[len(def.Steps[to].Sections)-1]
			ts.Questions = append(ts.Questions, q)
		}
	case "delete":
		key := form.Get("key")
		if sk, ok := strings.CutPrefix(key, "step:"); ok {
			if i := def.StepIndex(sk); i >= 0 {
				def.Steps = append(def.Steps[:i], def.Steps[i+1:]...)
			}
			return nil
		}
		if sk, ok := strings.CutPrefix(key, "section:"); ok {
			for si := range def.Steps {
				st := &def.Steps[si]
				st.Sections = slices.DeleteFunc(st.Sections, func(sec Section) bool { return sec.Key == sk })
			}
			return nil
		}
		loc, ok := def.Question(key)
		if !ok {
			return bad("key", "forms.error.unknown_question")
		}
		loc.Sec.Questions = append(loc.Sec.Questions[:loc.Index], loc.Sec.Questions[loc.Index+1:]...)
	case "condition":
		target := conditionOf(def, form.Get("key"))
		if target == nil {
			return bad("key", "forms.error.unknown_question")
		}
		if form.Get("field") == "" {
			*target = nil
			return nil
		}
		c := formCondition(form)
		if form.Get("join") != "" && *target != nil {
			// AND / OR with the condition already there.
			if form.Get("join") == "and" {
				c = &Condition{All: []*Condition{*target, c}}
			} else {
				c = &Condition{Any: []*Condition{*target, c}}
			}
		}
		*target = c
	case "add_section", "edit_section":
		var sec *Section
		if op == "edit_section" {
			if sec = sectionByKey(def, form.Get("key")); sec == nil {
				return bad("key", "forms.error.section_not_found")
			}
			sec.Title = form.Get("section_title")
		} else {
			si := def.StepIndex(form.Get("step"))
			if si < 0 {
				return bad("step", "forms.error.step_not_found")
			}
			st := &def.Steps[si]
			key := form.Get("section_key")
			if key == "" {
				key = fmt.Sprintf("%s_s%d", st.Key, len(st.Sections)+1)
			}
			st.Sections = append(st.Sections, Section{Key: key, Title: form.Get("section_title")})
			sec = &st.Sections[len(st.Sections)-1]
		}
		sec.Repeat = nil
		if form.Get("repeat") == "yes" {
			r := &Repeat{Max: 5}
			for _, b := range []struct {
				name string
				dst  *int
			}{{"repeat_min", &r.Min}, {"repeat_max", &r.Max}} {
				if v := strings.TrimSpace(form.Get(b.name)); v != "" {
					n, err := strconv.Atoi(v)
					if err != nil {
						return &Problem{Path: b.name, Code: "number", Key: "forms.error.number"}
					}
					*b.dst = n
				}
			}
			sec.Repeat = r
		}
	case "branch":
		si := def.StepIndex(form.Get("step"))
		if si < 0 {
			return bad("step", "forms.error.step_not_found")
		}
		st := &def.Steps[si]
		if form.Get("clear") != "" {
			st.Next = nil
			return nil
		}
		if form.Get("field") == "" {
			return bad("field", "forms.error.condition_field")
		}
		st.Next = append(st.Next, Branch{If: formCondition(form), Goto: form.Get("goto")})
	default:
		return bad("op", "forms.error.malformed")
	}
	return nil
}

// conditionOf is where the condition of a question, a section ("section:KEY") or a step
// ("step:KEY") is kept, nil when there is no such thing.
func conditionOf(def *Definition, key string) **Condition {
	if k, ok := strings.CutPrefix(key, "step:"); ok {
		if i := def.StepIndex(k); i >= 0 {
			return &def.Steps[i].If
		}
		return nil
	}
	if k, ok := strings.CutPrefix(key, "section:"); ok {
		if sec := sectionByKey(def, k); sec != nil {
			return &sec.If
		}
		return nil
	}
	if loc, ok := def.Question(key); ok {
		return &loc.Q.If
	}
	return nil
}

func sectionByKey(def *Definition, key string) *Section {
	for si := range def.Steps {
		for ci := range def.Steps[si].Sections {
			if def.Steps[si].Sections[ci].Key == key {
				return &def.Steps[si].Sections[ci]
			}
		}
	}
	return nil
}

// formCondition reads the conditions editor's test: a question, an operator, a value (a
// list separated by commas for "among").
func formCondition(form *web.Form) *Condition {
	c := &Condition{Field: form.Get("field"), Op: form.Get("cond_op")}
	if c.Op == "in" {
		for _, x := range strings.Split(form.Get("value"), ",") {
			c.Values = append(c.Values, strings.TrimSpace(x))
		}
	} else if c.Op != "empty" && c.Op != "not_empty" {
		c.Value = form.Get("value")
	}
	return c
}

// questionSettings reads the builder's settings of a question into q: those of its type
// only (the form shows them all), each number checked. The question's document gets exactly
// what the form holds, so that editing a question never drops a setting it had.
func questionSettings(q *Question, form *web.Form) *Problem {
	var p *Problem
	num := func(name string, bits int) (float64, bool) {
		s := strings.ReplaceAll(strings.TrimSpace(form.Get(name)), ",", ".")
		if s == "" || p != nil {
			return 0, false
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || (bits > 0 && x != float64(int64(x))) {
			p = &Problem{Path: name, Code: "number", Key: "forms.error.number"}
			return 0, false
		}
		return x, true
	}
	integer := func(name string, dst *int) {
		if x, ok := num(name, 64); ok {
			*dst = int(x)
		}
	}
	integer("q_min_length", &q.MinLength)
	integer("q_max_length", &q.MaxLength)
	switch q.Type {
	case TPhone:
		q.Phone = form.Get("q_phone")
	case TNumber:
		if x, ok := num("q_min", 0); ok {
			q.Min = &x
		}
		if x, ok := num("q_max", 0); ok {
			q.Max = &x
		}
		if x, ok := num("q_step", 0); ok {
			q.Step = x
		}
	case TDate, TDateTime:
		q.MinDate, q.MaxDate = form.Get("q_min_date"), form.Get("q_max_date")
	case TChoice:
		q.Display = form.Get("q_display")
	case TMulti:
		integer("q_min_select", &q.MinSelect)
		integer("q_max_select", &q.MaxSelect)
	case TTable:
		q.Columns, q.Options = q.Options, nil
		integer("q_max_rows", &q.MaxRows)
	case TFile, TPhoto:
		var mb int
		integer("q_max_mb", &mb)
		if mb > 0 {
			q.MaxSize = int64(mb) << 20
		}
		integer("q_max_files", &q.MaxFiles)
		q.Accept = strings.Fields(strings.ReplaceAll(form.Get("q_accept"), ",", " "))
	case TMap:
		ms := MapSettings{Tiles: form.Get("q_map_tiles"), Attribution: form.Get("q_map_attribution"), AttributionURL: form.Get("q_map_attribution_url")}
		if x, ok := num("q_map_lat", 0); ok {
			ms.Lat = x
		}
		if x, ok := num("q_map_lng", 0); ok {
			ms.Lng = x
		}
		integer("q_map_zoom", &ms.Zoom)
		if ms != (MapSettings{}) {
			q.Map = &ms
		}
	}
	return p
}

// --- responses

// filter is the responses list's query, read from the URL.
type filter struct {
	State, Q, Field, Value, Sort string
	From, To                     *time.Time
	Unit                         int64
	After                        string // keyset cursor
}

func readFilter(r *http.Request) (filter, error) {
	q := r.URL.Query()
	f := filter{State: q.Get("state"), Q: strings.TrimSpace(q.Get("q")), Field: q.Get("field"), Value: q.Get("value"), Sort: q.Get("sort"), After: q.Get("after")}
	for _, d := range []struct {
		name string
		dst  **time.Time
		add  int
	}{{"from", &f.From, 0}, {"to", &f.To, 1}} {
		if s := q.Get(d.name); s != "" {
			t, ok := ParseDate(s)
			if !ok {
				return f, errs.OnField(errs.Invalid, d.name, "forms.error.date")
			}
			t = t.AddDate(0, 0, d.add)
			*d.dst = &t
		}
	}
	if s := q.Get("unit"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return f, errs.OnField(errs.Invalid, "unit", "forms.error.number")
		}
		f.Unit = n
	}
	if f.Field != "" && !keyRe.MatchString(f.Field) {
		return f, errs.OnField(errs.Invalid, "field", "forms.error.unknown_question")
	}
	return f, nil
}

// where builds the SQL filter of a form's responses in the agent's scope.
func (m *Module) where(ctx context.Context, a *kernel.Agent, formID int64, f filter, dialect store.Dialect) (string, []any, error) {
	sc, err := m.auth.Scope(ctx, a, PermResponses)
	if err != nil {
		return "", nil, err
	}
	w := []string{"r.form_id = ?", "r.org_id = ?"}
	args := []any{formID, a.OrgID}
	if !sc.All && !containsID(sc.ResourceIDs, formID) {
		if len(sc.UnitIDs) == 0 {
			w = append(w, "1 = 0")
		} else {
			ph := strings.TrimSuffix(strings.Repeat("?, ", len(sc.UnitIDs)), ", ")
			w = append(w, "r.unit_id IN ("+ph+")")
			for _, u := range sc.UnitIDs {
				args = append(args, u)
			}
		}
	}
	if f.State != "" {
		w, args = append(w, "r.state = ?"), append(args, f.State)
	}
	if f.Unit != 0 {
		w, args = append(w, "r.unit_id = ?"), append(args, f.Unit)
	}
	if f.From != nil {
		w, args = append(w, "r.created_at >= ?"), append(args, *f.From)
	}
	if f.To != nil {
		w, args = append(w, "r.created_at < ?"), append(args, *f.To)
	}
	if f.Field != "" && f.Value != "" {
		if dialect == store.Postgres {
			w = append(w, "(r.answers::jsonb ->> '"+f.Field+"') = ?")
		} else {
			w = append(w, "(r.answers ->> '$."+f.Field+"') = ?")
		}
		args = append(args, f.Value)
	}
	if q := Fold(f.Q); q != "" {
		if dialect == store.Postgres {
			w = append(w, "to_tsvector('simple', r.search) @@ plainto_tsquery('simple', ?)")
			args = append(args, q)
		} else {
			var terms []string
			for _, t := range strings.Fields(q) {
				terms = append(terms, `"`+strings.ReplaceAll(t, `"`, "")+`"`)
			}
			w = append(w, "r.id IN (SELECT rowid FROM forms_search WHERE forms_search MATCH ?)")
			args = append(args, strings.Join(terms, " "))
		}
	}
	return strings.Join(w, " AND "), args, nil
}

func containsID(ids []string, id int64) bool {
	s := strconv.FormatInt(id, 10)
	for _, x := range ids {
		if x == s {
			return true
		}
	}
	return false
}

// Page is one page of a responses list.
type Page struct {
	Rows []Response
	Next string // cursor of the next page, "" at the end
}

const pageSize = 50

// List returns one page of responses, in keyset order: fast at any depth (the indexes on
// form_id, created_at, id serve every page).
func (m *Module) List(ctx context.Context, a *kernel.Agent, formID int64, f filter) (Page, error) {
	where, args, err := m.where(ctx, a, formID, f, m.db.Dialect)
	if err != nil {
		return Page{}, err
	}
	// The orders, each served by an index on (form_id, its column, id).
	col, asc := "r.created_at", false
	switch f.Sort {
	case "", "new":
	case "old":
		asc = true
	case "changed": // the last changed first
		col = "r.updated_at"
	default:
		return Page{}, errs.OnField(errs.Invalid, "sort", "forms.error.choice")
	}
	if f.After != "" {
		at, id, ok := decodeCursor(f.After)
		if !ok {
			return Page{}, errs.OnField(errs.Invalid, "after", "forms.error.cursor")
		}
		if asc {
			where += " AND (" + col + " > ? OR (" + col + " = ? AND r.id > ?))"
		} else {
			where += " AND (" + col + " < ? OR (" + col + " = ? AND r.id < ?))"
		}
		args = append(args, at, at, id)
	}
	order := " ORDER BY " + col + " DESC, r.id DESC"
	if asc {
		order = " ORDER BY " + col + ", r.id"
	}
	rows, err := m.db.Read().QueryContext(ctx, `SELECT `+prefixed(respCols)+` FROM forms_responses r WHERE `+where+order+` LIMIT `+strconv.Itoa(pageSize+1), args...)
	if err != nil {
		return Page{}, err
	}
	defer rows.Close()
	var p Page
	for rows.Next() {
		resp, err := scanResponse(rows)
		if err != nil {
			return p, err
		}
		p.Rows = append(p.Rows, resp)
	}
	if len(p.Rows) > pageSize {
		last := p.Rows[pageSize-1]
		p.Rows = p.Rows[:pageSize]
		at := last.CreatedAt
		if col == "r.updated_at" {
			at = last.UpdatedAt
		}
		p.Next = encodeCursor(at, last.ID)
	}
	return p, rows.Err()
}

func prefixed(cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = "r." + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

func encodeCursor(t time.Time, id int64) string {
	return strconv.FormatInt(t.UnixMicro(), 36) + "." + strconv.FormatInt(id, 36)
}

func decodeCursor(s string) (time.Time, int64, bool) {
	a, b, ok := strings.Cut(s, ".")
	if !ok {
		return time.Time{}, 0, false
	}
	us, e1 := strconv.ParseInt(a, 36, 64)
	id, e2 := strconv.ParseInt(b, 36, 64)
	if e1 != nil || e2 != nil {
		return time.Time{}, 0, false
	}
	return time.UnixMicro(us).UTC(), id, true
}

type responsesView struct {
	Form    Form
	Def     *Definition
	Columns []Question
	Rows    [][]string
	Refs    []string
	Filter  filter
	Next    string
	Query   string // the filter as a query string, for export links
	States  []workflow.State
	Units   []unitOption // the units the agent may filter on (none: no filter shown)
}

// unitOption is one unit of the list's filter, indented by its depth in the tree.
type unitOption struct {
	ID       int64
	Label    string
	Selected bool
}

// unitOptions lists the units of the agent's organisation whose responses to the form they
// may see (every unit when granted the whole organisation or the form itself), in tree order.
func (m *Module) unitOptions(ctx context.Context, a *kernel.Agent, formID, selected int64) ([]unitOption, error) {
	if m.units == nil {
		return nil, nil
	}
	sc, err := m.auth.Scope(ctx, a, PermResponses)
	if err != nil {
		return nil, err
	}
	all, err := m.units.Units(ctx, a.OrgID)
	if err != nil {
		return nil, err
	}
	var out []unitOption
	for _, u := range all {
		if sc.All || containsID(sc.ResourceIDs, formID) || slices.Contains(sc.UnitIDs, u.ID) {
			out = append(out, unitOption{ID: u.ID, Label: strings.Repeat("– ", u.Depth) + u.Name, Selected: u.ID == selected})
		}
	}
	return out, nil
}

func (m *Module) adminResponses(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := kernel.AgentFrom(ctx)
	f, v, err := m.formVersion(ctx, a.OrgID, r.PathValue("key"))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	flt, err := readFilter(r)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	p, err := m.List(ctx, a, f.ID, flt)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	lang := m.lang(r)
	rv := responsesView{Form: f, Def: v.Def, Filter: flt, Columns: columns(v.Def)}
	q := r.URL.Query()
	q.Del("after")
	rv.Query = q.Encode()
	if p.Next != "" {
		q.Set("after", p.Next)
		rv.Next = "?" + q.Encode()
	}
	if wf, err := m.wf.Definition(ctx, a.OrgID, workflowKey(v.Def)); err == nil {
		rv.States = wf.States
	}
	if rv.Units, err = m.unitOptions(ctx, a, f.ID, flt.Unit); err != nil {
		m.fail(w, r, err)
		return
	}
	for _, resp := range p.Rows {
		ans, _ := v.Def.DecodeAnswers([]byte(resp.raw))
		row := []string{resp.Ref, m.views.NewView(r, web.Page{}).DateTime(resp.CreatedAt), resp.State}
		for _, c := range rv.Columns {
			row = append(row, Display(&c, ans[c.Key], m.t(lang, "forms.yes"), m.t(lang, "forms.no")))
		}
		rv.Rows = append(rv.Rows, row)
		rv.Refs = append(rv.Refs, resp.Ref)
	}
	m.views.Render(w, r, web.Page{Name: "forms/admin_responses.html", Layout: "backoffice", Title: "forms.responses.title", Data: rv})
}

func workflowKey(d *Definition) string {
	if d.Workflow == "" {
		return simpleWorkflow
	}
	return d.Workflow
}

// formVersion is a form of the agent's organisation with its published (else latest) version.
func (m *Module) formVersion(ctx context.Context, orgID int64, key string) (Form, Version, error) {
	f, err := getForm(ctx, m.db.Read(), orgID, key)
	if err != nil {
		return f, Version{}, err
	}
	v, err := getVersion(ctx, m.db.Read(), f.ID, f.Published)
	return f, v, err
}

// columns are the questions the list shows: the form's choice, else the first four.
func columns(d *Definition) []Question {
	var out []Question
	for _, k := range d.Settings.Columns {
		if loc, ok := d.Question(k); ok {
			out = append(out, *loc.Q)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, st := range d.Steps {
		for _, sec := range st.Sections {
			for _, q := range sec.Questions {
				if sec.Repeat == nil && q.Type != TInfo && q.Type != TFile && q.Type != TPhoto && len(out) < 4 {
					out = append(out, q)
				}
			}
		}
	}
	return out
}

// allowed loads a response the agent may see (NotFound otherwise: no leak of existence).
func (m *Module) allowed(ctx context.Context, a *kernel.Agent, ref string) (Response, *Definition, error) {
	resp, def, err := m.loadResponse(ctx, m.db.Read(), ref)
	if err != nil {
		return resp, nil, err
	}
	if resp.OrgID != a.OrgID || !m.auth.Can(ctx, a, PermResponses, &kernel.Resource{Type: "form", ID: strconv.FormatInt(resp.FormID, 10), UnitID: resp.UnitID, OrgID: resp.OrgID}) {
		return resp, nil, errs.New(errs.NotFound, "forms.error.response_not_found")
	}
	return resp, def, nil
}

type responseView struct {
	Response Response
	Def      *Definition
	Form     Form
	Lines    []Line
	Files    []FileRef
	Messages []Message
	History  any
	Actions  []workflow.Action
}

func (m *Module) adminResponse(w http.ResponseWriter, r *http.Request) {
	m.renderResponse(w, r, nil, http.StatusOK)
}

func (m *Module) renderResponse(w http.ResponseWriter, r *http.Request, form *web.Form, status int) {
	ctx := r.Context()
	a := kernel.AgentFrom(ctx)
	resp, def, err := m.allowed(ctx, a, r.PathValue("ref"))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	lang := m.lang(r)
	f, _ := formByID(ctx, m.db.Read(), resp.FormID)
	v := responseView{Response: resp, Def: def, Form: f, Lines: def.Lines(resp.Answers, m.t(lang, "forms.yes"), m.t(lang, "forms.no")),
		Files: fileRefs(def, resp.Answers)}
	v.Messages, _ = listMessages(ctx, m.db.Read(), resp.ID)
	ref := workflow.Ref{Type: ResourceType, ID: resp.Ref}
	v.History, _ = m.wf.HistoryHTML(r, ref, false)
	v.Actions, _ = m.wf.AvailableActions(ctx, a, ref)
	m.views.Render(w, r, web.Page{Name: "forms/admin_response.html", Layout: "backoffice", Title: "forms.response.title", Status: status, Form: form, Data: v})
}

func (m *Module) adminMessage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := kernel.AgentFrom(ctx)
	resp, _, err := m.allowed(ctx, a, r.PathValue("ref"))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	form, err := web.ParseForm(r)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	body := form.Get("message")
	if body == "" {
		form.Fail("message", "forms.error.required")
	} else if len([]rune(body)) > maxMessage {
		form.Fail("message", "forms.error.too_long", "max", maxMessage)
	}
	if !form.Valid() {
		m.renderResponse(w, r, form, http.StatusBadRequest)
		return
	}
	if err := m.agentMessage(ctx, a, resp, body); err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/reponses/"+resp.Ref+"#messages", http.StatusSeeOther)
}

func (m *Module) adminFile(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := kernel.AgentFrom(ctx)
	resp, def, err := m.allowed(ctx, a, r.PathValue("ref"))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	for _, f := range fileRefs(def, resp.Answers) {
		if f.ID == r.PathValue("id") {
			w.Header().Set("Content-Type", f.Type)
			w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, strings.ReplaceAll(f.Name, `"`, "")))
			w.Header().Set("X-Content-Type-Options", "nosniff")
			http.ServeFile(w, r, m.filePath(f.ID))
			return
		}
	}
	m.fail(w, r, errs.New(errs.NotFound, "forms.error.file_not_found"))
}
