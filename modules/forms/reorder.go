package forms

import (
	"slices"
	"strings"

	"parvis.org/parvis/kernel/web"
)

// placeOp moves a step or a question to a given place in one go: what a drop in the
// builder sends (forms.js). The "move" operation's up and down buttons stay the keyboard
// and no-JavaScript way; both end in the same saved definition.
//
// key names what moves ("step:KEY" or a question key); target names where: a step
// ("step:KEY") or a question, with pos "before" or "after". A question dropped on a step
// goes at the end of that step.
func placeOp(def *Definition, form *web.Form) *Problem {
	bad := func(path, key string) *Problem { return &Problem{Path: path, Code: "invalid", Key: key} }
	key, target, pos := form.Get("key"), form.Get("target"), form.Get("pos")
	if pos == "" {
		pos = "before"
	}
	if pos != "before" && pos != "after" {
		return bad("pos", "forms.error.bad_place")
	}
	if key == target {
		return nil
	}
	if sk, ok := strings.CutPrefix(key, "step:"); ok {
		tk, ok := strings.CutPrefix(target, "step:")
		if !ok {
			return bad("target", "forms.error.bad_place")
		}
		i, j := def.StepIndex(sk), def.StepIndex(tk)
		if i < 0 || j < 0 {
			return bad("key", "forms.error.step_not_found")
		}
		st := def.Steps[i]
		def.Steps = slices.Delete(def.Steps, i, i+1)
		j = def.StepIndex(tk)
		if pos == "after" {
			j++
		}
		def.Steps = slices.Insert(def.Steps, j, st)
		return nil
	}
	loc, ok := def.Question(key)
	if !ok {
		return bad("key", "forms.error.unknown_question")
	}
	if tk, ok := strings.CutPrefix(target, "step:"); ok {
		if def.StepIndex(tk) < 0 {
			return bad("target", "forms.error.step_not_found")
		}
	} else if _, ok := def.Question(target); !ok {
		return bad("target", "forms.error.unknown_question")
	}
	// Checked first, so that a refused drop changes nothing.
	q := *loc.Q
	loc.Sec.Questions = slices.Delete(loc.Sec.Questions, loc.Index, loc.Index+1)
	if tk, ok := strings.CutPrefix(target, "step:"); ok {
		st := &def.Steps[def.StepIndex(tk)]
		if len(st.Sections) == 0 {
			st.Sections = append(st.Sections, Section{Key: st.Key + "_s1"})
		}
		sec := &st.Sections[len(st.Sections)-1]
		sec.Questions = append(sec.Questions, q)
		return nil
	}
	tl, _ := def.Question(target)
	j := tl.Index
	if pos == "after" {
		j++
	}
	tl.Sec.Questions = slices.Insert(tl.Sec.Questions, j, q)
	return nil
}
