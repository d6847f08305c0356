package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

const pageSize = 50

// listData is what list.html shows.
type listData struct {
	Page       *Page
	Instance   bool // the superadmin's instance-level view
	Superadmin bool
	Newer      string // URLs of the neighbouring pages, "" when none
	Older      string
	Query      string // the filters, to carry to entry pages and back
}

// list shows the organisation's entries, newest first, filtered and paged by sequence.
func (m *Module) list(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	if a == nil { // the kernel admits only agents here; refuse rather than show org 0
		http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	q := r.URL.Query()
	form := web.NewForm(q)
	f := Filter{OrgID: a.OrgID, AllOrgs: a.Superadmin && q.Get("scope") == "instance", Limit: pageSize,
		Actor: form.Get("actor"), Action: form.Get("action"), ResourceType: form.Get("resource_type"), ResourceID: form.Get("resource_id")}
	for _, name := range []string{"actor", "action", "resource_type", "resource_id"} {
		form.MaxLen(name, 200)
	}
	var err error
	if f.From, err = m.parseDate(form.Get("from")); err != nil {
		form.Fail("from", "kernel.audit.error.date")
	}
	if f.To, err = m.parseDate(form.Get("to")); err != nil {
		form.Fail("to", "kernel.audit.error.date")
	} else if !f.To.IsZero() {
		f.To = f.To.AddDate(0, 0, 1) // "to" is inclusive: up to the end of that day
	}
	if form.Valid() && !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		form.Fail("to", "kernel.audit.error.date_order")
	}
	// Cursors come from our own links; a mangled one is ignored rather than reported.
	f.Before, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	if f.Before <= 0 {
		f.Before = 0
		if f.After, _ = strconv.ParseInt(q.Get("after"), 10, 64); f.After < 0 {
			f.After = 0
		}
	}
	data := &listData{Instance: f.AllOrgs, Superadmin: a.Superadmin, Page: &Page{}, Query: filterQuery(q).Encode()}
	pg := web.Page{Name: ID + "/list.html", Layout: "backoffice", Title: "kernel.audit.list.title", Form: form, Data: data}
	if !form.Valid() {
		pg.Status = http.StatusBadRequest
		m.views.Render(w, r, pg)
		return
	}
	if data.Page, err = m.log.List(r.Context(), f); err != nil {
		m.fail(w, r, err)
		return
	}
	if es := data.Page.Entries; len(es) > 0 {
		if data.Page.Newer {
			data.Newer = pageURL(q, "after", es[0].Seq)
		}
		if data.Page.Older {
			data.Older = pageURL(q, "before", es[len(es)-1].Seq)
		}
	}
	m.views.Render(w, r, pg)
}

// parseDate reads a YYYY-MM-DD date as the start of that day in the configured zone.
func (m *Module) parseDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	loc := time.UTC
	if m.views != nil && m.views.Location != nil {
		loc = m.views.Location
	}
	return time.ParseInLocation("2006-01-02", s, loc)
}

// filterQuery keeps the filter parameters of q (not the cursors).
func filterQuery(q url.Values) url.Values {
	out := url.Values{}
	for _, k := range []string{"actor", "action", "resource_type", "resource_id", "from", "to", "scope"} {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out
}

func pageURL(q url.Values, cursor string, seq int64) string {
	v := filterQuery(q)
	v.Set(cursor, strconv.FormatInt(seq, 10))
	return "/admin/audit?" + v.Encode()
}

// entryData is what entry.html shows.
type entryData struct {
	Entry         *Entry
	Before, After string // indented JSON, "" when absent
	Diff          []diffRow
	Back          string
	Instance      bool
}

// diffRow is one top-level property of the before and after objects.
type diffRow struct {
	Key, Before, After string
	Changed            bool
}

// entry shows one entry with its before and after values, property by property.
func (m *Module) entry(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	if a == nil {
		http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	q := r.URL.Query()
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq <= 0 {
		m.notFound(w, r)
		return
	}
	instance := a.Superadmin && q.Get("scope") == "instance"
	e, err := m.log.Get(r.Context(), seq, a.OrgID, instance)
	if errors.Is(err, store.ErrNotFound) {
		// Another organisation's entry is "not found", not "forbidden": its existence is
		// none of this agent's business.
		m.notFound(w, r)
		return
	}
	if err != nil {
		m.fail(w, r, err)
		return
	}
	back := "/admin/audit"
	if fq := filterQuery(q).Encode(); fq != "" {
		back += "?" + fq
	}
	data := &entryData{Entry: e, Before: indent(e.Before), After: indent(e.After), Diff: diff(e.Before, e.After),
		Back: back, Instance: instance}
	m.views.Render(w, r, web.Page{Name: ID + "/entry.html", Layout: "backoffice", Title: "kernel.audit.entry.title", Data: data})
}

func indent(s *string) string {
	if s == nil {
		return ""
	}
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(*s), "", "  "); err != nil {
		return *s
	}
	return b.String()
}

// diff compares the top-level properties of two JSON objects; nil when either value is
// something else than an object (or absent), in which case the page shows both whole.
func diff(before, after *string) []diffRow {
	obj := func(s *string) (map[string]json.RawMessage, bool) {
		if s == nil {
			return map[string]json.RawMessage{}, true
		}
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(*s), &m) != nil || m == nil {
			return nil, false
		}
		return m, true
	}
	b, ok1 := obj(before)
	a, ok2 := obj(after)
	if !ok1 || !ok2 || (before == nil && after == nil) {
		return nil
	}
	keys := make([]string, 0, len(a)+len(b))
	for k := range b {
		keys = append(keys, k)
	}
	for k := range a {
		if _, dup := b[k]; !dup {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	rows := make([]diffRow, len(keys))
	for i, k := range keys {
		bv, av := string(b[k]), string(a[k])
		rows[i] = diffRow{Key: k, Before: bv, After: av, Changed: bv != av}
	}
	return rows
}

func (m *Module) notFound(w http.ResponseWriter, r *http.Request) {
	m.views.Render(w, r, web.Page{Name: ID + "/error.html", Layout: "backoffice", Title: "kernel.audit.error.not_found",
		Status: http.StatusNotFound, Data: "kernel.audit.error.not_found_text"})
}

func (m *Module) fail(w http.ResponseWriter, r *http.Request, err error) {
	m.logger.Error("audit page", "err", err, "request_id", web.RequestIDFrom(r.Context()))
	m.views.Render(w, r, web.Page{Name: ID + "/error.html", Layout: "backoffice", Title: "kernel.error.title",
		Status: http.StatusInternalServerError, Data: "kernel.error.internal"})
}
