package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

func (m *Module) routes() []kernel.Route {
	h := func(f http.HandlerFunc) http.Handler { return f }
	return []kernel.Route{
		{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/workflows", Perm: PermManage, Handler: h(m.list), Name: "workflow.list"},
		{Area: kernel.BackOffice, Method: "POST", Pattern: "/admin/workflows", Perm: PermManage, Handler: h(m.create), Name: "workflow.create"},
		{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/workflows/{key}", Perm: PermManage, Handler: h(m.show), Name: "workflow.show"},
		{Area: kernel.BackOffice, Method: "POST", Pattern: "/admin/workflows/{key}", Perm: PermManage, Handler: h(m.edit), Name: "workflow.edit"},
		{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/workflows/{key}/export", Perm: PermManage, Handler: h(m.export), Name: "workflow.export"},
		{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/workflow/inbox", Perm: PermInbox, Handler: h(m.inbox), Name: "workflow.inbox"},
		{Area: kernel.BackOffice, Method: "POST", Pattern: "/admin/workflow/inbox", Perm: PermInbox, Handler: h(m.mass), Name: "workflow.mass"},
		{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/workflow/r/{type}/{id}", Perm: PermInbox, Handler: h(m.resource), Name: "workflow.resource"},
		{Area: kernel.BackOffice, Method: "POST", Pattern: "/admin/workflow/r/{type}/{id}", Perm: PermInbox, Handler: h(m.run), Name: "workflow.run"},
		{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/workflow/r/{type}/{id}/files/{file}", Perm: PermInbox, Handler: h(m.file), Name: "workflow.file"},
		{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/workflow/endpoints", Perm: PermManage, Handler: h(m.endpoints), Name: "workflow.endpoints"},
		{Area: kernel.BackOffice, Method: "POST", Pattern: "/admin/workflow/endpoints", Perm: PermManage, Handler: h(m.saveEndpoint), Name: "workflow.endpoints.save"},
	}
}

// fail shows a domain error as a page with its status and translated message.
func (m *Module) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, key := web.StatusOf(err), "workflow.error.internal"
	if e, ok := errs.As(err); ok {
		key = e.Key
	}
	if status == http.StatusInternalServerError {
		m.e.log.Error("workflow page", "path", r.URL.Path, "err", err)
	}
	m.e.views.Render(w, r, web.Page{Name: "workflow/error.html", Layout: "backoffice", Title: "workflow.error.title",
		Status: status, Data: key})
}

func agentOf(r *http.Request) *kernel.Agent { return kernel.AgentFrom(r.Context()) }

// Definitions.

type listData struct {
	Workflows []*Definition
	Counts    map[string]int
}

func (m *Module) list(w http.ResponseWriter, r *http.Request) {
	m.renderList(w, r, nil, http.StatusOK)
}

func (m *Module) renderList(w http.ResponseWriter, r *http.Request, f *web.Form, status int) {
	defs, err := m.e.Definitions(r.Context(), agentOf(r).OrgID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.e.views.Render(w, r, web.Page{Name: "workflow/workflows.html", Layout: "backoffice", Title: "workflow.menu.workflows",
		Status: status, Form: f, Data: listData{Workflows: defs}})
}

// create makes a new workflow from a key and title (one initial state), or imports a document.
func (m *Module) create(w http.ResponseWriter, r *http.Request) {
	f, err := web.ParseForm(r)
	if err != nil {
		m.tooLarge(w, r, err)
		return
	}
	var def *Definition
	if doc := f.Values.Get("doc"); f.Get("op") == "import" {
		if strings.TrimSpace(doc) == "" {
			f.Fail("doc", "workflow.form.required")
			m.renderList(w, r, f, http.StatusBadRequest)
			return
		}
		def, err = ParseDefinition([]byte(doc), f.Get("format"))
	} else {
		f.Require("key", "title", "state")
		if !f.Valid() {
			m.renderList(w, r, f, http.StatusBadRequest)
			return
		}
		def = &Definition{Key: f.Get("key"), Title: f.Get("title"),
			States: []State{{Key: "new", Title: f.Get("state"), PublicLabel: f.Get("state"), Initial: true}}}
		if _, e := m.e.Definition(r.Context(), agentOf(r).OrgID, def.Key); e == nil {
			f.Fail("key", "workflow.form.key_taken")
			m.renderList(w, r, f, http.StatusConflict)
			return
		}
	}
	if err == nil {
		err = m.e.db.InTx(r.Context(), func(tx *store.Tx) error {
			_, err := m.e.SaveDefinition(r.Context(), tx, agentOf(r).OrgID, def)
			return err
		})
	}
	if problems(f, err, "doc") {
		m.renderList(w, r, f, http.StatusBadRequest)
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/workflows/"+url.PathEscape(def.Key), http.StatusSeeOther)
}

// problems copies a definition's validation problems into the form, under field.
func problems(f *web.Form, err error, field string) bool {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return false
	}
	for _, p := range ve.Problems {
		path := p.Path
		if path == "" {
			path = "document"
		}
		f.Fail(field, "workflow.def.problem", "path", path, "message", p.Message)
	}
	return true
}

func (m *Module) tooLarge(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, web.ErrBodyTooLarge) {
		status = http.StatusRequestEntityTooLarge
	}
	m.e.views.Render(w, r, web.Page{Name: "workflow/error.html", Layout: "backoffice", Title: "workflow.error.title",
		Status: status, Data: "workflow.error.bad_form"})
}

type option struct{ Value, Label, Hint string }

type taskView struct {
	Type   TaskType
	Config string
}

type showData struct {
	Def        *Definition
	Graph      template.HTML
	Doc        string
	TaskTypes  []option
	Kinds      []option
	Triggers   []option
	Ops        []option
	Perms      []option
	States     []option
	NewTask    TaskType // the type whose settings form is shown
	NewTaskFor string   // the action it is added to
	Templates  []string
}

func (m *Module) show(w http.ResponseWriter, r *http.Request) {
	m.renderShow(w, r, nil, http.StatusOK)
}

func (m *Module) renderShow(w http.ResponseWriter, r *http.Request, f *web.Form, status int) {
	d, err := m.e.Definition(r.Context(), agentOf(r).OrgID, r.PathValue("key"))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	doc, _ := d.Marshal("yaml")
	data := showData{Def: d, Graph: Graph(d, d.Title), Doc: string(doc)}
	if f != nil && f.Values.Get("doc") != "" {
		data.Doc = f.Values.Get("doc")
	}
	lang := "fr"
	if m.e.views.Lang != nil {
		lang = m.e.views.Lang(r)
	}
	t := func(k string) string { return m.e.i18n.T(lang, k) }
	names := make([]string, 0, len(m.e.types))
	for n := range m.e.types {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		data.TaskTypes = append(data.TaskTypes, option{Value: n, Label: t(m.e.types[n].Title())})
	}
	for _, k := range []string{KindManual, KindMass, KindAuto} {
		data.Kinds = append(data.Kinds, option{Value: k, Label: t("workflow.kind." + k)})
	}
	data.Triggers = []option{{Value: "", Label: "—"}}
	for _, k := range []string{OnEnter, OnDelay, OnCondition} {
		data.Triggers = append(data.Triggers, option{Value: k, Label: t("workflow.trigger." + k)})
	}
	for _, k := range []string{"eq", "ne", "in", "prefix", "contains", "gt", "lt", "empty", "not_empty"} {
		data.Ops = append(data.Ops, option{Value: k, Label: t("workflow.op." + k)})
	}
	for _, p := range []string{PermAct, PermDecide} {
		data.Perms = append(data.Perms, option{Value: p, Label: t("workflow.perm." + strings.TrimPrefix(p, "workflow."))})
	}
	for _, s := range d.States {
		data.States = append(data.States, option{Value: s.Key, Label: s.Title})
	}
	for n := range d.Templates {
		data.Templates = append(data.Templates, n)
	}
	slices.Sort(data.Templates)
	if tt, ok := m.e.types[r.URL.Query().Get("task_type")]; ok && d.ActionByKey(r.URL.Query().Get("action")) != nil {
		data.NewTask, data.NewTaskFor = tt, r.URL.Query().Get("action")
	}
	m.e.views.Render(w, r, web.Page{Name: "workflow/workflow.html", Layout: "backoffice", Title: "workflow.menu.workflows",
		Status: status, Form: f, Data: data})
}

// edit applies one change (op) to the latest version and saves it as a new version.
func (m *Module) edit(w http.ResponseWriter, r *http.Request) {
	f, err := web.ParseForm(r)
	if err != nil {
		m.tooLarge(w, r, err)
		return
	}
	ctx := r.Context()
	org := agentOf(r).OrgID
	d, err := m.e.Definition(ctx, org, r.PathValue("key"))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	nd, field := m.apply(d, f)
	if !f.Valid() {
		m.renderShow(w, r, f, http.StatusBadRequest)
		return
	}
	if nd.Key != d.Key {
		f.Fail(field, "workflow.form.key_changed")
		m.renderShow(w, r, f, http.StatusBadRequest)
		return
	}
	err = m.e.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := m.e.SaveDefinition(ctx, tx, org, nd)
		return err
	})
	if problems(f, err, field) {
		m.renderShow(w, r, f, http.StatusBadRequest)
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/workflows/"+url.PathEscape(d.Key)+"#"+field, http.StatusSeeOther)
}

// apply returns a copy of d changed by the form's op, and the form field errors go under.
func (m *Module) apply(d *Definition, f *web.Form) (*Definition, string) {
	raw, _ := json.Marshal(d)
	var nd Definition
	_ = json.Unmarshal(raw, &nd)
	nd.Version = 0
	idx := func(name string, n int) int {
		i, err := strconv.Atoi(f.Get(name))
		if err != nil || i < 0 || i >= n {
			f.Fail("op", "workflow.form.bad_index")
			return -1
		}
		return i
	}
	switch f.Get("op") {
	case "add_state":
		f.Require("state_key", "state_title", "state_label")
		nd.States = append(nd.States, State{Key: f.Get("state_key"), Title: f.Get("state_title"),
			PublicLabel: f.Get("state_label"), Final: f.Get("state_final") != ""})
		return &nd, "state_key"
	case "del_state":
		if i := idx("i", len(nd.States)); i >= 0 {
			nd.States = slices.Delete(nd.States, i, i+1)
		}
		return &nd, "state_key"
	case "initial":
		if i := idx("i", len(nd.States)); i >= 0 {
			for j := range nd.States {
				nd.States[j].Initial = j == i
			}
		}
		return &nd, "state_key"
	case "add_action":
		f.Require("action_key", "action_title", "action_to")
		if len(f.Values["action_from"]) == 0 {
			f.Fail("action_from", "workflow.form.required")
		}
		a := Action{Key: f.Get("action_key"), Title: f.Get("action_title"), From: f.Values["action_from"],
			To: f.Get("action_to"), Kind: f.Get("action_kind"), Permission: f.Get("action_perm"), Trigger: f.Get("action_trigger")}
		if dl := f.Get("action_delay"); dl != "" {
			v, err := ParseDuration(dl)
			if err != nil {
				f.Fail("action_delay", "workflow.form.bad_delay")
			}
			a.Delay = Duration(v)
		}
		if fld := f.Get("action_cond_field"); fld != "" {
			a.Condition = &Condition{Field: fld, Op: f.Get("action_cond_op"), Value: f.Get("action_cond_value")}
			if a.Condition.Op == "in" {
				for _, v := range strings.Split(f.Get("action_cond_value"), ",") {
					a.Condition.Values = append(a.Condition.Values, strings.TrimSpace(v))
				}
			}
		}
		for _, u := range strings.FieldsFunc(f.Get("action_units"), func(r rune) bool { return r == ',' || r == ' ' }) {
			n, err := strconv.ParseInt(u, 10, 64)
			if err != nil {
				f.Fail("action_units", "workflow.form.bad_units")
				break
			}
			a.Units = append(a.Units, n)
		}
		nd.Actions = append(nd.Actions, a)
		return &nd, "action_key"
	case "set_delay":
		// The silence of a "silence means acceptance" action, say: requests entering the
		// state from now on wait the new delay; timers already armed keep theirs.
		a := nd.ActionByKey(f.Get("action"))
		if a == nil || a.Trigger != OnDelay {
			f.Fail("op", "workflow.form.bad_index")
			return &nd, "op"
		}
		field := "delay-" + a.Key
		v, err := ParseDuration(f.Get("delay"))
		if err != nil || v <= 0 {
			f.Fail(field, "workflow.form.bad_delay")
		}
		a.Delay = Duration(v)
		return &nd, field
	case "del_action":
		if i := idx("i", len(nd.Actions)); i >= 0 {
			nd.Actions = slices.Delete(nd.Actions, i, i+1)
		}
		return &nd, "action_key"
	case "add_task":
		a := nd.ActionByKey(f.Get("action"))
		tt, ok := m.e.types[f.Get("task_type")]
		if a == nil || !ok {
			f.Fail("op", "workflow.form.bad_index")
			return &nd, "op"
		}
		cfg := map[string]any{}
		for _, cf := range tt.Fields() {
			v := f.Get("cfg_" + cf.Name)
			switch {
			case v == "":
			case cf.Kind == "bool":
				cfg[cf.Name] = true
			case cf.Kind == "list":
				var list []any
				for _, x := range cfgList(map[string]any{"x": v}, "x") {
					list = append(list, x)
				}
				cfg[cf.Name] = list
			case cf.Kind == "unit":
				n, _ := strconv.ParseFloat(v, 64)
				cfg[cf.Name] = n
			default:
				cfg[cf.Name] = v
			}
		}
		a.Tasks = append(a.Tasks, Task{Type: tt.Name(), Config: cfg})
		return &nd, "task"
	case "del_task":
		a := nd.ActionByKey(f.Get("action"))
		if a == nil {
			f.Fail("op", "workflow.form.bad_index")
			return &nd, "op"
		}
		if i := idx("i", len(a.Tasks)); i >= 0 {
			a.Tasks = slices.Delete(a.Tasks, i, i+1)
		}
		return &nd, "action_key"
	case "set_template":
		f.Require("tpl_name", "tpl_body")
		if nd.Templates == nil {
			nd.Templates = map[string]Template{}
		}
		nd.Templates[f.Get("tpl_name")] = Template{Subject: f.Get("tpl_subject"), Body: f.Values.Get("tpl_body")}
		return &nd, "tpl_name"
	case "del_template":
		delete(nd.Templates, f.Get("name"))
		return &nd, "tpl_name"
	case "add_rule":
		f.Require("rule_field", "rule_op", "rule_unit")
		unit, err := strconv.ParseInt(f.Get("rule_unit"), 10, 64)
		if err != nil && f.Get("rule_unit") != "" {
			f.Fail("rule_unit", "workflow.form.bad_units")
		}
		c := Condition{Field: f.Get("rule_field"), Op: f.Get("rule_op"), Value: f.Get("rule_value")}
		if c.Op == "in" {
			c.Value = nil
			for _, v := range strings.Split(f.Get("rule_value"), ",") {
				c.Values = append(c.Values, strings.TrimSpace(v))
			}
		}
		if nd.Routing == nil {
			nd.Routing = &Routing{}
		}
		nd.Routing.Rules = append(nd.Routing.Rules, Rule{When: c, Unit: unit})
		return &nd, "rule_field"
	case "del_rule":
		if nd.Routing != nil {
			if i := idx("i", len(nd.Routing.Rules)); i >= 0 {
				nd.Routing.Rules = slices.Delete(nd.Routing.Rules, i, i+1)
			}
		}
		return &nd, "rule_field"
	case "default_unit":
		unit, err := strconv.ParseInt(f.Get("default_unit"), 10, 64)
		if err != nil && f.Get("default_unit") != "" {
			f.Fail("default_unit", "workflow.form.bad_units")
		}
		if nd.Routing == nil {
			nd.Routing = &Routing{}
		}
		nd.Routing.DefaultUnit = unit
		return &nd, "default_unit"
	case "doc":
		parsed, err := ParseDefinition([]byte(f.Values.Get("doc")), "yaml")
		if err != nil {
			problems(f, err, "doc")
			return &nd, "doc"
		}
		return parsed, "doc"
	case "title":
		f.Require("title")
		nd.Title = f.Get("title")
		return &nd, "title"
	}
	f.Fail("op", "workflow.form.bad_index")
	return &nd, "op"
}

func (m *Module) export(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "yaml"
	}
	if format != "yaml" && format != "json" {
		m.fail(w, r, errs.New(errs.Invalid, "workflow.error.format"))
		return
	}
	b, err := m.e.Export(r.Context(), agentOf(r).OrgID, r.PathValue("key"), format)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	ctype := "application/json"
	if format == "yaml" {
		ctype = "application/yaml"
	}
	w.Header().Set("Content-Type", ctype+"; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="workflow-%s.%s"`, r.PathValue("key"), format))
	_, _ = w.Write(b)
}
