package forms

import (
	"encoding/json"
	"fmt"
	"strings"
)

// DecodeAnswers reads stored answers back into their Go types (JSON gives []any and maps).
func (d *Definition) DecodeAnswers(b []byte) (Answers, error) {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("answers: %w", err)
	}
	a := Answers{}
	for k, v := range raw {
		a[k] = d.restore(k, v)
	}
	return a, nil
}

func (d *Definition) restore(k string, v any) any {
	if d.isRepeat(k) {
		return maps(v)
	}
	loc, ok := d.Question(k)
	if !ok {
		return v
	}
	switch loc.Q.Type {
	case TMulti:
		var out []string
		for _, x := range asList(v) {
			out = append(out, str(x))
		}
		return out
	case TFile, TPhoto:
		var out []FileRef
		b, _ := json.Marshal(v)
		_ = json.Unmarshal(b, &out)
		return out
	case TTable:
		return maps(v)
	}
	return v
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func maps(v any) []map[string]any {
	var out []map[string]any
	for _, x := range asList(v) {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// Display writes an answer as text, for review pages, mails, receipts and exports. yes and no
// are the words for yes/no answers in the reader's language.
func Display(q *Question, v any, yes, no string) string {
	switch q.Type {
	case TChoice:
		return optionLabel(q.Options, str(v))
	case TMulti:
		var out []string
		switch l := v.(type) {
		case []string:
			for _, x := range l {
				out = append(out, optionLabel(q.Options, x))
			}
		case []any:
			for _, x := range l {
				out = append(out, optionLabel(q.Options, str(x)))
			}
		}
		return strings.Join(out, ", ")
	case TYesNo, TTerms:
		switch str(v) {
		case "yes":
			return yes
		case "no":
			return no
		}
		return ""
	case TAddress:
		m, _ := v.(map[string]any)
		if m == nil {
			return ""
		}
		return strings.TrimSpace(fmt.Sprintf("%s, %s %s", str(m["street"]), str(m["postcode"]), str(m["town"])))
	case TMap:
		m, _ := v.(map[string]any)
		if m == nil {
			return ""
		}
		var parts []string
		if m["lat"] != nil {
			parts = append(parts, fmt.Sprintf("%s, %s", str(m["lat"]), str(m["lng"])))
		}
		if a := str(m["address"]); a != "" {
			parts = append(parts, a)
		}
		return strings.Join(parts, " – ")
	case TFile, TPhoto:
		var names []string
		switch l := v.(type) {
		case []FileRef:
			for _, f := range l {
				names = append(names, f.Name)
			}
		case []any:
			for _, x := range l {
				if m, ok := x.(map[string]any); ok {
					names = append(names, str(m["name"]))
				}
			}
		}
		return strings.Join(names, ", ")
	case TTable:
		var rows []string
		for _, r := range maps(toAny(v)) {
			var cells []string
			for _, col := range q.Columns {
				if s := str(r[col.Value]); s != "" {
					cells = append(cells, col.Label+" : "+s)
				}
			}
			rows = append(rows, strings.Join(cells, ", "))
		}
		return strings.Join(rows, " ; ")
	case TDate:
		if t, ok := ParseDate(str(v)); ok {
			return t.Format("02/01/2006")
		}
	}
	return str(v)
}

func toAny(v any) any {
	if l, ok := v.([]map[string]any); ok {
		out := make([]any, len(l))
		for i, x := range l {
			out[i] = x
		}
		return out
	}
	return v
}

func optionLabel(opts []Option, v string) string {
	for _, o := range opts {
		if o.Value == v {
			return o.Label
		}
	}
	return v
}

// Line is one answer as shown in a summary.
type Line struct {
	Key, Label, Value string
	Step              int
	Path              string // HTML field name, for "change" links' anchors
}

// Lines lists the answers in the form's order, repeatable sections item by item.
func (d *Definition) Lines(a Answers, yes, no string) []Line {
	var out []Line
	for si, st := range d.Steps {
		for ci := range st.Sections {
			sec := &st.Sections[ci]
			if sec.Repeat != nil {
				for i, item := range maps(toAny(a[sec.Key])) {
					for qi := range sec.Questions {
						q := &sec.Questions[qi]
						if v, ok := item[q.Key]; ok {
							label := fmt.Sprintf("%s %d – %s", sectionTitle(sec), i+1, q.Label)
							out = append(out, Line{Key: q.Key, Label: label, Value: Display(q, v, yes, no), Step: si, Path: fmt.Sprintf("%s[%d].%s", sec.Key, i, q.Key)})
						}
					}
				}
				continue
			}
			for qi := range sec.Questions {
				q := &sec.Questions[qi]
				if v, ok := a[q.Key]; ok && q.Type != TInfo {
					out = append(out, Line{Key: q.Key, Label: q.Label, Value: Display(q, v, yes, no), Step: si, Path: q.Key})
				}
			}
		}
	}
	return out
}

func sectionTitle(s *Section) string {
	if s.Title != "" {
		return s.Title
	}
	return s.Key
}

// SearchText is the folded text of the answers that full-text search looks in.
func (d *Definition) SearchText(ref string, a Answers) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(ref))
	for _, l := range d.Lines(a, "oui", "non") {
		if loc, ok := d.Question(l.Key); ok && (loc.Q.Type == TIBAN || loc.Q.Type == TFile || loc.Q.Type == TPhoto) {
			continue
		}
		b.WriteByte(' ')
		b.WriteString(l.Value)
	}
	s := Fold(b.String())
	if len(s) > 4000 {
		s = s[:4000]
	}
	return s
}
