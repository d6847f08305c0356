package appointments

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSettingsEditing edits the settings through the back-office forms: services with their
// booking window and rules, meeting points, weekly templates (an overlapping one refused in
// the error summary), each save audited; bad input comes back on the form.
func TestSettingsEditing(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		c := f.ClientAs(f.agent)
		if r := c.Get("/admin/rdv/reglages"); r.Status != 200 || !strings.Contains(r.Body, fmt.Sprintf(`/admin/rdv/reglages/demarche?id=%d`, f.svc.ID)) {
			t.Fatalf("settings page: %d", r.Status)
		}
		audits := func(action string) int {
			return f.count(t, `SELECT COUNT(*) FROM audit_entries WHERE action = ?`, action)
		}
		service := url.Values{"name": {"Mariage"}, "category": {fmt.Sprint(f.svc.CategoryID)}, "ants_reason": {""}, "active": {"1"},
			"notice_hours": {"48"}, "window_days": {"120"}, "hold_minutes": {"15"}, "slots_per_unit": {"2"}, "max_units": {"1"},
			"max_upcoming": {"1"}, "max_upcoming_category": {"0"}, "min_gap_days": {"0"}, "reminder_hours": {"48"}}
		with := func(v url.Values, k, val string) url.Values {
			out := url.Values{}
			for a, b := range v {
				out[a] = b
			}
			out.Set(k, val)
			return out
		}
		bad := []struct {
			name, path string
			form       url.Values
			field      string
		}{
			{"service without a name", "/admin/rdv/reglages/demarche", with(service, "name", ""), "name"},
			{"window not a number", "/admin/rdv/reglages/demarche", with(service, "window_days", "soixante"), "window_days"},
			{"negative notice", "/admin/rdv/reglages/demarche", with(service, "notice_hours", "-2"), "notice_hours"},
			{"unknown ANTS reason", "/admin/rdv/reglages/demarche", with(service, "ants_reason", "VISA"), "ants_reason"},
			{"place website", "/admin/rdv/reglages/lieu", url.Values{"name": {"Annexe"}, "address": {"2 rue"}, "zip_code": {"75012"}, "city": {"Paris"},
				"website": {"javascript:alert(1)"}}, "website"},
			{"place latitude", "/admin/rdv/reglages/lieu", url.Values{"name": {"Annexe"}, "address": {"2 rue"}, "zip_code": {"75012"}, "city": {"Paris"},
				"latitude": {"91"}}, "latitude"},
			// The fixture's template covers all of 2026 for this service and place.
			{"overlapping template", "/admin/rdv/reglages/modele", url.Values{"service": {fmt.Sprint(f.svc.ID)}, "place": {fmt.Sprint(f.place.ID)},
				"valid_from": {"2026-06-01"}, "valid_to": {"2026-06-30"}, "slot_minutes": {"15"}, "capacity": {"2"}, "mon": {"09:00-12:00"}}, "valid_from"},
			{"template ranges", "/admin/rdv/reglages/modele", url.Values{"service": {fmt.Sprint(f.svc.ID)}, "place": {fmt.Sprint(f.place.ID)},
				"valid_from": {"2027-01-01"}, "valid_to": {"2027-06-30"}, "slot_minutes": {"15"}, "capacity": {"2"}, "mon": {"9h-12h"}}, "mon"},
			{"template dates", "/admin/rdv/reglages/modele", url.Values{"service": {fmt.Sprint(f.svc.ID)}, "place": {fmt.Sprint(f.place.ID)},
				"valid_from": {"2027-06-30"}, "valid_to": {"2027-01-01"}, "slot_minutes": {"15"}, "capacity": {"2"}}, "valid_to"},
		}
		for _, tc := range bad {
			r := c.Post(tc.path, tc.form)
			if r.Status != 400 || !strings.Contains(r.Body, `pv-error-summary`) || !strings.Contains(r.Body, `href="#f-`+tc.field+`"`) {
				t.Errorf("%s: %d, want 400 with the error summary pointing at %s", tc.name, r.Status, tc.field)
			}
		}
		if r := c.Post("/admin/rdv/reglages/modele", bad[6].form); !strings.Contains(r.Body, f.m.i18n.T("fr", "appointments.error.template_overlap")) {
			t.Error("the overlap is not explained")
		}
		if n := f.count(t, `SELECT COUNT(*) FROM audit_entries WHERE action LIKE 'appointments.%.save'`); n != 0 {
			t.Errorf("%d audit entries after refused saves", n)
		}

		// A new service, then an edit of the fixture's (its questions kept).
		if r := c.Post("/admin/rdv/reglages/demarche", service); r.Status != 303 {
			t.Fatalf("new service: %d %s", r.Status, r.Body)
		}
		var wedding Service
		svcs, _ := f.m.Services(f.ctx, f.org, false)
		for _, s := range svcs {
			if s.Name == "Mariage" {
				wedding = s
			}
		}
		if wedding.ID == 0 || wedding.NoticeHours != 48 || wedding.WindowDays != 120 || wedding.SlotsPerUnit != 2 || !wedding.Active {
			t.Fatalf("saved service: %+v", wedding)
		}
		edit := with(with(service, "id", fmt.Sprint(f.svc.ID)), "name", "Carte d'identité")
		edit.Set("window_days", "30")
		edit.Del("active")
		if r := c.Post("/admin/rdv/reglages/demarche", edit); r.Status != 303 {
			t.Fatalf("edit service: %d", r.Status)
		}
		got, _ := f.m.Service(f.ctx, f.DB.Read(), f.svc.ID)
		if got.WindowDays != 30 || got.Active || len(got.Questions) != 1 {
			t.Errorf("edited service: window %d active %v questions %d", got.WindowDays, got.Active, len(got.Questions))
		}
		if r := c.Get(fmt.Sprintf("/admin/rdv/reglages/demarche?id=%d", f.svc.ID)); r.Status != 200 || !strings.Contains(r.Body, `value="30"`) {
			t.Errorf("edit form: %d", r.Status)
		}

		// A meeting point, and a weekly template for the new service there.
		if r := c.Post("/admin/rdv/reglages/lieu", url.Values{"name": {"Mairie du 12e"}, "address": {"130 av. Daumesnil"}, "zip_code": {"75012"},
			"city": {"Paris"}, "latitude": {"48,8404"}, "longitude": {"2.3878"}, "website": {"https://ville.test"}, "active": {"1"}}); r.Status != 303 {
			t.Fatalf("new place: %d %s", r.Status, r.Body)
		}
		places, _ := f.m.Places(f.ctx, f.org, 0)
		var p12 Place
		for _, p := range places {
			if p.Name == "Mairie du 12e" {
				p12 = p
			}
		}
		if p12.ID == 0 || p12.Latitude != 48.8404 {
			t.Fatalf("saved place: %+v", p12)
		}
		tpl := url.Values{"service": {fmt.Sprint(wedding.ID)}, "place": {fmt.Sprint(p12.ID)}, "valid_from": {"2026-03-01"}, "valid_to": {"2026-12-31"},
			"slot_minutes": {"30"}, "capacity": {"1"}, "sat": {"09:00-12:00"}, "breaks": {"10:30-11:00"}}
		if r := c.Post("/admin/rdv/reglages/modele", tpl); r.Status != 303 {
			t.Fatalf("new template: %d %s", r.Status, r.Body)
		}
		tpls, _ := f.m.Templates(f.ctx, p12.ID, wedding.ID)
		if len(tpls) != 1 || len(tpls[0].Days[6]) != 1 || len(tpls[0].Breaks) != 1 {
			t.Fatalf("saved template: %+v", tpls)
		}
		// Saturday 7 March 2026: 09:00–12:00 in 30 minutes, minus the break: 5 slots.
		if n := len(f.slotsOn(t, wedding.ID, p12.ID, "2026-03-07")); n != 5 {
			t.Errorf("%d slots on the Saturday, want 5", n)
		}
		edit = with(tpl, "id", fmt.Sprint(tpls[0].ID))
		edit.Set("capacity", "3")
		if r := c.Post("/admin/rdv/reglages/modele", edit); r.Status != 303 {
			t.Fatalf("edit template: %d %s", r.Status, r.Body)
		}
		if ss := f.slotsOn(t, wedding.ID, p12.ID, "2026-03-07"); len(ss) != 5 || ss[0].Capacity != 3 {
			t.Errorf("after the edit: %d slots, capacity %d", len(ss), ss[0].Capacity)
		}
		for action, want := range map[string]int{"appointments.service.save": 2, "appointments.place.save": 1, "appointments.template.save": 2} {
			if n := audits(action); n != want {
				t.Errorf("%d %s audit entries, want %d", n, action, want)
			}
		}

		// Without the settings permission: refused.
		other := f.NewAgent(f.org, "planning@ville.test", PermPlanning)
		if r := f.ClientAs(other).Get("/admin/rdv/reglages/demarche"); r.Status != 403 {
			t.Errorf("agent without the settings permission: %d", r.Status)
		}
	})
}

func (f *fixture) slotsOn(t *testing.T, svc, place int64, day string) []Slot {
	t.Helper()
	d, _ := timeIn(f, day)
	ss, err := f.m.Slots(f.ctx, SlotQuery{ServiceID: svc, PlaceID: place, From: d, To: d.AddDate(0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

func timeIn(f *fixture, day string) (time.Time, error) {
	return time.ParseInLocation(dayLayout, day, f.m.loc)
}
