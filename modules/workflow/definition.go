package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"

	"parvis.org/parvis/kernel/errs"
)

// Problem is one defect of a definition, named by its path ("actions[2].to").
type Problem struct {
	Path    string `json:"path"`
	Code    string `json:"code"` // locale key suffix, "workflow.def.<code>"
	Message string `json:"message"`
}

// ValidationError lists every problem of a refused definition.
type ValidationError struct{ Problems []Problem }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Path + ": " + p.Message
	}
	return "invalid workflow definition: " + strings.Join(parts, "; ")
}

// Unwrap gives the error the errs.Invalid code.
func (e *ValidationError) Unwrap() error { return errs.New(errs.Invalid, "workflow.def.invalid") }

var keyRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// ParseDefinition reads a JSON or YAML document ("json", "yaml"; "" guesses from the first
// character), refusing unknown fields. It does not validate: see Validate.
func ParseDefinition(data []byte, format string) (*Definition, error) {
	data = bytes.TrimSpace(data)
	if format == "" {
		format = "yaml"
		if len(data) > 0 && data[0] == '{' {
			format = "json"
		}
	}
	if format == "yaml" || format == "yml" {
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, &ValidationError{[]Problem{{Path: "", Code: "syntax", Message: err.Error()}}}
		}
		data = j
	} else if format != "json" {
		return nil, &ValidationError{[]Problem{{Path: "", Code: "format", Message: "format must be json or yaml"}}}
	}
	var d Definition
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, &ValidationError{[]Problem{decodeProblem(err)}}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ValidationError{[]Problem{{Path: "", Code: "syntax", Message: "trailing data after the document"}}}
	}
	return &d, nil
}

func decodeProblem(err error) Problem {
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &ute):
		return Problem{Path: ute.Field, Code: "type", Message: fmt.Sprintf("must be a %s, not a JSON %s", ute.Type.Kind(), ute.Value)}
	case errors.As(err, &se):
		return Problem{Code: "syntax", Message: se.Error()}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Problem{Path: f, Code: "unknown_field", Message: fmt.Sprintf("unknown field %q", f)}
	}
	return Problem{Code: "syntax", Message: err.Error()}
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
	return nil, fmt.Errorf("export format %q: want json or yaml", format)
}

// StateByKey returns a state, or nil.
func (d *Definition) StateByKey(k string) *State {
	for i := range d.States {
		if d.States[i].Key == k {
			return &d.States[i]
		}
	}
	return nil
}

// ActionByKey returns an action, or nil.
func (d *Definition) ActionByKey(k string) *Action {
	for i := range d.Actions {
		if d.Actions[i].Key == k {
			return &d.Actions[i]
		}
	}
	return nil
}

// Initial returns the initial state (validated definitions have exactly one).
func (d *Definition) Initial() *State {
	for i := range d.States {
		if d.States[i].Initial {
			return &d.States[i]
		}
	}
	return nil
}

// AppliesIn reports whether the action may start from state.
func (a *Action) AppliesIn(state string) bool {
	for _, f := range a.From {
		if f == state {
			return true
		}
	}
	return false
}

// Auto reports whether the engine runs the action by itself.
func (a *Action) Auto() bool { return a.Kind == KindAuto }

// Perm is the permission the action requires.
func (a *Action) Perm() string {
	if a.Permission == "" {
		return PermAct
	}
	return a.Permission
}

// validator checks definitions against the task types and permissions of the binary.
type validator struct {
	types map[string]TaskType
	perms map[string]bool
}

// Validate returns nil or a *ValidationError naming every problem by its path.
func (v validator) Validate(d *Definition) error {
	var ps []Problem
	add := func(path, code, msg string, args ...any) {
		ps = append(ps, Problem{Path: path, Code: code, Message: fmt.Sprintf(msg, args...)})
	}
	if !keyRe.MatchString(d.Key) {
		add("key", "key", "must be lower-case letters, digits, - or _, starting with a letter")
	}
	if strings.TrimSpace(d.Title) == "" {
		add("title", "required", "is required")
	}
	if len(d.States) == 0 {
		add("states", "no_states", "a workflow needs at least one state")
	}
	states := map[string]bool{}
	initials := 0
	for i, s := range d.States {
		p := fmt.Sprintf("states[%d]", i)
		switch {
		case !keyRe.MatchString(s.Key):
			add(p+".key", "key", "must be lower-case letters, digits, - or _, starting with a letter")
		case states[s.Key]:
			add(p+".key", "duplicate", "state %q is defined twice", s.Key)
		}
		states[s.Key] = true
		if strings.TrimSpace(s.Title) == "" {
			add(p+".title", "required", "is required")
		}
		if strings.TrimSpace(s.PublicLabel) == "" {
			add(p+".public_label", "required", "is required (the citizen sees it)")
		}
		if s.Initial {
			initials++
			if initials == 2 {
				add(p+".initial", "two_initial", "only one state may be initial")
			}
		}
	}
	if len(d.States) > 0 && initials == 0 {
		add("states", "no_initial", "exactly one state must be initial")
	}
	actions := map[string]bool{}
	for i := range d.Actions {
		a := &d.Actions[i]
		p := fmt.Sprintf("actions[%d]", i)
		switch {
		case !keyRe.MatchString(a.Key):
			add(p+".key", "key", "must be lower-case letters, digits, - or _, starting with a letter")
		case actions[a.Key]:
			add(p+".key", "duplicate", "action %q is defined twice", a.Key)
		}
		actions[a.Key] = true
		if strings.TrimSpace(a.Title) == "" {
			add(p+".title", "required", "is required")
		}
		if len(a.From) == 0 {
			add(p+".from", "required", "name at least one state the action starts from")
		}
		for j, f := range a.From {
			if !states[f] {
				add(fmt.Sprintf("%s.from[%d]", p, j), "unknown_state", "unknown state %q", f)
			}
		}
		if !states[a.To] {
			add(p+".to", "unknown_state", "unknown state %q", a.To)
		}
		if a.Kind == "" {
			a.Kind = KindManual
		}
		switch a.Kind {
		case KindManual, KindMass:
			if a.Trigger != "" {
				add(p+".trigger", "trigger_manual", "only automatic actions have a trigger")
			}
		case KindAuto:
			if a.AppliesIn(a.To) {
				add(p+".to", "auto_loop", "an automatic action must leave its state")
			}
			switch a.Trigger {
			case OnEnter:
			case OnDelay:
				if a.Delay <= 0 {
					add(p+".delay", "delay", "a delayed action needs a positive delay (\"60d\", \"72h\")")
				}
			case OnCondition:
				if a.Condition == nil {
					add(p+".condition", "required", "a conditional action needs a condition")
				}
			default:
				add(p+".trigger", "trigger", "must be enter, delay or condition")
			}
		default:
			add(p+".kind", "kind", "must be manual, mass or auto")
		}
		if a.Condition != nil {
			ps = append(ps, checkCondition(p+".condition", a.Condition)...)
		}
		if a.Permission != "" && v.perms != nil && !v.perms[a.Permission] {
			add(p+".permission", "unknown_permission", "unknown permission %q", a.Permission)
		}
		for j, u := range a.Units {
			if u <= 0 {
				add(fmt.Sprintf("%s.units[%d]", p, j), "unit", "must be a unit ID")
			}
		}
		for j, t := range a.Tasks {
			tp := fmt.Sprintf("%s.tasks[%d]", p, j)
			tt, ok := v.types[t.Type]
			if !ok {
				add(tp+".type", "unknown_task", "unknown task type %q", t.Type)
				continue
			}
			for _, f := range tt.Fields() {
				if f.Required && cfgString(t.Config, f.Name) == "" {
					add(tp+".config."+f.Name, "required", "is required")
				}
			}
			for _, pr := range tt.Validate(d, t.Config) {
				pr.Path = tp + "." + pr.Path
				ps = append(ps, pr)
			}
		}
	}
	for name, t := range d.Templates {
		p := "templates." + name
		if !keyRe.MatchString(name) {
			add(p, "key", "template names are lower-case letters, digits, - or _")
		}
		if err := checkTemplate(t); err != nil {
			add(p, "template", "%v", err)
		}
	}
	if d.Routing != nil {
		for i, r := range d.Routing.Rules {
			p := fmt.Sprintf("routing.rules[%d]", i)
			ps = append(ps, checkCondition(p+".when", &r.When)...)
			if r.Unit <= 0 {
				add(p+".unit", "unit", "must be a unit ID")
			}
		}
		if d.Routing.DefaultUnit < 0 {
			add("routing.default_unit", "unit", "must be a unit ID")
		}
	}
	if len(ps) > 0 {
		return &ValidationError{ps}
	}
	return nil
}

var ops = map[string]bool{"eq": true, "ne": true, "in": true, "contains": true, "gt": true, "lt": true,
	"empty": true, "not_empty": true, "prefix": true}

func checkCondition(p string, c *Condition) []Problem {
	var ps []Problem
	if len(c.All) > 0 || len(c.Any) > 0 {
		if c.Field != "" || c.Op != "" {
			ps = append(ps, Problem{Path: p, Code: "condition_mixed", Message: "a condition is either a test (field, op) or a combination (all, any)"})
		}
		for i, s := range c.All {
			ps = append(ps, checkCondition(fmt.Sprintf("%s.all[%d]", p, i), s)...)
		}
		for i, s := range c.Any {
			ps = append(ps, checkCondition(fmt.Sprintf("%s.any[%d]", p, i), s)...)
		}
		return ps
	}
	if c.Field == "" {
		ps = append(ps, Problem{Path: p + ".field", Code: "required", Message: "is required"})
	}
	if !ops[c.Op] {
		ps = append(ps, Problem{Path: p + ".op", Code: "op", Message: fmt.Sprintf("unknown operator %q (eq, ne, in, contains, prefix, gt, lt, empty, not_empty)", c.Op)})
	}
	if (c.Op == "gt" || c.Op == "lt") && !isNumber(c.Value) {
		ps = append(ps, Problem{Path: p + ".value", Code: "number", Message: "must be a number"})
	}
	if c.Op == "in" && len(c.Values) == 0 {
		ps = append(ps, Problem{Path: p + ".values", Code: "required", Message: "name at least one value"})
	}
	return ps
}

func isNumber(v any) bool {
	_, ok := number(v)
	return ok
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(strings.ReplaceAll(strings.TrimSpace(x), ",", "."), 64)
		return f, err == nil
	}
	return 0, false
}

func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	default:
		return fmt.Sprint(x)
	}
}

func toAny(l []string) []any {
	out := make([]any, len(l))
	for i, x := range l {
		out[i] = x
	}
	return out
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
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// Holds evaluates the condition on fields.
func (c *Condition) Holds(fields map[string]any) bool {
	if c == nil {
		return true
	}
	if len(c.All) > 0 || len(c.Any) > 0 {
		for _, s := range c.All {
			if !s.Holds(fields) {
				return false
			}
		}
		if len(c.Any) == 0 {
			return true
		}
		for _, s := range c.Any {
			if s.Holds(fields) {
				return true
			}
		}
		return false
	}
	v := fields[c.Field]
	switch c.Op {
	case "empty":
		return isEmpty(v)
	case "not_empty":
		return !isEmpty(v)
	case "eq":
		return text(v) == text(c.Value)
	case "ne":
		return text(v) != text(c.Value)
	case "in":
		for _, x := range c.Values {
			if text(v) == text(x) {
				return true
			}
		}
		return false
	case "prefix":
		return !isEmpty(v) && strings.HasPrefix(text(v), text(c.Value))
	case "contains":
		if l, ok := v.([]string); ok { // a list as a module passes it, before any JSON round trip
			v = toAny(l)
		}
		if list, ok := v.([]any); ok {
			for _, x := range list {
				if text(x) == text(c.Value) {
					return true
				}
			}
			return false
		}
		return strings.Contains(strings.ToLower(text(v)), strings.ToLower(text(c.Value)))
	case "gt", "lt":
		a, ok1 := number(v)
		b, ok2 := number(c.Value)
		if !ok1 || !ok2 {
			return false
		}
		if c.Op == "gt" {
			return a > b
		}
		return a < b
	}
	return false
}

// Route returns the unit the routing rules choose for fields, or 0.
func (r *Routing) Route(fields map[string]any) int64 {
	if r == nil {
		return 0
	}
	for _, rule := range r.Rules {
		if rule.When.Holds(fields) {
			return rule.Unit
		}
	}
	return r.DefaultUnit
}

// Value and Label let the kernel's select and radios partials list actions.
func (a Action) Value() string { return a.Key }

// Label is the action's title.
func (a Action) Label() string { return a.Title }

// Hint is empty: actions have none in the radios partial.
func (a Action) Hint() string { return "" }
