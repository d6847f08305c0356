package workflow

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// Inbox lists the resources of an agent's scope (permission workflow.inbox): the whole
// organisation, or the units where the agent holds it.
func (e *engine) inboxFilter(ctx context.Context, a *kernel.Agent) (InboxFilter, error) {
	f := InboxFilter{OrgID: a.OrgID}
	if e.auth == nil {
		return f, nil
	}
	sc, err := e.auth.Scope(ctx, a, PermInbox)
	if err != nil {
		return f, err
	}
	f.All, f.UnitIDs = sc.All, sc.UnitIDs
	return f, nil
}

// Inbox returns the counts per state and one page of resources for agent a (exported for
// tests and other back-office pages).
func (m *Module) Inbox(ctx context.Context, a *kernel.Agent, mine bool, workflow, state string, offset int) ([]StateCount, []Status, error) {
	f, err := m.e.inboxFilter(ctx, a)
	if err != nil {
		return nil, nil, err
	}
	if mine {
		f.AgentID = a.ID
	}
	f.Workflow = workflow
	counts, err := inboxCounts(ctx, m.e.db.Read(), f)
	if err != nil {
		return nil, nil, err
	}
	f.State, f.Offset = state, offset
	list, err := inboxList(ctx, m.e.db.Read(), f)
	if err != nil {
		return nil, nil, err
	}
	for i := range list {
		_ = m.e.withDef(ctx, m.e.db.Read(), &list[i])
	}
	return counts, list, nil
}

type countView struct {
	StateCount
	Title   string
	Current bool
	URL     string
}

type inboxData struct {
	Counts   []countView
	Items    []Status
	Mine     bool
	Workflow string
	State    string
	Actions  []Action // mass actions of the state shown
	Next     string
}

func (m *Module) inbox(w http.ResponseWriter, r *http.Request) {
	m.renderInbox(w, r, nil, "", http.StatusOK)
}

func (m *Module) renderInbox(w http.ResponseWriter, r *http.Request, f *web.Form, flash string, status int) {
	q := r.URL.Query()
	if f != nil {
		q = f.Values
	}
	mine := q.Get("mine") == "1"
	offset, _ := strconv.Atoi(q.Get("offset"))
	a := agentOf(r)
	counts, items, err := m.Inbox(r.Context(), a, mine, q.Get("workflow"), q.Get("state"), max(offset, 0))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	d := inboxData{Items: items, Mine: mine, Workflow: q.Get("workflow"), State: q.Get("state")}
	for _, c := range counts {
		cv := countView{StateCount: c, Title: c.State, Current: c.Workflow == d.Workflow && c.State == d.State}
		if def, err := m.e.Definition(r.Context(), a.OrgID, c.Workflow); err == nil {
			cv.Title = def.Title + " · " + c.State
			if s := def.StateByKey(c.State); s != nil {
				cv.Title = def.Title + " · " + s.Title
			}
		}
		v := url.Values{"workflow": {c.Workflow}, "state": {c.State}}
		if mine {
			v.Set("mine", "1")
		}
		cv.URL = "/admin/workflow/inbox?" + v.Encode()
		d.Counts = append(d.Counts, cv)
	}
	if d.Workflow != "" && d.State != "" {
		if def, err := m.e.Definition(r.Context(), a.OrgID, d.Workflow); err == nil {
			for _, ac := range def.Actions {
				if ac.Kind == KindMass && ac.AppliesIn(d.State) {
					d.Actions = append(d.Actions, ac)
				}
			}
		}
	}
	if len(items) == 50 {
		v := url.Values{"workflow": {d.Workflow}, "state": {d.State}, "offset": {strconv.Itoa(offset + 50)}}
		d.Next = "/admin/workflow/inbox?" + v.Encode()
	}
	m.e.views.Render(w, r, web.Page{Name: "workflow/inbox.html", Layout: "backoffice", Title: "workflow.menu.inbox",
		Status: status, Form: f, Flash: flash, Data: d})
}

// MassResult is the outcome of an action on one resource of a selection.
type MassResult struct {
	Ref Ref
	Err error
}

// RunMany runs action on each ref in its own transaction, so one refusal does not undo the
// others; it returns one result per ref.
func (m *Module) RunMany(ctx context.Context, actor *kernel.Agent, refs []Ref, action string, in Input) []MassResult {
	out := make([]MassResult, 0, len(refs))
	for _, ref := range refs {
		st, err := m.e.State(ctx, ref)
		if err == nil {
			if a := st.def.ActionByKey(action); a == nil || a.Kind != KindMass {
				err = errs.New(errs.Conflict, "workflow.error.not_mass")
			} else {
				_, err = m.e.Run(ctx, actor, ref, action, in)
			}
		}
		out = append(out, MassResult{Ref: ref, Err: err})
	}
	return out
}

func (m *Module) mass(w http.ResponseWriter, r *http.Request) {
	f, err := web.ParseForm(r)
	if err != nil {
		m.tooLarge(w, r, err)
		return
	}
	var refs []Ref
	for _, s := range f.Values["sel"] {
		t, id, ok := strings.Cut(s, "/")
		if ok {
			refs = append(refs, Ref{Type: t, ID: id})
		}
	}
	if len(refs) == 0 {
		f.Fail("sel", "workflow.inbox.select_some")
	}
	if f.Get("action") == "" {
		f.Fail("action", "workflow.form.required")
	}
	if !f.Valid() {
		m.renderInbox(w, r, f, "", http.StatusBadRequest)
		return
	}
	res := m.RunMany(r.Context(), agentOf(r), refs, f.Get("action"), Input{Comment: f.Get("comment")})
	failed := 0
	for _, x := range res {
		if x.Err != nil {
			failed++
			f.Fail("sel", "workflow.inbox.failed_one", "ref", x.Ref.ID, "reason", reason(x.Err))
		}
	}
	if failed > 0 {
		m.renderInbox(w, r, f, "", http.StatusConflict)
		return
	}
	v := url.Values{"workflow": {f.Get("workflow")}, "state": {f.Get("state")}, "done": {strconv.Itoa(len(res))}}
	http.Redirect(w, r, "/admin/workflow/inbox?"+v.Encode(), http.StatusSeeOther)
}

func reason(err error) string {
	if e, ok := errs.As(err); ok {
		return string(e.Code)
	}
	return "error"
}

// The resource page.

type delivery struct {
	Event    string
	Kind     string
	Status   string
	Attempts int
	Code     int
	At       time.Time
}

type resourceData struct {
	Status     Status
	Actions    []Action
	History    template.HTML
	Files      []File
	Deliveries []delivery
	AdminURL   string
}

func (m *Module) resource(w http.ResponseWriter, r *http.Request) {
	m.renderResource(w, r, nil, http.StatusOK)
}

// visible checks that the agent may see the resource (workflow.inbox on it).
func (m *Module) visible(ctx context.Context, a *kernel.Agent, ref Ref) (Status, error) {
	st, err := m.e.State(ctx, ref)
	if err != nil {
		return st, err
	}
	res := &kernel.Resource{Type: "workflow." + ref.Type, ID: ref.ID, UnitID: st.UnitID, OrgID: st.OrgID}
	if m.e.auth == nil || st.OrgID != a.OrgID || !m.e.auth.Can(ctx, a, PermInbox, res) {
		return st, errs.New(errs.NotFound, "workflow.error.resource_not_found")
	}
	return st, nil
}

func (m *Module) renderResource(w http.ResponseWriter, r *http.Request, f *web.Form, status int) {
	ctx := r.Context()
	ref := Ref{Type: r.PathValue("type"), ID: r.PathValue("id")}
	st, err := m.visible(ctx, agentOf(r), ref)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	d := resourceData{Status: st}
	if d.Actions, err = m.e.AvailableActions(ctx, agentOf(r), ref); err != nil {
		m.fail(w, r, err)
		return
	}
	if d.History, err = m.Engine().HistoryHTML(r, ref, false); err != nil {
		m.fail(w, r, err)
		return
	}
	if d.Files, err = m.e.Files(ctx, ref); err != nil {
		m.fail(w, r, err)
		return
	}
	rows, err := m.e.db.Read().QueryContext(ctx, `SELECT event, kind, status, attempts, last_code, updated_at FROM workflow_deliveries
 WHERE resource_id = ? ORDER BY id DESC LIMIT 20`, st.internalID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	for rows.Next() {
		var dl delivery
		if rows.Scan(&dl.Event, &dl.Kind, &dl.Status, &dl.Attempts, &dl.Code, &dl.At) == nil {
			d.Deliveries = append(d.Deliveries, dl)
		}
	}
	rows.Close()
	if rt, ok := m.e.rtypes[ref.Type]; ok {
		if desc, err := rt.Provider.Describe(ctx, ref.ID); err == nil {
			d.AdminURL = desc.AdminURL
		}
	}
	m.e.views.Render(w, r, web.Page{Name: "workflow/resource.html", Layout: "backoffice", Title: "workflow.resource.title",
		Status: status, Form: f, Data: d})
}

func (m *Module) run(w http.ResponseWriter, r *http.Request) {
	f, err := web.ParseForm(r)
	if err != nil {
		m.tooLarge(w, r, err)
		return
	}
	ref := Ref{Type: r.PathValue("type"), ID: r.PathValue("id")}
	if _, err := m.visible(r.Context(), agentOf(r), ref); err != nil {
		m.fail(w, r, err)
		return
	}
	f.Require("action")
	if !f.Valid() {
		m.renderResource(w, r, f, http.StatusBadRequest)
		return
	}
	_, err = m.e.Run(r.Context(), agentOf(r), ref, f.Get("action"), Input{Comment: f.Get("comment")})
	if err != nil {
		if e, ok := errs.As(err); ok && e.Code != errs.NotFound {
			f.Fail("action", e.Key)
			m.renderResource(w, r, f, web.StatusOf(err))
			return
		}
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/workflow/r/"+url.PathEscape(ref.Type)+"/"+url.PathEscape(ref.ID), http.StatusSeeOther)
}

func (m *Module) file(w http.ResponseWriter, r *http.Request) {
	ref := Ref{Type: r.PathValue("type"), ID: r.PathValue("id")}
	if _, err := m.visible(r.Context(), agentOf(r), ref); err != nil {
		m.fail(w, r, err)
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("file"), 10, 64)
	f, err := m.e.File(r.Context(), ref, id)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", f.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(f.Name, `"`, "")+`"`)
	_, _ = w.Write(f.Data)
}

// Endpoints (webhooks and business applications).

type endpointView struct {
	ID     int64
	Key    string
	URL    string
	Events string
	Active bool
}

func (m *Module) endpoints(w http.ResponseWriter, r *http.Request) {
	m.renderEndpoints(w, r, nil, "", http.StatusOK)
}

func (m *Module) renderEndpoints(w http.ResponseWriter, r *http.Request, f *web.Form, flash string, status int) {
	rows, err := m.e.db.Read().QueryContext(r.Context(), `SELECT id, key, url, events, active FROM workflow_endpoints WHERE org_id = ? ORDER BY key`,
		agentOf(r).OrgID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	var list []endpointView
	for rows.Next() {
		var ev endpointView
		if rows.Scan(&ev.ID, &ev.Key, &ev.URL, &ev.Events, &ev.Active) == nil {
			list = append(list, ev)
		}
	}
	rows.Close()
	m.e.views.Render(w, r, web.Page{Name: "workflow/endpoints.html", Layout: "backoffice", Title: "workflow.menu.endpoints",
		Status: status, Form: f, Flash: flash, Data: list})
}

func (m *Module) saveEndpoint(w http.ResponseWriter, r *http.Request) {
	f, err := web.ParseForm(r)
	if err != nil {
		m.tooLarge(w, r, err)
		return
	}
	f.Require("key", "url", "secret")
	if k := f.Get("key"); k != "" && !keyRe.MatchString(k) {
		f.Fail("key", "workflow.form.bad_key")
	}
	if u, err := url.Parse(f.Get("url")); f.Get("url") != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
		f.Fail("url", "workflow.form.bad_url")
	}
	if s := f.Get("secret"); s != "" && len(s) < 16 {
		f.Fail("secret", "workflow.form.short_secret")
	}
	if !f.Valid() {
		m.renderEndpoints(w, r, f, "", http.StatusBadRequest)
		return
	}
	err = m.SaveEndpoint(r.Context(), agentOf(r).OrgID, Endpoint{Key: f.Get("key"), URL: f.Get("url"), Secret: f.Get("secret"),
		Events: strings.Fields(strings.ReplaceAll(f.Get("events"), ",", " "))})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/workflow/endpoints", http.StatusSeeOther)
}

// Endpoint is an organisation's outgoing HTTP endpoint: a webhook subscriber (Events) or a
// business application that "call" tasks name by Key.
type Endpoint struct {
	Key    string
	URL    string
	Secret string
	Events []string // "forms.response.submitted", "forms.response.state_changed", "*"
}

// SaveEndpoint creates or replaces an endpoint (audited, without its secret).
func (m *Module) SaveEndpoint(ctx context.Context, orgID int64, ep Endpoint) error {
	return m.e.db.InTx(ctx, func(tx *store.Tx) error {
		events := strings.Join(ep.Events, " ")
		res, err := tx.ExecContext(ctx, `UPDATE workflow_endpoints SET url = ?, secret = ?, events = ?, active = TRUE WHERE org_id = ? AND key = ?`,
			ep.URL, ep.Secret, events, orgID, ep.Key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO workflow_endpoints (org_id, key, url, secret, events, active, created_at)
 VALUES (?, ?, ?, ?, ?, TRUE, ?)`, orgID, ep.Key, ep.URL, ep.Secret, events, m.e.now()); err != nil {
				return err
			}
		}
		if m.e.audit == nil {
			return nil
		}
		return m.e.audit.Record(ctx, tx, kernel.AuditEntry{Action: "workflow.endpoint.save", ResourceType: "workflow.endpoint",
			ResourceID: ep.Key, After: map[string]any{"url": ep.URL, "events": ep.Events}})
	})
}
