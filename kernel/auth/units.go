package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// unitOptions lists units for a select or checkboxes, indented by depth; with none, a first
// empty choice labelled noneLabel.
func unitOptions(units []Unit, none bool, noneLabel string) []Option {
	var out []Option
	if none {
		out = append(out, Option{Value: "", Label: noneLabel})
	}
	for _, u := range units {
		out = append(out, Option{Value: strconv.FormatInt(u.ID, 10), Label: strings.Repeat("— ", u.Depth) + u.Name})
	}
	return out
}

// UnitNode is a unit with its sub-units, for the tree page.
type UnitNode struct {
	Unit
	Children []*UnitNode
}

func unitTree(units []Unit) []*UnitNode {
	nodes := map[int64]*UnitNode{}
	var roots []*UnitNode
	for _, u := range units { // parents come first (tree order)
		n := &UnitNode{Unit: u}
		nodes[u.ID] = n
		if p, ok := nodes[u.ParentID]; ok {
			p.Children = append(p.Children, n)
		} else {
			roots = append(roots, n)
		}
	}
	return roots
}

func (m *Module) units(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	list, err := m.st.Units(r.Context(), m.st.DB.Read(), a.OrgID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.render(w, r, web.Page{Name: "units.html", Title: "kernel.auth.units.title", Flash: flash(r), Data: unitTree(list)})
}

type unitFormData struct {
	ID      int64
	Parents []Option
}

func (m *Module) showUnit(w http.ResponseWriter, r *http.Request, id int64, f *web.Form, status int) {
	a := kernel.AgentFrom(r.Context())
	units, err := m.st.Units(r.Context(), m.st.DB.Read(), a.OrgID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	title := "kernel.auth.units.edit_title"
	if id == 0 {
		title = "kernel.auth.units.new_title"
	}
	m.render(w, r, web.Page{Name: "unit_form.html", Title: title, Form: f, Status: status,
		Data: unitFormData{ID: id, Parents: unitOptions(units, true, m.t(r, "kernel.auth.units.top_level"))}})
}

func (m *Module) unitNew(w http.ResponseWriter, r *http.Request) {
	m.showUnit(w, r, 0, web.NewForm(url.Values{"parent": {r.URL.Query().Get("parent")}}), 0)
}

func (m *Module) unitEdit(w http.ResponseWriter, r *http.Request) {
	id, ok := m.pathID(w, r, "id")
	if !ok {
		return
	}
	a := kernel.AgentFrom(r.Context())
	u, err := m.st.Unit(r.Context(), m.st.DB.Read(), a.OrgID, id)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	v := url.Values{"name": {u.Name}}
	if u.ParentID != 0 {
		v.Set("parent", strconv.FormatInt(u.ParentID, 10))
	}
	m.showUnit(w, r, id, web.NewForm(v), 0)
}

func readUnit(f *web.Form) (name string, parent int64) {
	f.Require("name")
	f.MaxLen("name", 200)
	if p := f.Get("parent"); p != "" {
		var err error
		if parent, err = strconv.ParseInt(p, 10, 64); err != nil || parent <= 0 {
			f.Fail("parent", "kernel.auth.error.unit_parent")
		}
	}
	return f.Get("name"), parent
}

func (m *Module) unitCreate(w http.ResponseWriter, r *http.Request) {
	f := m.parse(w, r)
	if f == nil {
		return
	}
	ctx, a := r.Context(), kernel.AgentFrom(r.Context())
	name, parent := readUnit(f)
	if !f.Valid() {
		m.showUnit(w, r, 0, f, http.StatusBadRequest)
		return
	}
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		id, err := m.st.CreateUnit(ctx, tx, a.OrgID, parent, name, m.now())
		if err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "units.create", ResourceType: "unit", ResourceID: fmt.Sprint(id),
			After: Unit{ID: id, OrgID: a.OrgID, ParentID: parent, Name: name}})
	})
	if formError(f, err) {
		m.showUnit(w, r, 0, f, http.StatusBadRequest)
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/units?done=created", http.StatusSeeOther)
}

func (m *Module) unitUpdate(w http.ResponseWriter, r *http.Request) {
	id, ok := m.pathID(w, r, "id")
	if !ok {
		return
	}
	ctx, a := r.Context(), kernel.AgentFrom(r.Context())
	old, err := m.st.Unit(ctx, m.st.DB.Read(), a.OrgID, id)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	name, parent := readUnit(f)
	if !f.Valid() {
		m.showUnit(w, r, id, f, http.StatusBadRequest)
		return
	}
	err = m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		if err := m.st.UpdateUnit(ctx, tx, a.OrgID, id, parent, name); err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "units.update", ResourceType: "unit", ResourceID: fmt.Sprint(id),
			Before: old, After: Unit{ID: id, OrgID: a.OrgID, ParentID: parent, Name: name}})
	})
	if formError(f, err) {
		m.showUnit(w, r, id, f, http.StatusBadRequest)
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/units?done=saved", http.StatusSeeOther)
}
