package suites

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/modules/appointments"
)

// Adapters over the appointments module's Go API: meeting points, and appointment services
// with their weekly schedules at those meeting points. Secrets (ANTS and SMS tokens) are
// settings a town enters itself: a service says only which ANTS reason it serves, and stays
// off the national hub until the tokens are set.

// weekdays name the days of a schedule, in the order of time.Weekday.
var weekdays = [7]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

const clockPattern = `^([01][0-9]|2[0-3]):[0-5][0-9]$`

func rangesSchema() map[string]any {
	clock := map[string]any{"type": "string", "pattern": clockPattern}
	return arrayOf(map[string]any{"type": "object", "required": []string{"start", "end"}, "additionalProperties": false,
		"properties": map[string]any{"start": clock, "end": clock}})
}

// ---- meeting_points

type meetingPointsSection struct {
	m *Module
	a *appointments.Module
}

type placeItem struct {
	Name          string  `json:"name"`
	Address       string  `json:"address,omitempty"`
	ZipCode       string  `json:"zip_code,omitempty"`
	City          string  `json:"city,omitempty"`
	Latitude      float64 `json:"latitude,omitempty"`
	Longitude     float64 `json:"longitude,omitempty"`
	Access        string  `json:"access,omitempty"`
	Accessibility string  `json:"accessibility,omitempty"`
	Website       string  `json:"website,omitempty"`
	Unit          string  `json:"unit,omitempty"`
	// Active is written only when false: a closed meeting point.
	Active *bool `json:"active,omitempty"`
}

func (s *meetingPointsSection) Key() string     { return "meeting_points" }
func (s *meetingPointsSection) Module() string  { return appointments.ID }
func (s *meetingPointsSection) Order() int      { return 52 }
func (s *meetingPointsSection) Needs() []string { return []string{"units"} }
func (s *meetingPointsSection) Schema() map[string]any {
	return object([]string{"name"}, map[string]any{
		"name": nonEmpty(), "address": str(), "zip_code": map[string]any{"type": "string", "pattern": `^[0-9]{5}$`}, "city": str(),
		"latitude":  map[string]any{"type": "number", "minimum": -90, "maximum": 90},
		"longitude": map[string]any{"type": "number", "minimum": -180, "maximum": 180},
		"access":    str(), "accessibility": str(), "website": str(), "unit": keyRef(), "active": boolean(),
	})
}

func (s *meetingPointsSection) Refs(it Item) []Ref {
	if k, _ := it.Data["unit"].(string); k != "" {
		return []Ref{{Section: "units", Key: k, Path: "unit"}}
	}
	return nil
}

func (s *meetingPointsSection) Check([]Item, map[string][]Item) []Problem { return nil }

func nameIdent(name string) string { return "name:" + strings.ToLower(strings.TrimSpace(name)) }

func (s *meetingPointsSection) Ident(_ context.Context, _ int64, it Item, _ Resolver) string {
	name, _ := it.Data["name"].(string)
	return nameIdent(name)
}

func (s *meetingPointsSection) List(ctx context.Context, org int64) ([]Resource, error) {
	list, err := s.a.Places(ctx, org, 0)
	if err != nil {
		return nil, err
	}
	out := make([]Resource, len(list))
	for i, p := range list {
		out[i] = Resource{ID: idStr(p.ID), Key: slug(p.Name), Ident: nameIdent(p.Name)}
	}
	return out, nil
}

func (s *meetingPointsSection) place(ctx context.Context, org int64, id string) (appointments.Place, error) {
	p, err := s.a.Place(ctx, s.m.db.Read(), id64(id))
	if err == nil && p.OrgID != org {
		err = errs.New(errs.NotFound, "appointments.error.no_place")
	}
	return p, err
}

func (s *meetingPointsSection) Read(ctx context.Context, org int64, id string, r Resolver) (map[string]any, error) {
	p, err := s.place(ctx, org, id)
	if err != nil {
		return nil, err
	}
	it := placeItem{Name: p.Name, Address: p.Address, ZipCode: p.ZipCode, City: p.City, Latitude: p.Latitude, Longitude: p.Longitude,
		Access: p.Access, Accessibility: p.Accessibility, Website: p.Website, Unit: keyOf(r, "units", p.UnitID)}
	if !p.Active {
		it.Active = new(bool)
	}
	return Normalize(it), nil
}

func (s *meetingPointsSection) Write(ctx context.Context, org int64, id string, it Item, r Resolver) (string, error) {
	var v placeItem
	if err := it.Decode(&v); err != nil {
		return "", err
	}
	unit, err := refID(r, "units", v.Unit)
	if err != nil {
		return "", err
	}
	p := appointments.Place{OrgID: org}
	if id != "" {
		if p, err = s.place(ctx, org, id); err != nil {
			return "", err
		}
	}
	p.Name, p.Address, p.ZipCode, p.City, p.Latitude, p.Longitude = v.Name, v.Address, v.ZipCode, v.City, v.Latitude, v.Longitude
	p.Access, p.Accessibility, p.Website, p.UnitID = v.Access, v.Accessibility, v.Website, unit
	p.Active = v.Active == nil || *v.Active
	pid, err := s.a.SavePlace(ctx, p)
	if err != nil {
		return "", err
	}
	if id == "" && !p.Active { // created active: close it as asked
		p.ID = pid
		if _, err := s.a.SavePlace(ctx, p); err != nil {
			return "", err
		}
	}
	return idStr(pid), nil
}

// ---- appointment_services

type servicesSection struct {
	m *Module
	a *appointments.Module
}

type serviceItem struct {
	Name        string `json:"name"`
	Category    string `json:"category,omitempty"` // by name, created when missing
	Description string `json:"description,omitempty"`
	WhatToBring string `json:"what_to_bring,omitempty"`
	// Need groups services for the one-booking-per-person rule ("titres").
	Need string `json:"need,omitempty"`
	// AntsReason: CNI, PASSPORT or CNI-PASSPORT for services declared to the national ANTS
	// hub once the town has entered its tokens.
	AntsReason          string                  `json:"ants_reason,omitempty"`
	SlotsPerUnit        int                     `json:"slots_per_unit,omitempty"`
	MaxUnits            int                     `json:"max_units,omitempty"`
	NoticeHours         int                     `json:"notice_hours,omitempty"`
	WindowDays          int                     `json:"window_days,omitempty"`
	HoldMinutes         int                     `json:"hold_minutes,omitempty"`
	MaxUpcoming         int                     `json:"max_upcoming,omitempty"`
	MaxUpcomingCategory int                     `json:"max_upcoming_category,omitempty"`
	MinGapDays          int                     `json:"min_gap_days,omitempty"`
	ReminderHours       int                     `json:"reminder_hours,omitempty"`
	Questions           []appointments.Question `json:"questions,omitempty"`
	// Form is the key of a form of the forms section whose questions the service asks
	// instead of Questions.
	Form      string     `json:"form,omitempty"`
	Unit      string     `json:"unit,omitempty"`
	Active    *bool      `json:"active,omitempty"`
	Schedules []schedule `json:"schedules,omitempty"`
}

// schedule is a weekly opening schedule of the service at a meeting point.
type schedule struct {
	MeetingPoint string                          `json:"meeting_point"`
	ValidFrom    string                          `json:"valid_from"`
	ValidTo      string                          `json:"valid_to"`
	SlotMinutes  int                             `json:"slot_minutes"`
	Capacity     int                             `json:"capacity"`
	Days         map[string][]appointments.Range `json:"days"`
	Breaks       []appointments.Range            `json:"breaks,omitempty"`
}

func (s *servicesSection) Key() string     { return "appointment_services" }
func (s *servicesSection) Module() string  { return appointments.ID }
func (s *servicesSection) Order() int      { return 54 }
func (s *servicesSection) Needs() []string { return []string{"units", "meeting_points", "forms"} }
func (s *servicesSection) Schema() map[string]any {
	count := func(min, max int) map[string]any {
		return map[string]any{"type": "integer", "minimum": min, "maximum": max}
	}
	days := map[string]any{}
	for _, d := range weekdays {
		days[d] = rangesSchema()
	}
	date := map[string]any{"type": "string", "pattern": `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`}
	return object([]string{"name"}, map[string]any{
		"name": nonEmpty(), "category": str(), "description": str(), "what_to_bring": str(), "need": str(),
		"ants_reason":    enum("CNI", "PASSPORT", "CNI-PASSPORT"),
		"slots_per_unit": count(1, 20), "max_units": count(1, 20), "notice_hours": count(0, 24*365), "window_days": count(1, 730),
		"hold_minutes": count(1, 120), "max_upcoming": count(0, 100), "max_upcoming_category": count(0, 100),
		"min_gap_days": count(0, 3650), "reminder_hours": count(0, 24*30),
		"questions": arrayOf(map[string]any{"type": "object", "required": []string{"key", "label", "kind"}, "additionalProperties": false,
			"properties": map[string]any{"key": keyRef(), "label": nonEmpty(), "kind": enum("text", "choice"),
				"choices": arrayOf(nonEmpty()), "required": boolean()}}),
		"form": keyRef(), "unit": keyRef(), "active": boolean(),
		"schedules": arrayOf(map[string]any{"type": "object", "additionalProperties": false,
			"required": []string{"meeting_point", "valid_from", "valid_to", "slot_minutes", "capacity", "days"},
			"properties": map[string]any{"meeting_point": keyRef(), "valid_from": date, "valid_to": date,
				"slot_minutes": count(5, 480), "capacity": count(1, 10000),
				"days":   map[string]any{"type": "object", "additionalProperties": false, "properties": days},
				"breaks": rangesSchema()}}),
	})
}

func (s *servicesSection) Refs(it Item) []Ref {
	var out []Ref
	if k, _ := it.Data["unit"].(string); k != "" {
		out = append(out, Ref{Section: "units", Key: k, Path: "unit"})
	}
	if k, _ := it.Data["form"].(string); k != "" {
		out = append(out, Ref{Section: "forms", Key: k, Path: "form"})
	}
	scheds, _ := it.Data["schedules"].([]any)
	for i, x := range scheds {
		if sc, ok := x.(map[string]any); ok {
			if k, _ := sc["meeting_point"].(string); k != "" {
				out = append(out, Ref{Section: "meeting_points", Key: k, Path: fmt.Sprintf("schedules[%d].meeting_point", i)})
			}
		}
	}
	return out
}

func clockMinutes(s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	return t.Hour()*60 + t.Minute(), err == nil
}

// rangeProblems checks the ranges of a day: each starts before it ends, none overlaps another.
func rangeProblems(path string, rs []appointments.Range) []Problem {
	var ps []Problem
	for i, r := range rs {
		p := fmt.Sprintf("%s[%d]", path, i)
		a, ok1 := clockMinutes(r.Start)
		b, ok2 := clockMinutes(r.End)
		if !ok1 || !ok2 || b <= a {
			ps = append(ps, Problem{Path: p + ".end", Key: "suites.error.range_order", Args: []any{"start", r.Start, "end", r.End}})
			continue
		}
		for j, o := range rs[:i] {
			c, _ := clockMinutes(o.Start)
			d, _ := clockMinutes(o.End)
			if a < d && c < b {
				ps = append(ps, Problem{Path: p, Key: "suites.error.range_overlap", Args: []any{"other", fmt.Sprintf("%s[%d]", path, j)}})
			}
		}
	}
	return ps
}

// Check refuses what the appointments module would refuse half-way through an apply:
// reversed or overlapping opening ranges, and two schedules of the service at the same
// meeting point whose periods overlap.
func (s *servicesSection) Check(items []Item, _ map[string][]Item) []Problem {
	var ps []Problem
	for _, it := range items {
		var v serviceItem
		if err := it.Decode(&v); err != nil {
			ps = append(ps, Problem{Path: it.Path, Key: "suites.error.schema", Args: []any{"detail", err.Error()}})
			continue
		}
		for i, q := range v.Questions {
			if q.Kind == "choice" && len(q.Choices) == 0 {
				ps = append(ps, Problem{Path: fmt.Sprintf("%s.questions[%d].choices", it.Path, i), Key: "suites.error.choices"})
			}
		}
		for i, sc := range v.Schedules {
			sp := fmt.Sprintf("%s.schedules[%d]", it.Path, i)
			from, err1 := time.Parse("2006-01-02", sc.ValidFrom)
			to, err2 := time.Parse("2006-01-02", sc.ValidTo)
			switch {
			case err1 != nil:
				ps = append(ps, Problem{Path: sp + ".valid_from", Key: "suites.error.date", Args: []any{"value", sc.ValidFrom}})
				continue
			case err2 != nil:
				ps = append(ps, Problem{Path: sp + ".valid_to", Key: "suites.error.date", Args: []any{"value", sc.ValidTo}})
				continue
			case to.Before(from):
				ps = append(ps, Problem{Path: sp + ".valid_to", Key: "suites.error.date_order"})
				continue
			}
			for _, d := range weekdays {
				ps = append(ps, rangeProblems(sp+".days."+d, sc.Days[d])...)
			}
			ps = append(ps, rangeProblems(sp+".breaks", sc.Breaks)...)
			for j, o := range v.Schedules[:i] {
				if o.MeetingPoint == sc.MeetingPoint && o.ValidFrom <= sc.ValidTo && sc.ValidFrom <= o.ValidTo {
					ps = append(ps, Problem{Path: sp + ".valid_from", Key: "suites.error.schedule_overlap",
						Args: []any{"other", fmt.Sprintf("%s.schedules[%d]", it.Path, j), "meeting_point", sc.MeetingPoint}})
				}
			}
		}
	}
	return ps
}

func (s *servicesSection) Ident(_ context.Context, _ int64, it Item, _ Resolver) string {
	name, _ := it.Data["name"].(string)
	return nameIdent(name)
}

func (s *servicesSection) List(ctx context.Context, org int64) ([]Resource, error) {
	list, err := s.a.Services(ctx, org, false)
	if err != nil {
		return nil, err
	}
	out := make([]Resource, len(list))
	for i, sv := range list {
		out[i] = Resource{ID: idStr(sv.ID), Key: slug(sv.Name), Ident: nameIdent(sv.Name)}
	}
	return out, nil
}

func (s *servicesSection) service(ctx context.Context, org int64, id string) (appointments.Service, error) {
	sv, err := s.a.Service(ctx, s.m.db.Read(), id64(id))
	if err == nil && sv.OrgID != org {
		err = errs.New(errs.NotFound, "appointments.error.no_service")
	}
	return sv, err
}

func (s *servicesSection) Read(ctx context.Context, org int64, id string, r Resolver) (map[string]any, error) {
	sv, err := s.service(ctx, org, id)
	if err != nil {
		return nil, err
	}
	v := serviceItem{Name: sv.Name, Description: sv.Description, WhatToBring: sv.Bring, Need: sv.Need, AntsReason: sv.AntsReason,
		SlotsPerUnit: sv.SlotsPerUnit, MaxUnits: sv.MaxUnits, NoticeHours: sv.NoticeHours, WindowDays: sv.WindowDays,
		HoldMinutes: sv.HoldMinutes, MaxUpcoming: sv.MaxUpcoming, MaxUpcomingCategory: sv.MaxUpcomingCategory,
		MinGapDays: sv.MinGapDays, ReminderHours: sv.ReminderHours, Questions: sv.Questions, Unit: keyOf(r, "units", sv.UnitID)}
	if sv.FormKey != "" {
		// A form's resource id is its key; one no suite knows keeps its own key.
		if v.Form = r.Key("forms", sv.FormKey); v.Form == "" {
			v.Form = sv.FormKey
		}
	}
	if !sv.Active {
		v.Active = new(bool)
	}
	if sv.CategoryID != 0 {
		cats, err := s.a.Categories(ctx, org)
		if err != nil {
			return nil, err
		}
		for _, c := range cats {
			if c.ID == sv.CategoryID {
				v.Category = c.Name
			}
		}
	}
	places, err := s.a.Places(ctx, org, sv.ID)
	if err != nil {
		return nil, err
	}
	for _, p := range places {
		tpls, err := s.a.Templates(ctx, p.ID, sv.ID)
		if err != nil {
			return nil, err
		}
		for _, t := range tpls {
			sc := schedule{MeetingPoint: keyOf(r, "meeting_points", p.ID), ValidFrom: t.ValidFrom, ValidTo: t.ValidTo,
				SlotMinutes: t.SlotMinutes, Capacity: t.Capacity, Days: map[string][]appointments.Range{}, Breaks: t.Breaks}
			for d, rs := range t.Days {
				if len(rs) > 0 {
					sc.Days[weekdays[d]] = rs
				}
			}
			v.Schedules = append(v.Schedules, sc)
		}
	}
	sort.SliceStable(v.Schedules, func(a, b int) bool {
		x, y := v.Schedules[a], v.Schedules[b]
		return x.MeetingPoint < y.MeetingPoint || x.MeetingPoint == y.MeetingPoint && x.ValidFrom < y.ValidFrom
	})
	return Normalize(v), nil
}

// category finds a category by name, creating it when missing.
func (s *servicesSection) category(ctx context.Context, org int64, name string) (int64, error) {
	if name == "" {
		return 0, nil
	}
	cats, err := s.a.Categories(ctx, org)
	if err != nil {
		return 0, err
	}
	for _, c := range cats {
		if c.Name == name {
			return c.ID, nil
		}
	}
	return s.a.CreateCategory(ctx, appointments.Category{OrgID: org, Name: name, Position: len(cats)})
}

func (s *servicesSection) Write(ctx context.Context, org int64, id string, it Item, r Resolver) (string, error) {
	var v serviceItem
	if err := it.Decode(&v); err != nil {
		return "", err
	}
	unit, err := refID(r, "units", v.Unit)
	if err != nil {
		return "", err
	}
	sv := appointments.Service{OrgID: org}
	if id != "" {
		if sv, err = s.service(ctx, org, id); err != nil {
			return "", err
		}
	}
	if sv.CategoryID, err = s.category(ctx, org, v.Category); err != nil {
		return "", err
	}
	sv.Name, sv.Description, sv.Bring, sv.Need, sv.AntsReason = v.Name, v.Description, v.WhatToBring, v.Need, v.AntsReason
	sv.SlotsPerUnit, sv.MaxUnits, sv.NoticeHours, sv.WindowDays, sv.HoldMinutes = v.SlotsPerUnit, v.MaxUnits, v.NoticeHours, v.WindowDays, v.HoldMinutes
	sv.MaxUpcoming, sv.MaxUpcomingCategory, sv.MinGapDays, sv.ReminderHours = v.MaxUpcoming, v.MaxUpcomingCategory, v.MinGapDays, v.ReminderHours
	sv.Questions, sv.UnitID, sv.Active = v.Questions, unit, v.Active == nil || *v.Active
	sv.FormKey = ""
	if v.Form != "" {
		id, ok := r.ID("forms", v.Form)
		if !ok {
			return "", fmt.Errorf("forms %q is not created yet", v.Form)
		}
		sv.FormKey = id
	}
	sid, err := s.a.SaveService(ctx, sv)
	if err != nil {
		return "", err
	}
	if id == "" && !sv.Active { // created active: close it as asked
		sv.ID = sid
		if _, err := s.a.SaveService(ctx, sv); err != nil {
			return "", err
		}
	}
	return idStr(sid), s.writeSchedules(ctx, org, sid, v.Schedules, r)
}

// writeSchedules makes the service's weekly schedules at each meeting point those of the
// item: existing ones are updated in date order, missing ones created. The appointments
// module cannot delete a schedule, so a suite cannot drop one either.
func (s *servicesSection) writeSchedules(ctx context.Context, org, serviceID int64, scheds []schedule, r Resolver) error {
	byPlace := map[int64][]schedule{}
	var order []int64
	for _, sc := range scheds {
		pid, err := refID(r, "meeting_points", sc.MeetingPoint)
		if err != nil {
			return err
		}
		if byPlace[pid] == nil {
			order = append(order, pid)
		}
		byPlace[pid] = append(byPlace[pid], sc)
	}
	offered, err := s.a.Places(ctx, org, serviceID)
	if err != nil {
		return err
	}
	for _, p := range offered {
		if byPlace[p.ID] == nil {
			order = append(order, p.ID)
		}
	}
	for _, pid := range order {
		want := byPlace[pid]
		sort.SliceStable(want, func(a, b int) bool { return want[a].ValidFrom < want[b].ValidFrom })
		have, err := s.a.Templates(ctx, pid, serviceID)
		if err != nil {
			return err
		}
		if len(have) > len(want) {
			return errs.New(errs.Conflict, "suites.error.schedule_removed", "meeting_point", r.Key("meeting_points", idStr(pid)))
		}
		for i, sc := range want {
			t := appointments.Template{PlaceID: pid, ServiceID: serviceID, ValidFrom: sc.ValidFrom, ValidTo: sc.ValidTo,
				SlotMinutes: sc.SlotMinutes, Capacity: sc.Capacity, Breaks: sc.Breaks}
			if i < len(have) {
				t.ID = have[i].ID
			}
			for d, name := range weekdays {
				t.Days[d] = sc.Days[name]
			}
			if _, err := s.a.SaveTemplate(ctx, t); err != nil {
				return fmt.Errorf("schedule at %s from %s: %w", sc.MeetingPoint, sc.ValidFrom, err)
			}
		}
	}
	return nil
}
