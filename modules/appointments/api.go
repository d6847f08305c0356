package appointments

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/web"
)

// apiError is the JSON body of every error: {code, message}, with distinct codes for a full
// slot (and the nearest free starts), a refused rule and invalid input.
type apiError struct {
	Code    string     `json:"code"`
	Message string     `json:"message"`
	Field   string     `json:"field,omitempty"`
	Nearest []slotJSON `json:"nearest,omitempty"`
}

type slotJSON struct {
	ID    int64  `json:"id"`
	Start string `json:"start"`
	End   string `json:"end"`
	Free  int    `json:"free"`
}

func (m *Module) slotJSON(s Slot) slotJSON {
	return slotJSON{ID: s.ID, Start: s.Start.In(m.loc).Format(time.RFC3339), End: s.End.In(m.loc).Format(time.RFC3339), Free: s.Free()}
}

func (m *Module) lang(r *http.Request) string {
	if m.views != nil && m.views.Lang != nil {
		return m.views.Lang(r)
	}
	return "fr"
}

// APICode maps a domain error to the API's code and HTTP status.
func APICode(err error) (string, int) {
	var full *SlotFullError
	if errors.As(err, &full) {
		return "slot_full", http.StatusConflict
	}
	e, ok := errs.As(err)
	if !ok {
		return "internal", http.StatusInternalServerError
	}
	switch {
	case strings.HasPrefix(e.Key, rulePrefix):
		return "rule_refused", http.StatusConflict
	case e.Key == keyHoldExpired:
		return "hold_expired", http.StatusConflict
	case e.Key == keyAntsDown:
		return "ants_unavailable", http.StatusServiceUnavailable
	case e.Code == errs.Invalid:
		return "invalid_input", http.StatusBadRequest
	case e.Code == errs.NotFound:
		return "not_found", http.StatusNotFound
	case e.Code == errs.Conflict:
		return "conflict", http.StatusConflict
	}
	return string(e.Code), web.StatusOf(err)
}

func (m *Module) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	code, status := APICode(err)
	if status == http.StatusInternalServerError {
		m.log.Error("appointments api", "path", r.URL.Path, "err", err)
		web.WriteJSON(w, status, apiError{Code: "internal", Message: "internal error"})
		return
	}
	out := apiError{Code: code}
	var full *SlotFullError
	if errors.As(err, &full) {
		out.Message = m.i18n.T(m.lang(r), keySlotFull)
		for _, s := range full.Nearest {
			out.Nearest = append(out.Nearest, m.slotJSON(s))
		}
	} else if e, ok := errs.As(err); ok {
		out.Message, out.Field = m.i18n.T(m.lang(r), e.Key, e.Args...), e.Field
	}
	web.WriteJSON(w, status, out)
}

func orgOf(r *http.Request, m *Module) int64 {
	if a := kernel.AgentFrom(r.Context()); a != nil {
		return a.OrgID
	}
	if v := r.URL.Query().Get("org"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	var org int64
	_ = m.db.Read().QueryRowContext(r.Context(), `SELECT COALESCE(MIN(org_id), 0) FROM appt_services`).Scan(&org)
	return org
}

type serviceJSON struct {
	Service
	Category      string  `json:"category"`
	MeetingPoints []Place `json:"meeting_points"`
}

// listAppointmentServices
func (m *Module) apiServices(w http.ResponseWriter, r *http.Request) {
	org := orgOf(r, m)
	cats, err := m.Categories(r.Context(), org)
	if err != nil {
		m.apiFail(w, r, err)
		return
	}
	names := map[int64]string{}
	for _, c := range cats {
		names[c.ID] = c.Name
	}
	svcs, err := m.Services(r.Context(), org, true)
	if err != nil {
		m.apiFail(w, r, err)
		return
	}
	out := []serviceJSON{}
	for _, s := range svcs {
		ps, err := m.Places(r.Context(), org, s.ID)
		if err != nil {
			m.apiFail(w, r, err)
			return
		}
		if ps == nil {
			ps = []Place{}
		}
		if s.Questions == nil {
			s.Questions = []Question{}
		}
		out = append(out, serviceJSON{Service: s, Category: names[s.CategoryID], MeetingPoints: ps})
	}
	web.WriteJSON(w, http.StatusOK, out)
}

func qInt(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		if def < 0 {
			return 0, errs.OnField(errs.Invalid, name, "appointments.error.required")
		}
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errs.OnField(errs.Invalid, name, "appointments.error.number")
	}
	return n, nil
}

// listAvailableSlots
func (m *Module) apiSlots(w http.ResponseWriter, r *http.Request) {
	svcID, err := qInt(r, "service_id", -1)
	if err != nil {
		m.apiFail(w, r, err)
		return
	}
	placeID, err := qInt(r, "meeting_point_id", -1)
	if err != nil {
		m.apiFail(w, r, err)
		return
	}
	units, err := qInt(r, "units", 1)
	if err != nil {
		m.apiFail(w, r, err)
		return
	}
	from, to, err := m.period(r.URL.Query().Get("from"), r.URL.Query().Get("to"))
	if err != nil {
		m.apiFail(w, r, err)
		return
	}
	svc, err := m.cachedService(r.Context(), svcID)
	if err != nil {
		m.apiFail(w, r, err)
		return
	}
	body, err := m.cachedAnswer("slots|"+r.URL.RawQuery, func() ([]byte, error) {
		now := m.now()
		if e := now.Add(time.Duration(svc.NoticeHours) * time.Hour); from.Before(e) {
			from = e
		}
		if l := now.AddDate(0, 0, svc.WindowDays); to.After(l) {
			to = l
		}
		out := []slotJSON{}
		if from.Before(to) {
			ss, err := m.Slots(r.Context(), SlotQuery{ServiceID: svcID, PlaceID: placeID, From: from, To: to, Units: int(units), FreeOnly: true})
			if err != nil {
				return nil, err
			}
			for _, s := range ss {
				out = append(out, m.slotJSON(s))
			}
		}
		b, err := json.Marshal(out)
		return append(b, '\n'), err
	})
	if err != nil {
		m.apiFail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// period reads from/to days (to inclusive); defaults to the next 14 days.
func (m *Module) period(f, t string) (time.Time, time.Time, error) {
	today := m.now().In(m.loc)
	from := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, m.loc)
	to := from.AddDate(0, 0, 14)
	var err error
	if f != "" {
		if from, err = time.ParseInLocation(dayLayout, f, m.loc); err != nil {
			return from, to, errs.OnField(errs.Invalid, "from", "appointments.error.date")
		}
		to = from.AddDate(0, 0, 14)
	}
	if t != "" {
		if to, err = time.ParseInLocation(dayLayout, t, m.loc); err != nil {
			return from, to, errs.OnField(errs.Invalid, "to", "appointments.error.date")
		}
		to = to.AddDate(0, 0, 1)
	}
	if !from.Before(to) || to.Sub(from) > 370*24*time.Hour {
		return from, to, errs.OnField(errs.Invalid, "to", "appointments.error.date_order")
	}
	return from, to, nil
}

type createJSON struct {
	SlotID   int64             `json:"slot_id"`
	Units    int               `json:"units"`
	Name     string            `json:"name"`
	Email    string            `json:"email"`
	Phone    string            `json:"phone"`
	Answers  map[string]string `json:"answers"`
	AntsIDs  []string          `json:"ants_application_ids"`
	Lang     string            `json:"lang"`
	Overbook bool              `json:"overbook"`
}

type bookedJSON struct {
	*Appointment
	CancelToken string `json:"cancel_token,omitempty"`
	ManageToken string `json:"manage_token,omitempty"`
	CancelURL   string `json:"cancel_url,omitempty"`
	ManageURL   string `json:"manage_url,omitempty"`
}

// createAppointment: hold and confirm in one call, same rules as the web.
func (m *Module) apiCreate(w http.ResponseWriter, r *http.Request) {
	var in createJSON
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	if in.SlotID <= 0 {
		m.apiFail(w, r, errs.OnField(errs.Invalid, "slot_id", "appointments.error.required"))
		return
	}
	agent := kernel.AgentFrom(r.Context())
	if in.Overbook && (agent == nil || !m.auth.Can(r.Context(), agent, PermOverbook, nil)) {
		m.apiFail(w, r, errs.OnField(errs.Forbidden, "overbook", "appointments.error.overbook"))
		return
	}
	if agent == nil {
		m.apiFail(w, r, errs.OnField(errs.NotFound, "slot_id", "appointments.error.no_slot"))
		return
	}
	d := Details{Email: in.Email, Phone: in.Phone, Name: in.Name, Answers: in.Answers, AntsIDs: strings.Join(in.AntsIDs, " ")}
	if in.Overbook {
		d.AgentID = agent.ID
	}
	a, err := m.Book(r.Context(), HoldRequest{SlotID: in.SlotID, OrgID: agent.OrgID, Units: in.Units, Overbook: in.Overbook, Lang: in.Lang}, d)
	if err != nil {
		m.apiFail(w, r, err)
		return
	}
	links := m.links(a, a.CancelToken, a.ManageToken)
	web.WriteJSON(w, http.StatusCreated, bookedJSON{Appointment: a, CancelToken: a.CancelToken, ManageToken: a.ManageToken,
		CancelURL: links["Cancel"], ManageURL: links["Manage"]})
}

// bearer is the capability token an API client sends for an appointment.
func bearer(r *http.Request) string {
	return strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
}

func (m *Module) apiByToken(w http.ResponseWriter, r *http.Request) (*Appointment, bool) {
	a, err := m.ByToken(r.Context(), bearer(r))
	if err != nil || a.Ref != r.PathValue("ref") {
		// Same answer for a forged token, a used one and another appointment's.
		m.apiFail(w, r, errs.New(errs.NotFound, keyBadToken))
		return nil, false
	}
	return a, true
}

// getAppointment
func (m *Module) apiGet(w http.ResponseWriter, r *http.Request) {
	if a, ok := m.apiByToken(w, r); ok {
		web.WriteJSON(w, http.StatusOK, a)
	}
}

// cancelAppointment
func (m *Module) apiCancel(w http.ResponseWriter, r *http.Request) {
	a, ok := m.apiByToken(w, r)
	if !ok {
		return
	}
	var in struct {
		Message string `json:"message"`
	}
	if r.ContentLength > 0 && !web.DecodeJSON(w, r, &in) {
		return
	}
	if err := m.cancel(r.Context(), a, in.Message, 0); err != nil {
		m.apiFail(w, r, err)
		return
	}
	web.WriteJSON(w, http.StatusOK, a)
}

// rescheduleAppointment: holds the new slot and confirms it with the same details; the old
// appointment is released in the same transaction.
func (m *Module) apiReschedule(w http.ResponseWriter, r *http.Request) {
	old, ok := m.apiByToken(w, r)
	if !ok {
		return
	}
	var in struct {
		SlotID int64 `json:"slot_id"`
	}
	if !web.DecodeJSON(w, r, &in) {
		return
	}
	if old.Status != StatusConfirmed {
		m.apiFail(w, r, errs.New(errs.Conflict, "appointments.error.already_cancelled"))
		return
	}
	a, err := m.Book(r.Context(), HoldRequest{SlotID: in.SlotID, ServiceID: old.ServiceID, Units: old.Units, ReplacesID: old.ID, Lang: old.Lang}, DetailsOf(old))
	if err != nil {
		m.apiFail(w, r, err)
		return
	}
	links := m.links(a, a.CancelToken, a.ManageToken)
	web.WriteJSON(w, http.StatusOK, bookedJSON{Appointment: a, CancelToken: a.CancelToken, ManageToken: a.ManageToken,
		CancelURL: links["Cancel"], ManageURL: links["Manage"]})
}

func (m *Module) apiOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDoc)
}
