package appointments

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/web"
)

func (m *Module) routes() []kernel.Route {
	pub := func(method, pattern string, h http.HandlerFunc) kernel.Route {
		return kernel.Route{Area: kernel.Public, Method: method, Pattern: pattern, Handler: h}
	}
	limited := func(h http.HandlerFunc) http.HandlerFunc {
		lh := m.limit.Limit(func(r *http.Request) string { return web.ClientIP(r, m.cfg != nil && m.cfg.TrustProxy) }, h, http.MethodPost)
		return lh.ServeHTTP
	}
	api := func(method, pattern, perm string, h http.HandlerFunc) kernel.Route {
		return kernel.Route{Area: kernel.API, Method: method, Pattern: pattern, Perm: perm, Handler: h}
	}
	bo := func(method, pattern, perm string, h http.HandlerFunc) kernel.Route {
		return kernel.Route{Area: kernel.BackOffice, Method: method, Pattern: pattern, Perm: perm, Handler: h}
	}
	return append([]kernel.Route{
		pub("GET", "/rdv", m.pageServices),
		pub("GET", "/rdv/demarche/{service}", m.pagePlaces),
		pub("GET", "/rdv/demarche/{service}/{place}", m.pageCalendar),
		pub("GET", "/rdv/demarche/{service}/{place}/{day}", m.pageTimes),
		pub("POST", "/rdv/demarche/{service}/{place}/{day}", limited(m.postTime)),
		pub("GET", "/rdv/reservation/{token}", m.pageQuestions),
		pub("POST", "/rdv/reservation/{token}", limited(m.postQuestions)),
		pub("GET", "/rdv/reservation/{token}/recapitulatif", m.pageRecap),
		pub("POST", "/rdv/reservation/{token}/recapitulatif", limited(m.postConfirm)),
		pub("GET", "/rdv/annuler/{token}", m.pageCancel),
		pub("POST", "/rdv/annuler/{token}", limited(m.postCancel)),
		pub("GET", "/rdv/gerer/{token}", m.pageManage),
		pub("GET", "/rdv/retrouver", m.pageFind),
		pub("POST", "/rdv/retrouver", limited(m.postFind)),
		pub("GET", "/rdv/demarche/{service}/attente", m.pageWait),
		pub("POST", "/rdv/demarche/{service}/attente", limited(m.postWait)),
		pub("GET", "/compte/rendez-vous", m.pageMine),

		api("GET", "/api/appointments/openapi.json", "", m.apiOpenAPI),
		api("GET", "/api/appointments/services", "", m.apiServices),
		api("GET", "/api/appointments/slots", "", m.apiSlots),
		api("POST", "/api/appointments", PermAPI, m.apiCreate),
		api("GET", "/api/appointments/{ref}", "", m.apiGet),
		api("POST", "/api/appointments/{ref}/cancel", "", m.apiCancel),
		api("POST", "/api/appointments/{ref}/reschedule", "", m.apiReschedule),
		api("GET", "/api/ants/getManagedMeetingPoints", "", m.hubAuth(m.hubMeetingPoints)),
		api("GET", "/api/ants/availableTimeSlots", "", m.hubAuth(m.hubTimeSlots)),
		api("GET", "/api/ants/searchApplicationIds", "", m.hubAuth(m.hubSearch)),

		bo("GET", "/admin/rdv/planning", PermPlanning, m.adminPlanning),
		bo("GET", "/admin/rdv/planning/imprimer", PermPlanning, m.adminPrint),
		bo("GET", "/admin/rdv/export.csv", PermPlanning, m.adminCSV),
		bo("GET", "/admin/rdv/export.xlsx", PermPlanning, m.adminXLSX),
		bo("GET", "/admin/rdv/statistiques", PermPlanning, m.adminStats),
		bo("GET", "/admin/rdv/rendez-vous/{ref}", PermPlanning, m.adminAppointment),
		bo("POST", "/admin/rdv/rendez-vous/{ref}/etat", PermManage, m.adminCheckIn),
		bo("POST", "/admin/rdv/rendez-vous/{ref}/annuler", PermManage, m.adminCancel),
		bo("POST", "/admin/rdv/creneaux/{id}/bloquer", PermManage, m.adminBlock),
		bo("POST", "/admin/rdv/capacite", PermManage, m.adminCapacity),
		bo("POST", "/admin/rdv/reserver", PermManage, m.adminBook),
		bo("GET", "/admin/rdv/reglages", PermSettings, m.adminSettings),
		bo("POST", "/admin/rdv/reglages/fermeture", PermSettings, m.adminClosing),
	}, m.settingsRoutes()...)
}

func (m *Module) render(w http.ResponseWriter, r *http.Request, name, title string, status int, f *web.Form, data any) {
	m.views.Render(w, r, web.Page{Name: "appointments/" + name, Title: title, Status: status, Form: f, Data: data})
}

func (m *Module) message(w http.ResponseWriter, r *http.Request, status int, key string, args ...any) {
	m.render(w, r, "message.html", "appointments.title", status, nil, map[string]any{"Message": m.i18n.T(m.lang(r), key, args...)})
}

func (m *Module) fail(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := errs.As(err); ok {
		m.message(w, r, web.StatusOf(err), e.Key, e.Args...)
		return
	}
	m.log.Error("appointments", "path", r.URL.Path, "err", err)
	m.message(w, r, http.StatusInternalServerError, "appointments.error.internal")
}

func pathID(r *http.Request, name string) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return n, err == nil && n > 0
}

func (m *Module) pageServices(w http.ResponseWriter, r *http.Request) {
	org := orgOf(r, m)
	cats, err := m.Categories(r.Context(), org)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	svcs, err := m.Services(r.Context(), org, true)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	type group struct {
		Category Category
		Services []Service
	}
	var groups []group
	for _, c := range cats {
		g := group{Category: c}
		for _, s := range svcs {
			if s.CategoryID == c.ID {
				g.Services = append(g.Services, s)
			}
		}
		if len(g.Services) > 0 {
			groups = append(groups, g)
		}
	}
	m.render(w, r, "services.html", "appointments.services.title", 0, nil, map[string]any{"Groups": groups, "AntsPaused": m.AntsPaused(r.Context(), org)})
}

func (m *Module) service(w http.ResponseWriter, r *http.Request) (*Service, bool) {
	id, ok := pathID(r, "service")
	if !ok {
		m.message(w, r, http.StatusNotFound, "appointments.error.no_service")
		return nil, false
	}
	s, err := m.Service(r.Context(), m.db.Read(), id)
	if err != nil || !s.Active {
		m.message(w, r, http.StatusNotFound, "appointments.error.no_service")
		return nil, false
	}
	return &s, true
}

func (m *Module) servicePlace(w http.ResponseWriter, r *http.Request) (*Service, *Place, bool) {
	s, ok := m.service(w, r)
	if !ok {
		return nil, nil, false
	}
	id, ok := pathID(r, "place")
	if !ok {
		m.message(w, r, http.StatusNotFound, "appointments.error.no_place")
		return nil, nil, false
	}
	p, err := m.Place(r.Context(), m.db.Read(), id)
	if err != nil || p.OrgID != s.OrgID {
		m.message(w, r, http.StatusNotFound, "appointments.error.no_place")
		return nil, nil, false
	}
	return s, &p, true
}

// units reads the number of persons/documents (?personnes=N), clamped to the service's max.
func units(r *http.Request, s *Service) int {
	n, _ := strconv.Atoi(r.FormValue("personnes"))
	if n < 1 {
		n = 1
	}
	if n > s.MaxUnits {
		n = s.MaxUnits
	}
	return n
}

func (m *Module) pagePlaces(w http.ResponseWriter, r *http.Request) {
	s, ok := m.service(w, r)
	if !ok {
		return
	}
	ps, err := m.Places(r.Context(), s.OrgID, s.ID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	var unitOpts []map[string]string
	for i := 1; i <= s.MaxUnits; i++ {
		unitOpts = append(unitOpts, map[string]string{"Value": strconv.Itoa(i), "Label": strconv.Itoa(i)})
	}
	f := web.NewForm(url.Values{"personnes": {strconv.Itoa(units(r, s))}})
	m.render(w, r, "places.html", "appointments.places.title", 0, f, map[string]any{"Service": s, "Places": ps, "Units": units(r, s),
		"UnitOptions": unitOpts, "Manage": r.FormValue("gerer"), "Paused": s.AntsReason != "" && m.AntsPaused(r.Context(), s.OrgID)})
}

type calDay struct {
	Day, Label string
	Free       int
	InMonth    bool
}

func (m *Module) pageCalendar(w http.ResponseWriter, r *http.Request) {
	s, p, ok := m.servicePlace(w, r)
	if !ok {
		return
	}
	n := units(r, s)
	now := m.now()
	earliest := now.Add(time.Duration(s.NoticeHours) * time.Hour)
	latest := now.AddDate(0, 0, s.WindowDays)
	month := earliest.In(m.loc)
	if v := r.FormValue("mois"); v != "" {
		t, err := time.ParseInLocation("2006-01", v, m.loc)
		if err != nil {
			m.message(w, r, http.StatusBadRequest, "appointments.error.date")
			return
		}
		month = t
	}
	first := time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, m.loc)
	next := first.AddDate(0, 1, 0)
	from, to := first, next
	if from.Before(earliest) {
		from = earliest
	}
	if to.After(latest) {
		to = latest
	}
	free := map[string]int{}
	if from.Before(to) {
		ss, err := m.Slots(r.Context(), SlotQuery{ServiceID: s.ID, PlaceID: p.ID, From: from, To: to, Units: n, FreeOnly: true})
		if err != nil {
			m.fail(w, r, err)
			return
		}
		for _, sl := range ss {
			free[sl.Day]++
		}
	}
	// Weeks from Monday, for a grid that degrades to a list of days.
	start := first.AddDate(0, 0, -((int(first.Weekday()) + 6) % 7))
	var weeks [][]calDay
	for d := start; d.Before(next); {
		var wk []calDay
		for i := 0; i < 7; i++ {
			day := d.Format(dayLayout)
			wk = append(wk, calDay{Day: day, Label: strconv.Itoa(d.Day()), Free: free[day], InMonth: d.Month() == first.Month()})
			d = d.AddDate(0, 0, 1)
		}
		weeks = append(weeks, wk)
	}
	data := map[string]any{"Service": s, "Place": p, "Units": n, "Weeks": weeks, "Month": web.FormatDate(m.lang(r), first)[3:],
		"Manage": r.FormValue("gerer"), "Any": len(free) > 0}
	if first.After(earliest) {
		data["Prev"] = first.AddDate(0, -1, 0).Format("2006-01")
	}
	if next.Before(latest) {
		data["Next"] = next.Format("2006-01")
	}
	m.render(w, r, "calendar.html", "appointments.calendar.title", 0, nil, data)
}

func (m *Module) timesData(r *http.Request, s *Service, p *Place, day string, n int) (map[string]any, error) {
	d, err := time.ParseInLocation(dayLayout, day, m.loc)
	if err != nil {
		return nil, errs.New(errs.NotFound, "appointments.error.date")
	}
	now := m.now()
	from, to := d, d.AddDate(0, 0, 1)
	if e := now.Add(time.Duration(s.NoticeHours) * time.Hour); from.Before(e) {
		from = e
	}
	if l := now.AddDate(0, 0, s.WindowDays); to.After(l) {
		to = l
	}
	var ss []Slot
	if from.Before(to) {
		if ss, err = m.Slots(r.Context(), SlotQuery{ServiceID: s.ID, PlaceID: p.ID, From: from, To: to, Units: n, FreeOnly: true}); err != nil {
			return nil, err
		}
	}
	var opts []map[string]string
	for _, sl := range ss {
		opts = append(opts, map[string]string{"Value": strconv.FormatInt(sl.ID, 10), "Label": sl.Start.In(m.loc).Format("15:04"),
			"Hint": m.i18n.T(m.lang(r), "appointments.times.free", "n", sl.Free())})
	}
	return map[string]any{"Service": s, "Place": p, "Day": day, "DayLabel": web.FormatDate(m.lang(r), d), "Units": n, "Options": opts,
		"Manage": r.FormValue("gerer")}, nil
}

func (m *Module) pageTimes(w http.ResponseWriter, r *http.Request) {
	s, p, ok := m.servicePlace(w, r)
	if !ok {
		return
	}
	data, err := m.timesData(r, s, p, r.PathValue("day"), units(r, s))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	f := web.NewForm(url.Values{"creneau": {r.FormValue("creneau")}})
	m.render(w, r, "times.html", "appointments.times.title", 0, f, data)
}

func (m *Module) postTime(w http.ResponseWriter, r *http.Request) {
	s, p, ok := m.servicePlace(w, r)
	if !ok {
		return
	}
	f, err := web.ParseForm(r)
	if err != nil {
		m.message(w, r, http.StatusRequestEntityTooLarge, "appointments.error.too_large")
		return
	}
	n := units(r, s)
	slotID, _ := strconv.ParseInt(f.Get("creneau"), 10, 64)
	var a *Appointment
	if slotID <= 0 {
		err = errs.OnField(errs.Invalid, "creneau", "appointments.error.choose_time")
	} else if sl, e := m.Slot(r.Context(), m.db.Read(), slotID); e != nil || sl.PlaceID != p.ID || sl.ServiceID != s.ID {
		err = errs.OnField(errs.Invalid, "creneau", "appointments.error.choose_time")
	} else if manage := f.Get("gerer"); manage != "" {
		a, err = m.Reschedule(r.Context(), manage, slotID)
		if err == nil {
			old, _ := m.ByToken(r.Context(), manage)
			if old != nil {
				a, err = m.SaveDetails(r.Context(), a.HoldToken, DetailsOf(old))
			}
			if err == nil {
				http.Redirect(w, r, "/rdv/reservation/"+a.HoldToken+"/recapitulatif", http.StatusSeeOther)
				return
			}
			if e, ok := errs.As(err); ok && a != nil && strings.HasPrefix(e.Field, questionPrefix) {
				// The service asks other questions since the booking (a form named
				// meanwhile): the citizen answers them on the new hold.
				http.Redirect(w, r, "/rdv/reservation/"+a.HoldToken, http.StatusSeeOther)
				return
			}
		}
	} else {
		a, err = m.Hold(r.Context(), HoldRequest{SlotID: slotID, ServiceID: s.ID, Units: n, Lang: m.lang(r)})
	}
	if err == nil {
		http.Redirect(w, r, "/rdv/reservation/"+a.HoldToken, http.StatusSeeOther)
		return
	}
	data, derr := m.timesData(r, s, p, r.PathValue("day"), n)
	if derr != nil {
		m.fail(w, r, derr)
		return
	}
	status := http.StatusBadRequest
	var full *SlotFullError
	if errors.As(err, &full) {
		status = http.StatusConflict
		f.Fail("creneau", keySlotFull)
		var near []map[string]string
		for _, sl := range full.Nearest {
			t := sl.Start.In(m.loc)
			near = append(near, map[string]string{"Href": "/rdv/demarche/" + strconv.FormatInt(s.ID, 10) + "/" + strconv.FormatInt(p.ID, 10) + "/" + sl.Day +
				"?creneau=" + strconv.FormatInt(sl.ID, 10) + "&personnes=" + strconv.Itoa(n), "Label": web.FormatDate(m.lang(r), t) + " " + t.Format("15:04")})
		}
		data["Nearest"] = near
	} else if e, ok := errs.As(err); ok && (e.Code == errs.Invalid || e.Code == errs.NotFound || e.Code == errs.Conflict) {
		status = web.StatusOf(err)
		f.Fail("creneau", e.Key, e.Args...)
	} else {
		m.fail(w, r, err)
		return
	}
	m.render(w, r, "times.html", "appointments.times.title", status, f, data)
}

func (m *Module) hold(w http.ResponseWriter, r *http.Request) (*Appointment, *Service, bool) {
	a, err := m.ByHoldToken(r.Context(), r.PathValue("token"))
	if err == nil && !a.HoldExpires.After(m.now()) {
		err = errs.New(errs.Conflict, keyHoldExpired)
	}
	if err != nil {
		key := keyHoldExpired
		if errs.CodeOf(err) == errs.NotFound {
			key = keyBadToken
		}
		m.message(w, r, http.StatusGone, key)
		return nil, nil, false
	}
	s, err := m.Service(r.Context(), m.db.Read(), a.ServiceID)
	if err != nil {
		m.fail(w, r, err)
		return nil, nil, false
	}
	return a, &s, true
}

// renderQuestions shows the questions page: the contact fields, then the service's form's
// questions (rendered by the forms module) or its inline list.
func (m *Module) renderQuestions(w http.ResponseWriter, r *http.Request, a *Appointment, s *Service, f *web.Form, status int) {
	data := map[string]any{"Appt": a, "Service": s, "Expires": a.HoldExpires.In(m.loc).Format("15:04"), "Ants": s.AntsReason != ""}
	html, err := m.formQuestionsHTML(r, s, f)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	if html != "" {
		data["FormQuestions"] = html
	}
	m.render(w, r, "questions.html", "appointments.questions.title", status, f, data)
}

func (m *Module) pageQuestions(w http.ResponseWriter, r *http.Request) {
	a, s, ok := m.hold(w, r)
	if !ok {
		return
	}
	if a.Email == "" && a.ReplacesID != 0 {
		// A reschedule sent here to answer the questions again: the contact details and
		// the answers still valid come from the appointment it replaces.
		if old, err := m.Appointment(r.Context(), a.ReplacesID); err == nil {
			a.Name, a.Email, a.Phone, a.AntsIDs, a.Answers = old.Name, old.Email, old.Phone, old.AntsIDs, old.Answers
		}
	}
	v := url.Values{"name": {a.Name}, "email": {a.Email}, "phone": {a.Phone}, "ants_ids": {strings.Join(a.AntsIDs, " ")}}
	if c := kernel.CitizenFrom(r.Context()); c != nil && a.Email == "" {
		v.Set("email", c.Email)
		v.Set("name", c.Name)
	}
	if err := m.questionValues(r.Context(), s, a.Answers, v); err != nil {
		m.fail(w, r, err)
		return
	}
	m.renderQuestions(w, r, a, s, web.NewForm(v), 0)
}

func (m *Module) postQuestions(w http.ResponseWriter, r *http.Request) {
	a, s, ok := m.hold(w, r)
	if !ok {
		return
	}
	f, err := web.ParseForm(r)
	if err != nil {
		m.message(w, r, http.StatusRequestEntityTooLarge, "appointments.error.too_large")
		return
	}
	d := Details{Name: f.Get("name"), Email: f.Get("email"), Phone: f.Get("phone"), AntsIDs: f.Get("ants_ids")}
	if c := kernel.CitizenFrom(r.Context()); c != nil {
		d.CitizenID = c.ID
	}
	answers, problems, err := m.parseAnswers(r.Context(), s, f)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	d.Answers = answers
	if len(problems) > 0 {
		// Every problem at once: the contact fields' first one (as SaveDetails would say
		// it), then the form's, in the page's order; nothing is stored.
		contact, dc := *s, d
		contact.Questions, contact.formCheck = nil, nil
		if e, ok := errs.As(checkDetails(&contact, &dc, a.Units)); ok && e.Field != "" {
			f.Fail(e.Field, e.Key, e.Args...)
		}
		f.Errors = append(f.Errors, problems...)
		m.renderQuestions(w, r, a, s, f, http.StatusBadRequest)
		return
	}
	if _, err := m.SaveDetails(r.Context(), a.HoldToken, d); err != nil {
		if e, ok := errs.As(err); ok && e.Field != "" {
			f.Fail(e.Field, e.Key, e.Args...)
			m.renderQuestions(w, r, a, s, f, web.StatusOf(err))
			return
		}
		m.fail(w, r, err)
		return
	}
	recap := "/rdv/reservation/" + a.HoldToken + "/recapitulatif"
	if m.verified(r, strings.ToLower(d.Email)) || m.guests == nil {
		http.Redirect(w, r, recap, http.StatusSeeOther)
		return
	}
	if err := m.guests.Start(r.Context(), d.Email, recap, m.lang(r)); err != nil {
		if e, ok := errs.As(err); ok {
			f.Fail("email", e.Key, e.Args...)
			m.renderQuestions(w, r, a, s, f, web.StatusOf(err))
			return
		}
		m.fail(w, r, err)
		return
	}
	m.render(w, r, "verify.html", "appointments.verify.title", 0, nil, map[string]any{"Email": d.Email, "Expires": a.HoldExpires.In(m.loc).Format("15:04")})
}

// verified reports whether the browser proved it owns email (signed in, or guest link).
func (m *Module) verified(r *http.Request, email string) bool {
	if c := kernel.CitizenFrom(r.Context()); c != nil && c.Verified && strings.EqualFold(c.Email, email) {
		return true
	}
	if m.guests != nil {
		if e, ok := m.guests.Verified(r); ok && strings.EqualFold(e, email) {
			return true
		}
	}
	return false
}

func (m *Module) recapData(r *http.Request, a *Appointment, s *Service) map[string]any {
	p, _ := m.Place(r.Context(), m.db.Read(), a.PlaceID)
	t := a.Start.In(m.loc)
	rows := []map[string]string{
		{"Key": m.i18n.T(m.lang(r), "appointments.field.service"), "Value": s.Name},
		{"Key": m.i18n.T(m.lang(r), "appointments.field.place"), "Value": p.Name + " – " + p.Address + ", " + p.ZipCode + " " + p.City},
		{"Key": m.i18n.T(m.lang(r), "appointments.field.when"), "Value": web.FormatDate(m.lang(r), t) + " " + t.Format("15:04")},
		{"Key": m.i18n.T(m.lang(r), "appointments.field.name"), "Value": a.Name, "Href": "/rdv/reservation/" + a.HoldToken, "Action": m.i18n.T(m.lang(r), "appointments.change")},
		{"Key": m.i18n.T(m.lang(r), "appointments.field.email"), "Value": a.Email, "Href": "/rdv/reservation/" + a.HoldToken, "Action": m.i18n.T(m.lang(r), "appointments.change")},
	}
	if a.Phone != "" {
		rows = append(rows, map[string]string{"Key": m.i18n.T(m.lang(r), "appointments.field.phone"), "Value": a.Phone})
	}
	if len(a.AntsIDs) > 0 {
		rows = append(rows, map[string]string{"Key": m.i18n.T(m.lang(r), "appointments.field.ants_ids"), "Value": strings.Join(a.AntsIDs, ", ")})
	}
	for _, l := range m.answerLines(r.Context(), s, a.Answers, m.lang(r)) {
		rows = append(rows, map[string]string{"Key": l.Label, "Value": l.Value, "Href": "/rdv/reservation/" + a.HoldToken + "#f-" + questionPrefix + l.Key,
			"Action": m.i18n.T(m.lang(r), "appointments.change")})
	}
	return map[string]any{"Appt": a, "Service": s, "Place": p, "Rows": rows, "Expires": a.HoldExpires.In(m.loc).Format("15:04")}
}

func (m *Module) pageRecap(w http.ResponseWriter, r *http.Request) {
	a, s, ok := m.hold(w, r)
	if !ok {
		return
	}
	if a.Email == "" {
		http.Redirect(w, r, "/rdv/reservation/"+a.HoldToken, http.StatusSeeOther)
		return
	}
	m.render(w, r, "recap.html", "appointments.recap.title", 0, nil, m.recapData(r, a, s))
}

func (m *Module) postConfirm(w http.ResponseWriter, r *http.Request) {
	a, s, ok := m.hold(w, r)
	if !ok {
		return
	}
	// A reschedule is authorised by the manage link; a new booking by a verified email.
	if a.ReplacesID == 0 && !m.verified(r, a.Email) {
		m.message(w, r, http.StatusForbidden, "appointments.error.unverified")
		return
	}
	d := Details{Name: a.Name, Email: a.Email, Phone: a.Phone, Answers: a.Answers, AntsIDs: strings.Join(a.AntsIDs, " "), CitizenID: a.CitizenID}
	if c := kernel.CitizenFrom(r.Context()); c != nil && c.ID != 0 {
		d.CitizenID = c.ID
	}
	done, err := m.Confirm(r.Context(), a.HoldToken, d)
	if err != nil {
		if e, ok := errs.As(err); ok {
			data := m.recapData(r, a, s)
			data["Error"] = m.i18n.T(m.lang(r), e.Key, e.Args...)
			m.render(w, r, "recap.html", "appointments.recap.title", web.StatusOf(err), nil, data)
			return
		}
		m.fail(w, r, err)
		return
	}
	data := m.recapData(r, done, s)
	// The hold link is spent: no "change" links on the confirmation.
	for _, row := range data["Rows"].([]map[string]string) {
		delete(row, "Href")
		delete(row, "Action")
	}
	data["Links"] = m.links(done, done.CancelToken, done.ManageToken)
	m.render(w, r, "confirmed.html", "appointments.confirmed.title", 0, nil, data)
}

func (m *Module) byToken(w http.ResponseWriter, r *http.Request) (*Appointment, bool) {
	a, err := m.ByToken(r.Context(), r.PathValue("token"))
	if err != nil {
		m.message(w, r, http.StatusNotFound, keyBadToken)
		return nil, false
	}
	return a, true
}

func (m *Module) pageCancel(w http.ResponseWriter, r *http.Request) {
	a, ok := m.byToken(w, r)
	if !ok {
		return
	}
	t := a.Start.In(m.loc)
	m.render(w, r, "cancel.html", "appointments.cancel.title", 0, nil, map[string]any{"Appt": a, "When": web.FormatDate(m.lang(r), t) + " " + t.Format("15:04")})
}

func (m *Module) postCancel(w http.ResponseWriter, r *http.Request) {
	if _, err := m.Cancel(r.Context(), r.PathValue("token"), ""); err != nil {
		if errs.CodeOf(err) == errs.NotFound {
			m.message(w, r, http.StatusNotFound, keyBadToken)
			return
		}
		m.fail(w, r, err)
		return
	}
	m.message(w, r, http.StatusOK, "appointments.cancel.done")
}

func (m *Module) pageManage(w http.ResponseWriter, r *http.Request) {
	a, ok := m.byToken(w, r)
	if !ok {
		return
	}
	t := a.Start.In(m.loc)
	m.render(w, r, "manage.html", "appointments.manage.title", 0, nil, map[string]any{"Appt": a, "Token": r.PathValue("token"),
		"When": web.FormatDate(m.lang(r), t) + " " + t.Format("15:04")})
}

func (m *Module) pageFind(w http.ResponseWriter, r *http.Request) {
	f := web.NewForm(url.Values{"reference": {r.FormValue("reference")}})
	m.render(w, r, "find.html", "appointments.find.title", 0, f, nil)
}

// postFind mails fresh capability links for a reference to the address it was booked with
// (the old links stop working); it answers the same whether or not they match.
func (m *Module) postFind(w http.ResponseWriter, r *http.Request) {
	f, err := web.ParseForm(r)
	if err != nil {
		m.message(w, r, http.StatusRequestEntityTooLarge, "appointments.error.too_large")
		return
	}
	f.Require("reference", "email")
	if !f.Valid() {
		m.render(w, r, "find.html", "appointments.find.title", http.StatusBadRequest, f, nil)
		return
	}
	a, err := m.apptWhere(r.Context(), m.db.Read(), `a.ref = ? AND a.email = ? AND a.status = 'confirmed'`, strings.ToUpper(f.Get("reference")), strings.ToLower(f.Get("email")))
	if err == nil {
		err = m.resendLinks(r.Context(), a)
	}
	if err != nil && errs.CodeOf(err) != errs.NotFound {
		m.fail(w, r, err)
		return
	}
	m.message(w, r, http.StatusOK, "appointments.find.sent")
}

func (m *Module) pageMine(w http.ResponseWriter, r *http.Request) {
	c := kernel.CitizenFrom(r.Context())
	if c == nil || c.ID == 0 {
		http.Redirect(w, r, "/compte/connexion?next="+url.QueryEscape("/compte/rendez-vous"), http.StatusSeeOther)
		return
	}
	list, err := m.ByCitizen(r.Context(), c.ID, c.Email)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	type row struct {
		A    *Appointment
		When string
		Past bool
	}
	var rows []row
	for _, a := range list {
		t := a.Start.In(m.loc)
		rows = append(rows, row{A: a, When: web.FormatDate(m.lang(r), t) + " " + t.Format("15:04"), Past: a.Start.Before(m.now())})
	}
	m.render(w, r, "mine.html", "appointments.mine.title", 0, nil, map[string]any{"Rows": rows})
}
