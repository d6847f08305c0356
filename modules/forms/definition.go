package forms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"

	"parvis.org/parvis/kernel/errs"
)

// ValidationError lists the problems of a definition or a submission, each named by its path.
type ValidationError struct{ Problems []Problem }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Path + ": " + p.Code
		if p.Message != "" {
			parts[i] += " (" + p.Message + ")"
		}
	}
	return "invalid: " + strings.Join(parts, "; ")
}

// Unwrap gives the error the errs.Invalid code.
func (e *ValidationError) Unwrap() error { return errs.New(errs.Invalid, "forms.error.invalid") }

var keyRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Limits that keep a document (and a page) reasonable.
const (
	maxQuestions = 500
	maxRepeat    = 50
	maxTableRows = 50
	maxOptions   = 200
	maxFileSize  = 20 << 20
	defFileSize  = 5 << 20
	maxDocBytes  = 1 << 20
)

// ParseDefinition reads a JSON or YAML document ("json", "yaml"; "" guesses from the first
// character), refusing unknown fields. It does not validate: see Validate.
func ParseDefinition(data []byte, format string) (*Definition, error) {
	data = bytes.TrimSpace(data)
	if len(data) > maxDocBytes {
		return nil, &ValidationError{[]Problem{{Code: "too_large", Key: "forms.error.doc_too_large"}}}
	}
	if format == "" {
		format = "yaml"
		if len(data) > 0 && data[0] == '{' {
			format = "json"
		}
	}
	switch format {
	case "yaml", "yml":
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, &ValidationError{[]Problem{{Code: "syntax", Key: "forms.error.syntax", Message: err.Error()}}}
		}
		data = j
	case "json":
	default:
		return nil, &ValidationError{[]Problem{{Code: "format", Key: "forms.error.format"}}}
	}
	var d Definition
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, &ValidationError{[]Problem{decodeProblem(err)}}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ValidationError{[]Problem{{Code: "syntax", Key: "forms.error.syntax", Message: "trailing data after the document"}}}
	}
	return &d, nil
}

func decodeProblem(err error) Problem {
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &ute):
		return Problem{Path: ute.Field, Code: "type", Key: "forms.error.type", Message: fmt.Sprintf("must be a %s, not a JSON %s", ute.Type.Kind(), ute.Value)}
	case errors.As(err, &se):
		return Problem{Code: "syntax", Key: "forms.error.syntax", Message: se.Error()}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Problem{Path: f, Code: "unknown_field", Key: "forms.error.unknown_field", Message: fmt.Sprintf("unknown field %q", f)}
	}
	return Problem{Code: "syntax", Key: "forms.error.syntax", Message: err.Error()}
}

// Marshal writes the definition as "json" or "yaml".
func (d *Definition) Marshal(format string) ([]byte, error) {
	j, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	switch format {
	case "json", "":
		return append(j, '\n'), nil
	case "yaml", "yml":
		return yaml.JSONToYAML(j)
	}
	return nil, fmt.Errorf("format %q: want json or yaml", format)
}

// Clone returns a deep copy (through JSON: definitions are plain data).
func (d *Definition) Clone() *Definition {
	b, _ := json.Marshal(d)
	var c Definition
	_ = json.Unmarshal(b, &c)
	return &c
}

// Loc locates a question in the definition.
type Loc struct {
	Step, Section, Index int
	Q                    *Question
	Sec                  *Section
}

// Question returns where the question key is, or false.
func (d *Definition) Question(key string) (Loc, bool) {
	for si := range d.Steps {
		for ci := range d.Steps[si].Sections {
			sec := &d.Steps[si].Sections[ci]
			for qi := range sec.Questions {
				if sec.Questions[qi].Key == key {
					return Loc{si, ci, qi, &sec.Questions[qi], sec}, true
				}
			}
		}
	}
	return Loc{}, false
}

// StepIndex returns the index of a step key, -1 if none.
func (d *Definition) StepIndex(key string) int {
	for i, s := range d.Steps {
		if s.Key == key {
			return i
		}
	}
	return -1
}

// Validate checks a definition ready to publish; problems are named by their path in the document.
func (d *Definition) Validate() error { return d.validate(false) }

// ValidateDraft is Validate for a version being built: a step or section may still be empty
// (the builder adds a step, then its questions); publishing checks everything.
func (d *Definition) ValidateDraft() error { return d.validate(true) }

func (d *Definition) validate(draft bool) error {
	var ps []Problem
	bad := func(path, code, key string, args ...any) {
		ps = append(ps, Problem{Path: path, Code: code, Key: key, Args: args})
	}
	if !keyRe.MatchString(d.Key) {
		bad("key", "key", "forms.error.key")
	}
	if strings.TrimSpace(d.Title) == "" {
		bad("title", "required", "forms.error.required")
	}
	if d.Workflow != "" && !regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`).MatchString(d.Workflow) {
		bad("workflow", "key", "forms.error.key")
	}
	if len(d.Steps) == 0 {
		bad("steps", "required", "forms.error.no_steps")
	}
	s := &d.Settings
	if s.MaxResponses < 0 {
		bad("settings.max_responses", "range", "forms.error.negative")
	}
	if s.DraftDays < 0 || s.DraftDays > 365 {
		bad("settings.draft_days", "range", "forms.error.draft_days")
	}
	if s.RetentionMonths < 0 || s.RetentionMonths > 1200 {
		bad("settings.retention_months", "range", "forms.error.negative")
	}
	if s.RetentionMode != "" && s.RetentionMode != "purge" && s.RetentionMode != "anonymise" {
		bad("settings.retention_mode", "enum", "forms.error.retention_mode")
	}
	if s.OpensAt != nil && s.ClosesAt != nil && !s.ClosesAt.After(*s.OpensAt) {
		bad("settings.closes_at", "range", "forms.error.closes_before_opens")
	}
	keys := map[string]string{} // question and section keys → path
	seenSteps := map[string]bool{}
	total := 0
	// known: questions defined so far (conditions may only look back), outside repeats.
	known := map[string]*Question{}
	for si := range d.Steps {
		st := &d.Steps[si]
		sp := fmt.Sprintf("steps[%d]", si)
		if !keyRe.MatchString(st.Key) || st.Key == "end" {
			bad(sp+".key", "key", "forms.error.key")
		} else if seenSteps[st.Key] {
			bad(sp+".key", "duplicate", "forms.error.duplicate")
		}
		seenSteps[st.Key] = true
		if strings.TrimSpace(st.Title) == "" {
			bad(sp+".title", "required", "forms.error.required")
		}
		checkCond(st.If, sp+".if", known, bad)
		for ci := range st.Sections {
			sec := &st.Sections[ci]
			cp := fmt.Sprintf("%s.sections[%d]", sp, ci)
			if !keyRe.MatchString(sec.Key) {
				bad(cp+".key", "key", "forms.error.key")
			} else if _, dup := keys[sec.Key]; dup {
				bad(cp+".key", "duplicate", "forms.error.duplicate")
			}
			keys[sec.Key] = cp
			checkCond(sec.If, cp+".if", known, bad)
			if r := sec.Repeat; r != nil {
				if r.Max < 1 || r.Max > maxRepeat || r.Min < 0 || r.Min > r.Max {
					bad(cp+".repeat", "range", "forms.error.repeat", "max", maxRepeat)
				}
			}
			if len(sec.Questions) == 0 && !draft {
				bad(cp+".questions", "required", "forms.error.no_questions")
			}
			for qi := range sec.Questions {
				q := &sec.Questions[qi]
				qp := fmt.Sprintf("%s.questions[%d]", cp, qi)
				total++
				if !keyRe.MatchString(q.Key) {
					bad(qp+".key", "key", "forms.error.key")
				} else if _, dup := keys[q.Key]; dup {
					bad(qp+".key", "duplicate", "forms.error.duplicate")
				}
				keys[q.Key] = qp
				checkCond(q.If, qp+".if", known, bad)
				checkQuestion(q, qp, sec.Repeat != nil, bad)
				if sec.Repeat == nil {
					known[q.Key] = q
				}
			}
		}
		for bi, b := range st.Next {
			bp := fmt.Sprintf("%s.next[%d]", sp, bi)
			if b.If == nil {
				bad(bp+".if", "required", "forms.error.required")
			}
			checkCond(b.If, bp+".if", known, bad)
			// Branches only go forward, so that no path loops.
			if to := d.StepIndex(b.Goto); b.Goto != "end" && to <= si {
				bad(bp+".goto", "step", "forms.error.goto")
			}
		}
	}
	if total > maxQuestions {
		bad("steps", "too_many", "forms.error.too_many", "max", maxQuestions)
	}
	if k := s.EmailQuestion; k != "" {
		if q := known[k]; q == nil || q.Type != TEmail {
			bad("settings.email_question", "question", "forms.error.email_question")
		}
	}
	if k := s.TitleQuestion; k != "" && known[k] == nil {
		bad("settings.title_question", "question", "forms.error.unknown_question")
	}
	for i, c := range s.Columns {
		if known[c] == nil {
			bad(fmt.Sprintf("settings.columns[%d]", i), "question", "forms.error.unknown_question")
		}
	}
	if len(ps) > 0 {
		return &ValidationError{ps}
	}
	return nil
}

var condOps = map[string]bool{"eq": true, "ne": true, "in": true, "contains": true, "gt": true, "lt": true, "empty": true, "not_empty": true}

func checkCond(c *Condition, path string, known map[string]*Question, bad func(path, code, key string, args ...any)) {
	if c == nil {
		return
	}
	leaf := c.Field != "" || c.Op != ""
	switch {
	case leaf && (len(c.All) > 0 || len(c.Any) > 0):
		bad(path, "condition", "forms.error.condition_mixed")
	case len(c.All) > 0 && len(c.Any) > 0:
		bad(path, "condition", "forms.error.condition_mixed")
	case leaf:
		if known[c.Field] == nil {
			bad(path+".field", "question", "forms.error.condition_field")
		}
		if !condOps[c.Op] {
			bad(path+".op", "enum", "forms.error.condition_op")
		}
		if c.Op == "in" && len(c.Values) == 0 {
			bad(path+".values", "required", "forms.error.required")
		}
	case len(c.All) == 0 && len(c.Any) == 0:
		bad(path, "condition", "forms.error.condition_empty")
	}
	for i, x := range c.All {
		checkCond(x, fmt.Sprintf("%s.all[%d]", path, i), known, bad)
	}
	for i, x := range c.Any {
		checkCond(x, fmt.Sprintf("%s.any[%d]", path, i), known, bad)
	}
}

func checkQuestion(q *Question, qp string, repeated bool, bad func(path, code, key string, args ...any)) {
	known := false
	for _, t := range Types {
		known = known || t == q.Type
	}
	if !known {
		bad(qp+".type", "enum", "forms.error.type_unknown")
		return
	}
	if q.Type != TInfo && strings.TrimSpace(q.Label) == "" {
		bad(qp+".label", "required", "forms.error.required")
	}
	if q.MinLength < 0 || q.MaxLength < 0 || (q.MaxLength > 0 && q.MinLength > q.MaxLength) {
		bad(qp+".max_length", "range", "forms.error.range")
	}
	if q.Pattern != "" {
		if _, err := regexp.Compile(q.Pattern); err != nil || len(q.Pattern) > 500 {
			bad(qp+".pattern", "pattern", "forms.error.pattern_syntax")
		}
	}
	if q.Min != nil && q.Max != nil && *q.Min > *q.Max {
		bad(qp+".max", "range", "forms.error.range")
	}
	if q.Step < 0 {
		bad(qp+".step", "range", "forms.error.negative")
	}
	for _, b := range []struct{ name, v string }{{"min_date", q.MinDate}, {"max_date", q.MaxDate}} {
		if b.v != "" && !relDate.MatchString(b.v) {
			bad(qp+"."+b.name, "date", "forms.error.relative_date")
		}
	}
	if q.Phone != "" && q.Phone != "fr" && q.Phone != "intl" {
		bad(qp+".phone", "enum", "forms.error.phone_mode")
	}
	if q.Map != nil && q.Type != TMap {
		bad(qp+".map", "map", "forms.error.map_only")
	}
	if q.Display != "" && q.Display != "radio" && q.Display != "select" {
		bad(qp+".display", "enum", "forms.error.display")
	}
	switch q.Type {
	case TChoice, TMulti:
		if len(q.Options) == 0 || len(q.Options) > maxOptions {
			bad(qp+".options", "required", "forms.error.options")
		}
		seen := map[string]bool{}
		for i, o := range q.Options {
			if o.Value == "" || seen[o.Value] || strings.TrimSpace(o.Label) == "" {
				bad(fmt.Sprintf("%s.options[%d]", qp, i), "option", "forms.error.option")
			}
			seen[o.Value] = true
		}
		if q.MinSelect < 0 || (q.MaxSelect > 0 && q.MinSelect > q.MaxSelect) {
			bad(qp+".max_select", "range", "forms.error.range")
		}
	case TTable:
		if len(q.Columns) == 0 || len(q.Columns) > 20 {
			bad(qp+".columns", "required", "forms.error.options")
		}
		for i, o := range q.Columns {
			if !keyRe.MatchString(o.Value) || strings.TrimSpace(o.Label) == "" {
				bad(fmt.Sprintf("%s.columns[%d]", qp, i), "option", "forms.error.option")
			}
		}
		if q.MaxRows < 0 || q.MaxRows > maxTableRows {
			bad(qp+".max_rows", "range", "forms.error.range")
		}
		if repeated {
			bad(qp+".type", "nested", "forms.error.nested")
		}
	case TFile, TPhoto:
		if q.MaxSize < 0 || q.MaxSize > maxFileSize {
			bad(qp+".max_size", "range", "forms.error.max_size", "max", maxFileSize>>20)
		}
		if q.MaxFiles < 0 || q.MaxFiles > 20 {
			bad(qp+".max_files", "range", "forms.error.range")
		}
		for i, a := range q.Accept {
			if _, _, err := mime.ParseMediaType(strings.Replace(a, "/*", "/x", 1)); err != nil || !strings.Contains(a, "/") {
				bad(fmt.Sprintf("%s.accept[%d]", qp, i), "mime", "forms.error.mime")
			}
		}
		if repeated {
			bad(qp+".type", "nested", "forms.error.nested")
		}
	case TMap:
		if m := q.Map; m != nil {
			t := m.Tiles
			if t != "" && (!(strings.HasPrefix(t, "https://") || (strings.HasPrefix(t, "/") && !strings.HasPrefix(t, "//"))) ||
				!strings.Contains(t, "{z}") || !strings.Contains(t, "{x}") || !strings.Contains(t, "{y}") || len(t) > 500 ||
				strings.ContainsAny(t, "\"<> \t\n")) {
				bad(qp+".map.tiles", "tiles", "forms.error.map_tiles")
			}
			if t != "" && strings.HasPrefix(t, "https://") && strings.TrimSpace(m.Attribution) == "" {
				bad(qp+".map.attribution", "required", "forms.error.map_attribution")
			}
			if u := m.AttributionURL; u != "" && (!strings.HasPrefix(u, "https://") || len(u) > 500 || strings.ContainsAny(u, "\"<> \t\n")) {
				bad(qp+".map.attribution_url", "url", "forms.error.map_url")
			}
			if len(m.Attribution) > 300 {
				bad(qp+".map.attribution", "too_long", "forms.error.too_long", "max", 300)
			}
			if m.Lat < -90 || m.Lat > 90 || m.Lng < -180 || m.Lng > 180 {
				bad(qp+".map.lat", "range", "forms.error.range")
			}
			if m.Zoom < 0 || m.Zoom > 19 {
				bad(qp+".map.zoom", "range", "forms.error.range")
			}
		}
	case TInfo, TTerms:
		if strings.TrimSpace(q.Text) == "" && q.Type == TInfo {
			bad(qp+".text", "required", "forms.error.required")
		}
	}
}
