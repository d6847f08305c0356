package appointments

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// Back-office editing of the settings, without code: services (with their booking window
// and per-citizen rules), meeting points and weekly templates. Every save is recorded in the
// audit trail in its own transaction; a refusal (an overlapping template, a bad number)
// comes back on the form with the error summary.

func (m *Module) settingsRoutes() []kernel.Route {
	bo := func(method, pattern string, h http.HandlerFunc) kernel.Route {
		return kernel.Route{Area: kernel.BackOffice, Method: method, Pattern: pattern, Perm: PermSettings, Handler: h}
	}
	return []kernel.Route{
		bo("GET", "/admin/rdv/reglages/demarche", m.adminServiceForm),
		bo("POST", "/admin/rdv/reglages/demarche", m.adminServiceSave),
		bo("GET", "/admin/rdv/reglages/lieu", m.adminPlaceForm),
		bo("POST", "/admin/rdv/reglages/lieu", m.adminPlaceSave),
		bo("GET", "/admin/rdv/reglages/modele", m.adminTemplateForm),
		bo("POST", "/admin/rdv/reglages/modele", m.adminTemplateSave),
	}
}

// serviceFields are the numbers of the service form, with their field names.
var serviceFields = []struct {
	name string
	get  func(*Service) *int
}{
	{"slots_per_unit", func(s *Service) *int { return &s.SlotsPerUnit }},
	{"max_units", func(s *Service) *int { return &s.MaxUnits }},
	{"notice_hours", func(s *Service) *int { return &s.NoticeHours }},
	{"window_days", func(s *Service) *int { return &s.WindowDays }},
	{"hold_minutes", func(s *Service) *int { return &s.HoldMinutes }},
	{"max_upcoming", func(s *Service) *int { return &s.MaxUpcoming }},
	{"max_upcoming_category", func(s *Service) *int { return &s.MaxUpcomingCategory }},
	{"min_gap_days", func(s *Service) *int { return &s.MinGapDays }},
	{"reminder_hours", func(s *Service) *int { return &s.ReminderHours }},
}

func (m *Module) auditHook(ctx context.Context, action, typ string, after any) TxHook {
	return func(tx *store.Tx, id int64) error {
		if m.audit == nil {
			return nil
		}
		return m.audit.Record(ctx, tx, kernel.AuditEntry{Action: action, ResourceType: typ, ResourceID: strconv.FormatInt(id, 10), After: after})
	}
}

// failOn puts a domain error on the form (its field, else the form as a whole); it reports
// false for an error that is not the user's (a 500).
// afterSave answers a settings form's save: back to the settings on success, the error page
// for an unexpected error (true: answered); false when err became a field error to show.
func (m *Module) afterSave(w http.ResponseWriter, r *http.Request, f *web.Form, err error, fallback string) bool {
	if err == nil {
		http.Redirect(w, r, "/admin/rdv/reglages", http.StatusSeeOther)
		return true
	}
	if !failOn(f, err, fallback) {
		m.adminFail(w, r, err)
		return true
	}
	return false
}

func failOn(f *web.Form, err error, fallback string) bool {
	e, ok := errs.As(err)
	if !ok {
		return false
	}
	field := e.Field
	if field == "" {
		field = fallback
	}
	f.Fail(field, e.Key, e.Args...)
	return true
}

func (m *Module) renderSettingsForm(w http.ResponseWriter, r *http.Request, name, title string, f *web.Form, data map[string]any) {
	status := http.StatusOK
	if !f.Valid() {
		status = http.StatusBadRequest
	}
	m.views.Render(w, r, web.Page{Name: "appointments/" + name, Layout: "backoffice", Title: title, Status: status, Form: f, Data: data})
}

func (m *Module) serviceFormData(ctx context.Context, org int64, lang, formKey string) map[string]any {
	cats, _ := m.Categories(ctx, org)
	var opts []map[string]string
	for _, c := range cats {
		opts = append(opts, map[string]string{"Value": strconv.FormatInt(c.ID, 10), "Label": c.Name})
	}
	ants := []map[string]string{{"Value": "", "Label": m.i18n.T("fr", "appointments.settings.ants_none")}}
	for _, v := range []string{"CNI", "PASSPORT", "CNI-PASSPORT"} {
		ants = append(ants, map[string]string{"Value": v, "Label": v})
	}
	data := map[string]any{"Categories": opts, "Ants": ants}
	if fo, ok := m.formOptions(ctx, org, lang, formKey); ok {
		data["Forms"] = fo
	}
	return data
}

func (m *Module) adminServiceForm(w http.ResponseWriter, r *http.Request) {
	ag := kernel.AgentFrom(r.Context())
	v := url.Values{"active": {"1"}}
	s := Service{SlotsPerUnit: 1, MaxUnits: 1, NoticeHours: 2, WindowDays: 60, HoldMinutes: 10, MaxUpcoming: 1, ReminderHours: 24, Active: true}
	if id, _ := strconv.ParseInt(r.FormValue("id"), 10, 64); id != 0 {
		var err error
		if s, err = m.Service(r.Context(), m.db.Read(), id); err != nil || s.OrgID != ag.OrgID {
			m.adminFail(w, r, errs.New(errs.NotFound, "appointments.error.no_service"))
			return
		}
		v.Set("id", strconv.FormatInt(s.ID, 10))
		if !s.Active {
			v.Del("active")
		}
	}
	v.Set("name", s.Name)
	v.Set("category", strconv.FormatInt(s.CategoryID, 10))
	v.Set("description", s.Description)
	v.Set("bring", s.Bring)
	v.Set("ants_reason", s.AntsReason)
	v.Set("form", s.FormKey)
	for _, fl := range serviceFields {
		v.Set(fl.name, strconv.Itoa(*fl.get(&s)))
	}
	m.renderSettingsForm(w, r, "service_form.html", "appointments.settings.service_title", web.NewForm(v),
		m.serviceFormData(r.Context(), ag.OrgID, m.lang(r), s.FormKey))
}

func (m *Module) adminServiceSave(w http.ResponseWriter, r *http.Request) {
	f, err := web.ParseForm(r)
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	ag := kernel.AgentFrom(r.Context())
	s := Service{OrgID: ag.OrgID, Active: f.Get("active") == "1"}
	s.ID, _ = strconv.ParseInt(f.Get("id"), 10, 64)
	var old Service
	if s.ID != 0 {
		if old, err = m.Service(r.Context(), m.db.Read(), s.ID); err != nil || old.OrgID != ag.OrgID {
			m.adminFail(w, r, errs.New(errs.NotFound, "appointments.error.no_service"))
			return
		}
		// What the form does not edit is kept.
		s.Need, s.Questions, s.UnitID, s.FormKey = old.Need, old.Questions, old.UnitID, old.FormKey
	}
	// The form whose questions are asked: one the forms module offers as a question set,
	// or the one already named (kept even when it is no longer offered).
	if q, ok := m.formQuestions(); ok {
		if key := f.Get("form"); key != s.FormKey {
			if key != "" {
				if _, err := q.QuestionSet(r.Context(), ag.OrgID, key); err != nil {
					if errs.CodeOf(err) != errs.NotFound {
						m.adminFail(w, r, err)
						return
					}
					f.Fail("form", "appointments.error.form_unknown")
				}
			}
			s.FormKey = key
		}
	}
	f.Require("name")
	f.MaxLen("name", 200)
	s.Name, s.Description, s.Bring, s.AntsReason = f.Get("name"), f.Get("description"), f.Get("bring"), f.Get("ants_reason")
	s.CategoryID, _ = strconv.ParseInt(f.Get("category"), 10, 64)
	if !m.categoryOf(r.Context(), ag.OrgID, s.CategoryID) {
		f.Fail("category", "appointments.error.required")
	}
	for _, fl := range serviceFields {
		n, err := strconv.Atoi(f.Get(fl.name))
		if err != nil || n < 0 || n > 100000 {
			f.Fail(fl.name, "appointments.error.number")
			continue
		}
		*fl.get(&s) = n
	}
	if f.Valid() {
		_, err = m.SaveService(r.Context(), s, m.auditHook(r.Context(), "appointments.service.save", "appointment_service", s))
		if m.afterSave(w, r, f, err, "name") {
			return
		}
	}
	m.renderSettingsForm(w, r, "service_form.html", "appointments.settings.service_title", f, m.serviceFormData(r.Context(), ag.OrgID, m.lang(r), old.FormKey))
}

func (m *Module) categoryOf(ctx context.Context, org, id int64) bool {
	cats, _ := m.Categories(ctx, org)
	for _, c := range cats {
		if c.ID == id {
			return true
		}
	}
	return false
}

func (m *Module) adminPlaceForm(w http.ResponseWriter, r *http.Request) {
	ag := kernel.AgentFrom(r.Context())
	v := url.Values{"active": {"1"}}
	if id, _ := strconv.ParseInt(r.FormValue("id"), 10, 64); id != 0 {
		p, err := m.Place(r.Context(), m.db.Read(), id)
		if err != nil || p.OrgID != ag.OrgID {
			m.adminFail(w, r, errs.New(errs.NotFound, "appointments.error.no_place"))
			return
		}
		v = url.Values{"id": {strconv.FormatInt(p.ID, 10)}, "name": {p.Name}, "address": {p.Address}, "zip_code": {p.ZipCode}, "city": {p.City},
			"latitude": {strconv.FormatFloat(p.Latitude, 'f', -1, 64)}, "longitude": {strconv.FormatFloat(p.Longitude, 'f', -1, 64)},
			"access": {p.Access}, "accessibility": {p.Accessibility}, "website": {p.Website}}
		if p.Active {
			v.Set("active", "1")
		}
	}
	m.renderSettingsForm(w, r, "place_form.html", "appointments.settings.place_title", web.NewForm(v), nil)
}

func (m *Module) adminPlaceSave(w http.ResponseWriter, r *http.Request) {
	f, err := web.ParseForm(r)
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	ag := kernel.AgentFrom(r.Context())
	p := Place{OrgID: ag.OrgID, Name: f.Get("name"), Address: f.Get("address"), ZipCode: f.Get("zip_code"), City: f.Get("city"),
		Access: f.Get("access"), Accessibility: f.Get("accessibility"), Website: f.Get("website"), Active: f.Get("active") == "1"}
	p.ID, _ = strconv.ParseInt(f.Get("id"), 10, 64)
	if p.ID != 0 {
		old, err := m.Place(r.Context(), m.db.Read(), p.ID)
		if err != nil || old.OrgID != ag.OrgID {
			m.adminFail(w, r, errs.New(errs.NotFound, "appointments.error.no_place"))
			return
		}
		p.Logo, p.UnitID = old.Logo, old.UnitID
	}
	f.Require("name", "address", "zip_code", "city")
	for _, c := range []struct {
		name string
		to   *float64
	}{{"latitude", &p.Latitude}, {"longitude", &p.Longitude}} {
		if s := f.Get(c.name); s != "" {
			v, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", "."), 64)
			if err != nil {
				f.Fail(c.name, "appointments.error.coordinates")
			}
			*c.to = v
		}
	}
	if w := p.Website; w != "" && !strings.HasPrefix(w, "https://") && !strings.HasPrefix(w, "http://") {
		f.Fail("website", "appointments.error.website")
	}
	if f.Valid() {
		_, err = m.SavePlace(r.Context(), p, m.auditHook(r.Context(), "appointments.place.save", "appointment_place", p))
		if m.afterSave(w, r, f, err, "name") {
			return
		}
	}
	m.renderSettingsForm(w, r, "place_form.html", "appointments.settings.place_title", f, nil)
}

// weekdays are the template form's day fields, Monday first, with their time.Weekday.
var weekdays = []struct {
	key string
	day int
}{{"mon", 1}, {"tue", 2}, {"wed", 3}, {"thu", 4}, {"fri", 5}, {"sat", 6}, {"sun", 0}}

// parseRanges reads "09:00-12:00, 14:00-17:00".
func parseRanges(s string) ([]Range, bool) {
	var out []Range
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' }) {
		a, b, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			return nil, false
		}
		out = append(out, Range{Start: strings.TrimSpace(a), End: strings.TrimSpace(b)})
	}
	return out, checkRanges(out)
}

func formatRanges(rs []Range) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, r.Start+"-"+r.End)
	}
	return strings.Join(parts, ", ")
}

func (m *Module) templateFormData(ctx context.Context, org int64) map[string]any {
	svcs, _ := m.Services(ctx, org, false)
	places, _ := m.Places(ctx, org, 0)
	var so, po []map[string]string
	for _, s := range svcs {
		so = append(so, map[string]string{"Value": strconv.FormatInt(s.ID, 10), "Label": s.Name})
	}
	for _, p := range places {
		po = append(po, map[string]string{"Value": strconv.FormatInt(p.ID, 10), "Label": p.Name})
	}
	var days []map[string]string
	for _, d := range weekdays {
		days = append(days, map[string]string{"key": d.key})
	}
	return map[string]any{"Services": so, "Places": po, "Days": days}
}

func (m *Module) adminTemplateForm(w http.ResponseWriter, r *http.Request) {
	ag := kernel.AgentFrom(r.Context())
	v := url.Values{"service": {r.FormValue("demarche")}, "place": {r.FormValue("lieu")}, "slot_minutes": {"15"}, "capacity": {"1"}}
	if id, _ := strconv.ParseInt(r.FormValue("id"), 10, 64); id != 0 {
		svc, _ := strconv.ParseInt(r.FormValue("demarche"), 10, 64)
		place, _ := strconv.ParseInt(r.FormValue("lieu"), 10, 64)
		var found *Template
		if m.ownsOffer(r.Context(), ag.OrgID, svc, place) {
			tpls, _ := m.Templates(r.Context(), place, svc)
			for i := range tpls {
				if tpls[i].ID == id {
					found = &tpls[i]
				}
			}
		}
		if found == nil {
			m.adminFail(w, r, errs.New(errs.NotFound, "appointments.error.no_template"))
			return
		}
		v.Set("id", strconv.FormatInt(id, 10))
		v.Set("valid_from", found.ValidFrom)
		v.Set("valid_to", found.ValidTo)
		v.Set("slot_minutes", strconv.Itoa(found.SlotMinutes))
		v.Set("capacity", strconv.Itoa(found.Capacity))
		for _, d := range weekdays {
			v.Set(d.key, formatRanges(found.Days[d.day]))
		}
		v.Set("breaks", formatRanges(found.Breaks))
	}
	m.renderSettingsForm(w, r, "template_form.html", "appointments.settings.template_title", web.NewForm(v), m.templateFormData(r.Context(), ag.OrgID))
}

// ownsOffer reports whether the service and the place both belong to the organisation.
func (m *Module) ownsOffer(ctx context.Context, org, svc, place int64) bool {
	s, err1 := m.Service(ctx, m.db.Read(), svc)
	p, err2 := m.Place(ctx, m.db.Read(), place)
	return err1 == nil && err2 == nil && s.OrgID == org && p.OrgID == org
}

func (m *Module) adminTemplateSave(w http.ResponseWriter, r *http.Request) {
	f, err := web.ParseForm(r)
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	ag := kernel.AgentFrom(r.Context())
	t := Template{ValidFrom: f.Get("valid_from"), ValidTo: f.Get("valid_to")}
	t.ID, _ = strconv.ParseInt(f.Get("id"), 10, 64)
	t.ServiceID, _ = strconv.ParseInt(f.Get("service"), 10, 64)
	t.PlaceID, _ = strconv.ParseInt(f.Get("place"), 10, 64)
	if !m.ownsOffer(r.Context(), ag.OrgID, t.ServiceID, t.PlaceID) {
		f.Fail("service", "appointments.error.no_offer")
	}
	f.Require("valid_from", "valid_to")
	var err1, err2 error
	t.SlotMinutes, err1 = strconv.Atoi(f.Get("slot_minutes"))
	t.Capacity, err2 = strconv.Atoi(f.Get("capacity"))
	if err1 != nil {
		f.Fail("slot_minutes", "appointments.error.slot_minutes")
	}
	if err2 != nil {
		f.Fail("capacity", "appointments.error.capacity")
	}
	for _, d := range weekdays {
		rs, ok := parseRanges(f.Get(d.key))
		if !ok {
			f.Fail(d.key, "appointments.error.ranges_format")
		}
		t.Days[d.day] = rs
	}
	if bs, ok := parseRanges(f.Get("breaks")); ok {
		t.Breaks = bs
	} else {
		f.Fail("breaks", "appointments.error.ranges_format")
	}
	if f.Valid() {
		_, err = m.SaveTemplate(r.Context(), t, m.auditHook(r.Context(), "appointments.template.save", "appointment_template", t))
		if m.afterSave(w, r, f, err, "valid_from") {
			return
		}
	}
	m.renderSettingsForm(w, r, "template_form.html", "appointments.settings.template_title", f, m.templateFormData(r.Context(), ag.OrgID))
}

// allTemplates lists the organisation's weekly templates for the settings page.
func (m *Module) allTemplates(ctx context.Context, org int64) ([]map[string]any, error) {
	rows, err := m.db.Read().QueryContext(ctx, `SELECT t.id, t.service_id, t.place_id, s.name, p.name, t.valid_from, t.valid_to, t.slot_minutes, t.capacity
		FROM appt_templates t JOIN appt_services s ON s.id = t.service_id JOIN appt_places p ON p.id = t.place_id
		WHERE p.org_id = ? ORDER BY s.name, p.name, t.valid_from`, org)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var id, svc, place int64
		var sn, pn, from, to string
		var mins, capacity int
		if err := rows.Scan(&id, &svc, &place, &sn, &pn, &from, &to, &mins, &capacity); err != nil {
			return nil, err
		}
		out = append(out, map[string]any{"ID": id, "Service": svc, "Place": place, "ServiceName": sn, "PlaceName": pn, "From": from, "To": to,
			"Minutes": mins, "Capacity": capacity})
	}
	return out, rows.Err()
}
