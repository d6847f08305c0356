package forms

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Checking answers: the raw values of a step (from an HTML form or a JSON body) become clean
// answers, or problems named by path. Hidden questions are skipped, so their answers are
// neither validated nor kept.

// Default text lengths when the question sets none.
const (
	defTextMax     = 500
	defTextareaMax = 10000
)

type checker struct {
	d     *Definition
	today time.Time // in the instance's zone, at midnight UTC
	ps    []Problem
}

func (c *checker) fail(path, code string, args ...any) {
	c.ps = append(c.ps, Problem{Path: path, Code: code, Key: "forms.error." + code, Args: args})
}

// CheckStep validates step si's answers given the answers of the other steps (prev). in holds
// raw values by question key (sections that repeat: by section key, a list of items). It
// returns the step's clean answers. With strict, a value given for a hidden question is a
// problem (the API); otherwise it is dropped (a browser without JavaScript posts them).
func (d *Definition) CheckStep(si int, in map[string]any, prev Answers, today time.Time, strict bool) (Answers, []Problem) {
	c := &checker{d: d, today: today}
	cur := Answers{}
	for k, v := range prev {
		cur[k] = v
	}
	st := &d.Steps[si]
	out := Answers{}
	for ci := range st.Sections {
		sec := &st.Sections[ci]
		if sec.Repeat != nil {
			delete(cur, sec.Key)
			if !sec.If.Holds(cur) {
				if strict && !isEmpty(in[sec.Key]) {
					c.fail(sec.Key, "hidden")
				}
				continue
			}
			items := c.items(sec, in[sec.Key], cur, strict)
			if len(items) > 0 {
				out[sec.Key], cur[sec.Key] = items, items
			}
			continue
		}
		for qi := range sec.Questions {
			q := &sec.Questions[qi]
			delete(cur, q.Key)
			if q.Type == TInfo {
				continue
			}
			if !Visible(sec, q, cur) {
				if strict && !isEmpty(in[q.Key]) {
					c.fail(q.Key, "hidden")
				}
				continue
			}
			if v, ok := c.value(q, q.Key, in[q.Key]); ok && !isEmpty(v) {
				out[q.Key], cur[q.Key] = v, v
			}
		}
	}
	return out, c.ps
}

// items checks the items of a repeatable section.
func (c *checker) items(sec *Section, raw any, cur Answers, strict bool) []map[string]any {
	list, ok := raw.([]any)
	if raw != nil && !ok {
		if l, ok2 := raw.([]map[string]any); ok2 {
			for _, x := range l {
				list = append(list, x)
			}
		} else {
			c.fail(sec.Key, "type")
			return nil
		}
	}
	var out []map[string]any
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			c.fail(fmt.Sprintf("%s[%d]", sec.Key, i), "type")
			continue
		}
		item := map[string]any{}
		for qi := range sec.Questions {
			q := &sec.Questions[qi]
			path := fmt.Sprintf("%s[%d].%s", sec.Key, i, q.Key)
			if q.Type == TInfo {
				continue
			}
			if !q.If.Holds(cur) {
				if strict && !isEmpty(m[q.Key]) {
					c.fail(path, "hidden")
				}
				continue
			}
			if v, ok := c.value(q, path, m[q.Key]); ok && !isEmpty(v) {
				item[q.Key] = v
			}
		}
		for k := range m {
			if !sectionHas(sec, k) {
				c.fail(fmt.Sprintf("%s[%d].%s", sec.Key, i, k), "unknown")
			}
		}
		if len(item) > 0 {
			out = append(out, item)
		}
	}
	r := sec.Repeat
	if len(out) < r.Min {
		c.fail(sec.Key, "too_few_items", "min", r.Min)
	}
	if len(out) > r.Max {
		c.fail(sec.Key, "too_many_items", "max", r.Max)
	}
	return out
}

func sectionHas(sec *Section, k string) bool {
	for _, q := range sec.Questions {
		if q.Key == k {
			return true
		}
	}
	return false
}

// text reads a raw scalar as a string (numbers and booleans from JSON included).
func text(raw any) (string, bool) {
	switch x := raw.(type) {
	case nil:
		return "", true
	case string:
		return strings.TrimSpace(x), true
	case float64, bool, json.Number:
		return str(x), true
	case []string:
		if len(x) == 1 {
			return strings.TrimSpace(x[0]), true
		}
	}
	return "", false
}

// value checks one answer; ok is false when it was refused (a problem was recorded).
func (c *checker) value(q *Question, path string, raw any) (any, bool) {
	n0 := len(c.ps)
	v := c.check(q, path, raw)
	return v, len(c.ps) == n0
}

func (c *checker) check(q *Question, path string, raw any) any {
	switch q.Type {
	case TMulti:
		return c.multi(q, path, raw)
	case TAddress:
		return c.address(q, path, raw)
	case TMap:
		return c.point(q, path, raw)
	case TTable:
		return c.table(q, path, raw)
	case TFile, TPhoto:
		return c.files(q, path, raw)
	}
	s, ok := text(raw)
	if !ok {
		c.fail(path, "type")
		return nil
	}
	if s == "" {
		if q.Required {
			c.fail(path, "required")
		}
		return nil
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		c.fail(path, "type")
		return nil
	}
	switch q.Type {
	case TText, TTextarea:
		max := q.MaxLength
		if max == 0 {
			max = defTextMax
			if q.Type == TTextarea {
				max = defTextareaMax
			}
		}
		n := utf8.RuneCountInString(s)
		switch {
		case n > max:
			c.fail(path, "too_long", "max", max)
		case n < q.MinLength:
			c.fail(path, "too_short", "min", q.MinLength)
		case q.Pattern != "" && !fullMatch(q.Pattern, s):
			if q.PatternMessage != "" {
				c.ps = append(c.ps, Problem{Path: path, Code: "pattern", Key: q.PatternMessage})
			} else {
				c.fail(path, "pattern")
			}
		}
		return s
	case TEmail:
		if v, ok := Email(s); ok {
			return v
		}
		c.fail(path, "email")
	case TPhone:
		mode := q.Phone
		if mode == "" {
			mode = "intl"
		}
		if v, ok := Phone(s, mode); ok {
			return v
		}
		c.fail(path, "phone_"+mode)
	case TNumber:
		f, err := strconv.ParseFloat(strings.ReplaceAll(strings.ReplaceAll(s, " ", ""), ",", "."), 64)
		switch {
		case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
			c.fail(path, "number")
		case q.Min != nil && f < *q.Min:
			c.fail(path, "min", "min", str(*q.Min))
		case q.Max != nil && f > *q.Max:
			c.fail(path, "max", "max", str(*q.Max))
		case q.Step > 0 && !onStep(f, q):
			c.fail(path, "step", "step", str(q.Step))
		default:
			return f
		}
	case TDate:
		t, ok := ParseDate(s)
		if !ok {
			c.fail(path, "date")
			return nil
		}
		if c.dateBounds(q, path, t) {
			return t.Format("2006-01-02")
		}
	case TTime:
		if ValidTime(s) {
			return s
		}
		c.fail(path, "time")
	case TDateTime:
		t, err := time.Parse("2006-01-02T15:04", s)
		if err != nil {
			c.fail(path, "datetime")
			return nil
		}
		if c.dateBounds(q, path, t) {
			return t.Format("2006-01-02T15:04")
		}
	case TChoice:
		for _, o := range q.Options {
			if o.Value == s {
				return s
			}
		}
		c.fail(path, "choice")
	case TYesNo:
		switch s {
		case "yes", "no":
			return s
		}
		c.fail(path, "yesno")
	case TTerms:
		if s == "yes" {
			return s
		}
		c.fail(path, "terms")
	case TSIRET:
		if v, ok := SIRET(s); ok {
			return v
		}
		c.fail(path, "siret")
	case TIBAN:
		if v, ok := IBAN(s); ok {
			return v
		}
		c.fail(path, "iban")
	}
	return nil
}

func fullMatch(pattern, s string) bool {
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	return err == nil && re.MatchString(s)
}

func onStep(f float64, q *Question) bool {
	base := 0.0
	if q.Min != nil {
		base = *q.Min
	}
	n := (f - base) / q.Step
	return math.Abs(n-math.Round(n)) < 1e-9
}

func (c *checker) dateBounds(q *Question, path string, t time.Time) bool {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if q.MinDate != "" {
		if b, err := RelativeDate(q.MinDate, c.today); err == nil && day.Before(b) {
			c.fail(path, "date_min", "date", b.Format("02/01/2006"))
			return false
		}
	}
	if q.MaxDate != "" {
		if b, err := RelativeDate(q.MaxDate, c.today); err == nil && day.After(b) {
			c.fail(path, "date_max", "date", b.Format("02/01/2006"))
			return false
		}
	}
	return true
}

func (c *checker) multi(q *Question, path string, raw any) any {
	var vals []string
	switch x := raw.(type) {
	case nil:
	case []string:
		vals = x
	case []any:
		for _, y := range x {
			s, ok := y.(string)
			if !ok {
				c.fail(path, "type")
				return nil
			}
			vals = append(vals, s)
		}
	case string:
		if x != "" {
			vals = []string{x}
		}
	default:
		c.fail(path, "type")
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, v := range vals {
		ok := false
		for _, o := range q.Options {
			ok = ok || o.Value == v
		}
		if !ok {
			c.fail(path, "choice")
			return nil
		}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	switch {
	case len(out) == 0 && q.Required:
		c.fail(path, "required")
	case len(out) > 0 && len(out) < q.MinSelect:
		c.fail(path, "min_select", "min", q.MinSelect)
	case q.MaxSelect > 0 && len(out) > q.MaxSelect:
		c.fail(path, "max_select", "max", q.MaxSelect)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// parts reads a map of named string parts, refusing other names.
func (c *checker) parts(path string, raw any, names ...string) (map[string]string, bool) {
	out := map[string]string{}
	if raw == nil {
		return out, true
	}
	m, ok := raw.(map[string]any)
	if !ok {
		c.fail(path, "type")
		return nil, false
	}
	for k, v := range m {
		known := false
		for _, n := range names {
			known = known || n == k
		}
		s, okT := text(v)
		if !known {
			c.fail(path+"."+k, "unknown")
			return nil, false
		}
		if !okT || len(s) > 500 {
			c.fail(path+"."+k, "type")
			return nil, false
		}
		out[k] = s
	}
	return out, true
}

func (c *checker) address(q *Question, path string, raw any) any {
	p, ok := c.parts(path, raw, "street", "postcode", "town")
	if !ok {
		return nil
	}
	if p["street"] == "" && p["postcode"] == "" && p["town"] == "" {
		if q.Required {
			c.fail(path+".street", "required")
		}
		return nil
	}
	bad := false
	for _, k := range []string{"street", "postcode", "town"} {
		if p[k] == "" {
			c.fail(path+"."+k, "required")
			bad = true
		}
	}
	if bad {
		return nil
	}
	okCode, okTown := Postcode(p["postcode"], p["town"])
	switch {
	case !okCode:
		c.fail(path+".postcode", "postcode")
		return nil
	case !okTown:
		c.fail(path+".town", "town", "postcode", p["postcode"])
		return nil
	}
	return map[string]any{"street": p["street"], "postcode": p["postcode"], "town": p["town"]}
}

func (c *checker) point(q *Question, path string, raw any) any {
	p, ok := c.parts(path, raw, "lat", "lng", "address")
	if !ok {
		return nil
	}
	out := map[string]any{}
	if p["lat"] != "" || p["lng"] != "" {
		lat, e1 := strconv.ParseFloat(p["lat"], 64)
		lng, e2 := strconv.ParseFloat(p["lng"], 64)
		if e1 != nil || e2 != nil || lat < -90 || lat > 90 || lng < -180 || lng > 180 {
			c.fail(path+".address", "point")
			return nil
		}
		out["lat"], out["lng"] = lat, lng
	}
	if p["address"] != "" {
		out["address"] = p["address"]
	}
	if len(out) == 0 {
		if q.Required {
			c.fail(path+".address", "required")
		}
		return nil
	}
	return out
}

func (c *checker) table(q *Question, path string, raw any) any {
	list, ok := raw.([]any)
	if raw != nil && !ok {
		c.fail(path, "type")
		return nil
	}
	max := q.MaxRows
	if max == 0 {
		max = 10
	}
	var out []map[string]any
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			c.fail(fmt.Sprintf("%s[%d]", path, i), "type")
			return nil
		}
		row := map[string]any{}
		for k, v := range m {
			known := false
			for _, col := range q.Columns {
				known = known || col.Value == k
			}
			s, okT := text(v)
			if !known {
				c.fail(fmt.Sprintf("%s[%d].%s", path, i, k), "unknown")
				return nil
			}
			if !okT || utf8.RuneCountInString(s) > defTextMax {
				c.fail(fmt.Sprintf("%s[%d].%s", path, i, k), "type")
				return nil
			}
			if s != "" {
				row[k] = s
			}
		}
		if len(row) > 0 {
			out = append(out, row)
		}
	}
	switch {
	case len(out) == 0 && q.Required:
		c.fail(path, "required")
	case len(out) > max:
		c.fail(path, "too_many_rows", "max", max)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// files checks the count of already stored, sniffed files (see upload.go).
func (c *checker) files(q *Question, path string, raw any) any {
	var refs []FileRef
	switch x := raw.(type) {
	case nil:
	case []FileRef:
		refs = x
	default:
		// From JSON: files are uploaded through the HTML form only; an API client cannot
		// name stored files.
		c.fail(path, "file_api")
		return nil
	}
	max := q.MaxFiles
	if max == 0 {
		max = 5
		if q.Type == TPhoto {
			max = 3
		}
	}
	switch {
	case len(refs) == 0 && q.Required:
		c.fail(path, "required")
	case len(refs) > max:
		c.fail(path, "too_many_files", "max", max)
	}
	if len(refs) == 0 {
		return nil
	}
	return refs
}

// CheckAll validates a whole submission: the path's steps in order, each against the answers
// of the steps before it. Answers of steps off the path, hidden questions and unknown keys
// are problems with strict, dropped otherwise.
func (d *Definition) CheckAll(in map[string]any, today time.Time, strict bool) (Answers, []Problem) {
	var ps []Problem
	if strict {
		for k := range in {
			if _, ok := d.Question(k); !ok && !d.isRepeat(k) {
				ps = append(ps, Problem{Path: k, Code: "unknown", Key: "forms.error.unknown"})
			}
		}
	}
	all := Answers{}
	// The path depends on answers; walk it as the citizen would, step by step.
	visited := map[int]bool{}
	for i := 0; i < len(d.Steps); {
		path := d.Path(all)
		next := -1
		for _, p := range path {
			if p >= i && !visited[p] {
				next = p
				break
			}
		}
		if next < 0 {
			break
		}
		visited[next] = true
		got, sp := d.CheckStep(next, in, all, today, strict)
		ps = append(ps, sp...)
		for k, v := range got {
			all[k] = v
		}
		i = next + 1
	}
	if strict {
		for si := range d.Steps {
			if visited[si] {
				continue
			}
			for _, sec := range d.Steps[si].Sections {
				for _, q := range sec.Questions {
					if !isEmpty(in[q.Key]) {
						ps = append(ps, Problem{Path: q.Key, Code: "hidden", Key: "forms.error.hidden"})
					}
				}
				if sec.Repeat != nil && !isEmpty(in[sec.Key]) {
					ps = append(ps, Problem{Path: sec.Key, Code: "hidden", Key: "forms.error.hidden"})
				}
			}
		}
	}
	// Keep only answers still visible with the final answers (a later change may hide an
	// earlier-visited step's question).
	final := d.Prune(all)
	return final, ps
}

func (d *Definition) isRepeat(k string) bool {
	for _, st := range d.Steps {
		for _, sec := range st.Sections {
			if sec.Key == k && sec.Repeat != nil {
				return true
			}
		}
	}
	return false
}

// Prune drops answers of steps off the path and of hidden questions, repeating until stable
// (hiding one answer can hide another).
func (d *Definition) Prune(a Answers) Answers {
	cur := Answers{}
	for k, v := range a {
		cur[k] = v
	}
	for range 10 {
		keep := Answers{}
		for _, si := range d.Path(cur) {
			for ci := range d.Steps[si].Sections {
				sec := &d.Steps[si].Sections[ci]
				if sec.Repeat != nil {
					if v, ok := cur[sec.Key]; ok && sec.If.Holds(cur) {
						keep[sec.Key] = v
					}
					continue
				}
				for qi := range sec.Questions {
					q := &sec.Questions[qi]
					if v, ok := cur[q.Key]; ok && Visible(sec, q, cur) {
						keep[q.Key] = v
					}
				}
			}
		}
		if len(keep) == len(cur) {
			return keep
		}
		cur = keep
	}
	return cur
}
