package forms

import (
	"fmt"
	"strconv"
	"strings"
)

// The rules, evaluated by the server, which is the authority. static/forms.js runs the same
// operators in the browser only to show and hide questions while the citizen types.

// Holds reports whether c holds on the answers (a nil condition always holds).
func (c *Condition) Holds(a Answers) bool {
	if c == nil {
		return true
	}
	if len(c.All) > 0 {
		for _, x := range c.All {
			if !x.Holds(a) {
				return false
			}
		}
		return true
	}
	if len(c.Any) > 0 {
		for _, x := range c.Any {
			if x.Holds(a) {
				return true
			}
		}
		return false
	}
	v := a[c.Field]
	switch c.Op {
	case "empty":
		return isEmpty(v)
	case "not_empty":
		return !isEmpty(v)
	case "eq":
		return !isEmpty(v) && equal(v, c.Value)
	case "ne":
		return !equal(v, c.Value)
	case "in":
		for _, x := range c.Values {
			if equal(v, x) {
				return true
			}
		}
		return false
	case "contains":
		if l, ok := v.([]string); ok {
			for _, x := range l {
				if x == str(c.Value) {
					return true
				}
			}
			return false
		}
		if l, ok := v.([]any); ok {
			for _, x := range l {
				if str(x) == str(c.Value) {
					return true
				}
			}
			return false
		}
		return !isEmpty(v) && strings.Contains(strings.ToLower(str(v)), strings.ToLower(str(c.Value)))
	case "gt", "lt":
		if isEmpty(v) {
			return false
		}
		cmp := compare(v, c.Value)
		if c.Op == "gt" {
			return cmp > 0
		}
		return cmp < 0
	}
	return false
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	case []string:
		return len(x) == 0
	case []any:
		return len(x) == 0
	case []FileRef:
		return len(x) == 0
	case []map[string]any:
		return len(x) == 0
	case map[string]any:
		for _, y := range x {
			if !isEmpty(y) {
				return false
			}
		}
		return true
	}
	return false
}

// str writes a scalar as the browser sees it in a form field.
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		if x {
			return "yes"
		}
		return "no"
	}
	return fmt.Sprint(v)
}

func equal(a, b any) bool {
	if l, ok := a.([]string); ok { // a multiple choice equals a value it holds alone
		return len(l) == 1 && l[0] == str(b)
	}
	if fa, ea := strconv.ParseFloat(str(a), 64); ea == nil {
		if fb, eb := strconv.ParseFloat(str(b), 64); eb == nil {
			return fa == fb
		}
	}
	return str(a) == str(b)
}

// compare orders numbers as numbers, other values (ISO dates) as text.
func compare(a, b any) int {
	fa, ea := strconv.ParseFloat(str(a), 64)
	fb, eb := strconv.ParseFloat(str(b), 64)
	if ea == nil && eb == nil {
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	}
	return strings.Compare(str(a), str(b))
}

// Path returns the indexes of the steps the citizen goes through with these answers: hidden
// steps are skipped and branches followed (always forward).
func (d *Definition) Path(a Answers) []int {
	var out []int
	for i := 0; i < len(d.Steps); {
		st := &d.Steps[i]
		next := i + 1
		if st.If.Holds(a) {
			out = append(out, i)
			for _, b := range st.Next {
				if b.If.Holds(a) {
					if b.Goto == "end" {
						next = len(d.Steps)
					} else if j := d.StepIndex(b.Goto); j > i {
						next = j
					}
					break
				}
			}
		}
		i = next
	}
	return out
}

// Visible reports whether question q of section sec is shown with these answers.
func Visible(sec *Section, q *Question, a Answers) bool { return sec.If.Holds(a) && q.If.Holds(a) }

// refsStep reports whether c reads an answer of step st (the browser then shows or hides
// the question live; the server still decides on submission).
func (d *Definition) refsStep(c *Condition, st *Step) bool {
	if c == nil {
		return false
	}
	for _, x := range append(append([]*Condition{}, c.All...), c.Any...) {
		if d.refsStep(x, st) {
			return true
		}
	}
	if c.Field == "" {
		return false
	}
	for _, sec := range st.Sections {
		for _, q := range sec.Questions {
			if q.Key == c.Field {
				return true
			}
		}
	}
	return false
}

// OnPage reports whether a question appears on its step's page: visible with the answers
// given so far, or depending on answers of the same page (shown and hidden in the browser).
func (d *Definition) OnPage(st *Step, sec *Section, q *Question, a Answers) bool {
	return (sec.If.Holds(a) || d.refsStep(sec.If, st)) && (q.If.Holds(a) || d.refsStep(q.If, st))
}

// Text writes the condition for the builder's pages: "pro eq yes", "(a) and (b)" with the
// words for AND and OR of the page's language.
func (c *Condition) Text(and, or string) string {
	if c == nil {
		return ""
	}
	join := func(cs []*Condition, sep string) string {
		parts := make([]string, len(cs))
		for i, x := range cs {
			parts[i] = "(" + x.Text(and, or) + ")"
		}
		return strings.Join(parts, sep)
	}
	switch {
	case len(c.All) > 0:
		return join(c.All, " "+and+" ")
	case len(c.Any) > 0:
		return join(c.Any, " "+or+" ")
	case c.Op == "in":
		vals := make([]string, len(c.Values))
		for i, v := range c.Values {
			vals[i] = str(v)
		}
		return c.Field + " in " + strings.Join(vals, ", ")
	case c.Op == "empty" || c.Op == "not_empty":
		return c.Field + " " + c.Op
	}
	return c.Field + " " + c.Op + " " + str(c.Value)
}
