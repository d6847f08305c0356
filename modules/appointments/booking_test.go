package appointments

import (
	"fmt"
	"strings"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

func each(t *testing.T, f func(t *testing.T, fx *fixture)) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) { f(t, setup(t, d)) })
	}
}

func TestSlotGeneration(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		day := func(d string) int {
			from, _ := time.ParseInLocation(dayLayout, d, f.m.loc)
			ss, err := f.m.Slots(f.ctx, SlotQuery{ServiceID: f.svc.ID, PlaceID: f.place.ID, From: from, To: from.AddDate(0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			return len(ss)
		}
		if n := day("2026-03-03"); n != 24 {
			t.Errorf("Tuesday: %d slots, want 24", n)
		}
		if n := day("2026-03-07"); n != 0 {
			t.Errorf("Saturday: %d slots", n)
		}
		if n := day("2026-04-06"); n != 0 {
			t.Errorf("Easter Monday: %d slots", n)
		}
		// Idempotent across sweeps and nodes.
		before := f.count(t, `SELECT COUNT(*) FROM appt_slots`)
		if err := f.m.GenerateAll(f.ctx); err != nil {
			t.Fatal(err)
		}
		if after := f.count(t, `SELECT COUNT(*) FROM appt_slots`); after < before {
			t.Errorf("slots lost: %d → %d", before, after)
		}
		if c := f.count(t, `SELECT COUNT(*) FROM (SELECT starts_at FROM appt_slots GROUP BY place_id, service_id, starts_at HAVING COUNT(*) > 1) x`); c != 0 {
			t.Errorf("%d duplicated slots", c)
		}
		// A closing day removes the free slots; a specific day replaces the template.
		if err := f.m.AddClosing(f.ctx, f.org, 0, "2026-03-04", "Inventaire"); err != nil {
			t.Fatal(err)
		}
		if n := day("2026-03-04"); n != 0 {
			t.Errorf("closed day: %d slots", n)
		}
		if err := f.m.SaveDayRule(f.ctx, DayRule{PlaceID: f.place.ID, ServiceID: f.svc.ID, Day: "2026-03-05", Ranges: []Range{{"18:00", "19:00"}}, SlotMinutes: 30}); err != nil {
			t.Fatal(err)
		}
		if n := day("2026-03-05"); n != 2 {
			t.Errorf("specific day: %d slots, want 2", n)
		}
		// Overlapping weekly template refused; bad ranges refused.
		tpl := Template{PlaceID: f.place.ID, ServiceID: f.svc.ID, ValidFrom: "2026-06-01", ValidTo: "2027-01-31", SlotMinutes: 15, Capacity: 1}
		if _, err := f.m.SaveTemplate(f.ctx, tpl); errs.CodeOf(err) != errs.Conflict {
			t.Errorf("overlapping template: %v", err)
		}
		tpl.ValidFrom = "2027-01-01"
		tpl.Days[1] = []Range{{"10:00", "09:00"}}
		if _, err := f.m.SaveTemplate(f.ctx, tpl); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("bad range: %v", err)
		}
	})
}

func TestBookingFlowAPI(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		s := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-03", "09:00")
		book := func(email string, slot int64) apiResp {
			return call(t, f.URL, "POST", "/api/appointments", f.token, map[string]any{"slot_id": slot, "name": "Léa " + email, "email": email,
				"answers": map[string]string{"motif": "Renouvellement"}})
		}
		// listAppointmentServices and listAvailableSlots.
		if r := call(t, f.URL, "GET", "/api/appointments/services", "", nil); r.Status != 200 || !strings.Contains(string(r.Body), "Mairie annexe") {
			t.Fatalf("services: %d %s", r.Status, r.Body)
		}
		r := call(t, f.URL, "GET", fmt.Sprintf("/api/appointments/slots?service_id=%d&meeting_point_id=%d&from=2026-03-03&to=2026-03-03", f.svc.ID, f.place.ID), "", nil)
		if r.Status != 200 || strings.Count(string(r.Body), `"id"`) != 24 {
			t.Fatalf("slots: %d %s", r.Status, r.Body)
		}
		// Two places, then full with the nearest free ones offered.
		r1 := book("a@example.fr", s.ID)
		r2 := book("b@example.fr", s.ID)
		if r1.Status != 201 || r2.Status != 201 {
			t.Fatalf("book: %d %s / %d %s", r1.Status, r1.Body, r2.Status, r2.Body)
		}
		r3 := book("c@example.fr", s.ID)
		if r3.Status != 409 || r3.JSON(t)["code"] != "slot_full" || !strings.Contains(string(r3.Body), `"nearest"`) {
			t.Fatalf("third booking: %d %s", r3.Status, r3.Body)
		}
		// Same person twice for the same need: refused by rule.
		s2 := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-03", "10:00")
		if r := book("a@example.fr", s2.ID); r.Status != 409 || r.JSON(t)["code"] != "rule_refused" {
			t.Fatalf("same person: %d %s", r.Status, r.Body)
		}
		// Bad input: each gets invalid_input (or its own code) and nothing is stored.
		past := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-02", "09:00") // within the 2-hour notice
		far := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-02", "16:00")
		_ = far
		cases := []struct {
			name string
			body map[string]any
			code string
		}{
			{"no slot", map[string]any{"name": "X", "email": "x@example.fr"}, "invalid_input"},
			{"slot inside notice", map[string]any{"slot_id": past.ID, "name": "X", "email": "x@example.fr", "answers": map[string]string{"motif": "Renouvellement"}}, "invalid_input"},
			{"bad email", map[string]any{"slot_id": s2.ID, "name": "X", "email": "not-an-email", "answers": map[string]string{"motif": "Renouvellement"}}, "invalid_input"},
			{"missing answer", map[string]any{"slot_id": s2.ID, "name": "X", "email": "x@example.fr"}, "invalid_input"},
			{"bad choice", map[string]any{"slot_id": s2.ID, "name": "X", "email": "x@example.fr", "answers": map[string]string{"motif": "Autre"}}, "invalid_input"},
			{"too many units", map[string]any{"slot_id": s2.ID, "units": 9, "name": "X", "email": "x@example.fr", "answers": map[string]string{"motif": "Renouvellement"}}, "invalid_input"},
			{"unknown slot", map[string]any{"slot_id": 999999, "name": "X", "email": "x@example.fr"}, "not_found"},
			{"unknown field", map[string]any{"slot_id": s2.ID, "nom": "X"}, "unknown_field"},
		}
		for _, c := range cases {
			r := call(t, f.URL, "POST", "/api/appointments", f.token, c.body)
			if r.Status < 400 || r.Status >= 500 || r.JSON(t)["code"] != c.code {
				t.Errorf("%s: %d %s", c.name, r.Status, r.Body)
			}
		}
		if n := f.count(t, `SELECT COUNT(*) FROM appt_appointments`); n != 2 {
			t.Errorf("%d appointments stored, want 2", n)
		}
		if r := call(t, f.URL, "POST", "/api/appointments", "", map[string]any{"slot_id": s2.ID}); r.Status != 403 && r.Status != 401 {
			t.Errorf("createAppointment without a token: %d", r.Status)
		}
		// getAppointment and cancelAppointment by capability token.
		b1 := r1.JSON(t)
		ref, cancel := b1["reference"].(string), b1["cancel_token"].(string)
		if len(cancel) < 22 {
			t.Fatalf("token too short: %q", cancel)
		}
		if r := call(t, f.URL, "GET", "/api/appointments/"+ref, cancel, nil); r.Status != 200 || r.JSON(t)["status"] != "confirmed" {
			t.Fatalf("get: %d %s", r.Status, r.Body)
		}
		if r := call(t, f.URL, "POST", "/api/appointments/"+ref+"/cancel", "forged-token-forged-token-x", nil); r.Status != 404 {
			t.Errorf("forged token: %d %s", r.Status, r.Body)
		}
		if r := call(t, f.URL, "POST", "/api/appointments/"+ref+"/cancel", cancel, map[string]any{"message": "empêché"}); r.Status != 200 {
			t.Fatalf("cancel: %d %s", r.Status, r.Body)
		}
		if r := call(t, f.URL, "POST", "/api/appointments/"+ref+"/cancel", cancel, nil); r.Status != 404 {
			t.Errorf("reused cancel token: %d %s", r.Status, r.Body)
		}
		// The place is free at once.
		if r := book("c@example.fr", s.ID); r.Status != 201 {
			t.Fatalf("booking the freed place: %d %s", r.Status, r.Body)
		}
		// rescheduleAppointment keeps the old one until the new one is confirmed.
		b2 := r2.JSON(t)
		full := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-03", "09:00")
		if r := call(t, f.URL, "POST", "/api/appointments/"+b2["reference"].(string)+"/reschedule", b2["manage_token"].(string), map[string]any{"slot_id": full.ID}); r.Status != 409 {
			t.Errorf("reschedule onto a full slot: %d %s", r.Status, r.Body)
		}
		if a, err := f.m.apptWhere(f.ctx, f.DB.Read(), `a.ref = ?`, b2["reference"]); err != nil || a.Status != StatusConfirmed {
			t.Fatalf("old appointment after a failed reschedule: %+v %v", a, err)
		}
		rs := call(t, f.URL, "POST", "/api/appointments/"+b2["reference"].(string)+"/reschedule", b2["manage_token"].(string), map[string]any{"slot_id": s2.ID})
		if rs.Status != 200 {
			t.Fatalf("reschedule: %d %s", rs.Status, rs.Body)
		}
		if a, _ := f.m.apptWhere(f.ctx, f.DB.Read(), `a.ref = ?`, b2["reference"]); a.Status != StatusCancelled {
			t.Errorf("old appointment: %s", a.Status)
		}
		// Capacity accounting matches the appointments exactly.
		checkAccounting(t, f)
	})
}

// checkAccounting: every slot's booked equals the holds and confirmed appointments in it,
// and no slot is beyond its capacity.
func checkAccounting(t testing.TB, f *fixture) {
	t.Helper()
	if n := f.count(t, `SELECT COUNT(*) FROM appt_slots s WHERE s.booked <> (SELECT COUNT(*) FROM appt_appointment_slots x
		JOIN appt_appointments a ON a.id = x.appointment_id WHERE x.slot_id = s.id AND a.status IN ('held', 'confirmed'))`); n != 0 {
		t.Errorf("%d slots whose booked count disagrees with their appointments", n)
	}
	if n := f.count(t, `SELECT COUNT(*) FROM appt_slots WHERE booked > capacity`); n != 0 {
		t.Errorf("%d slots beyond capacity", n)
	}
}

func TestHoldsExpire(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		s := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-03", "11:00")
		d := Details{Name: "Léa", Email: "lea@example.fr", Answers: map[string]string{"motif": "Renouvellement"}}
		h1, err := f.m.Hold(f.ctx, HoldRequest{SlotID: s.ID})
		if err != nil {
			t.Fatal(err)
		}
		h2, err := f.m.Hold(f.ctx, HoldRequest{SlotID: s.ID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Hold(f.ctx, HoldRequest{SlotID: s.ID}); !isFull(err) {
			t.Fatalf("third hold: %v", err)
		}
		// Eleven minutes later the holds are over: a new hold reclaims a place at once (the
		// conditional update checks expiry), the sweep frees the other.
		f.clock.Add(11 * time.Minute)
		if _, err := f.m.Confirm(f.ctx, h1.HoldToken, d); errs.CodeOf(err) != errs.Conflict || !strings.Contains(err.Error(), keyHoldExpired) {
			t.Fatalf("confirming an expired hold: %v", err)
		}
		h3, err := f.m.Hold(f.ctx, HoldRequest{SlotID: s.ID})
		if err != nil {
			t.Fatalf("hold after expiry: %v", err)
		}
		if n, err := f.m.ExpireHolds(f.ctx); err != nil || n != 1 {
			t.Errorf("sweep expired %d, %v; want 1 (h2)", n, err)
		}
		if _, err := f.m.Confirm(f.ctx, h2.HoldToken, d); err == nil {
			t.Error("confirmed a swept hold")
		}
		a, err := f.m.Confirm(f.ctx, h3.HoldToken, d)
		if err != nil || a.Status != StatusConfirmed {
			t.Fatalf("confirm: %v", err)
		}
		if _, err := f.m.Confirm(f.ctx, h3.HoldToken, d); err == nil {
			t.Error("a hold token was used twice")
		}
		got, _ := f.m.Slot(f.ctx, f.DB.Read(), s.ID)
		if got.Booked != 1 {
			t.Errorf("booked = %d, want 1", got.Booked)
		}
		checkAccounting(t, f)
	})
}

func isFull(err error) bool { _, ok := err.(*SlotFullError); return ok }

func TestConfirmationMailICSAndReminder(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		s := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-30", "09:15") // first Monday of summer time
		a, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID, Units: 2}, Details{Name: "Léa", Email: "lea@example.fr", Phone: "06 12 34 56 78",
			Answers: map[string]string{"motif": "Renouvellement"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := a.End.Sub(a.Start); got != 30*time.Minute {
			t.Errorf("two persons take %v, want 30m", got)
		}
		args := ConfirmedArgs{ID: a.ID, Cancel: a.CancelToken, Manage: a.ManageToken}
		for i := 0; i < 2; i++ { // a retried job sends once
			if err := f.m.afterConfirm(f.ctx, args); err != nil {
				t.Fatal(err)
			}
		}
		ms := f.mails(t, "appointments/confirmed")
		if len(ms) != 1 || !strings.Contains(ms[0].Text, "/rdv/annuler/"+a.CancelToken) || !strings.Contains(ms[0].HTML, `href="`+f.URL+"/rdv/gerer/"+a.ManageToken) {
			t.Fatalf("confirmation mails: %+v", ms)
		}
		var data []byte
		if err := f.DB.Read().QueryRowContext(f.ctx, `SELECT data FROM mail_attachments WHERE name = 'rendez-vous.ics'`).Scan(&data); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "\r\n") || strings.Contains(strings.ReplaceAll(string(data), "\r\n", ""), "\n") {
			t.Error("the .ics lines must end with CRLF")
		}
		if strings.Contains(string(data), "TZID=Europe/Paris:20260330T091500Z") {
			t.Error("TZID with a UTC time")
		}
		cal, err := ics.ParseCalendar(strings.NewReader(string(data)))
		if err != nil {
			t.Fatalf("parse .ics: %v\n%s", err, data)
		}
		if len(cal.Events()) != 1 || len(cal.Timezones()) != 1 {
			t.Fatalf("events %d timezones %d", len(cal.Events()), len(cal.Timezones()))
		}
		ev := cal.Events()[0]
		st, err1 := ev.GetStartAt()
		en, err2 := ev.GetEndAt()
		if err1 != nil || err2 != nil || !st.Equal(time.Date(2026, 3, 30, 7, 15, 0, 0, time.UTC)) || !en.Equal(time.Date(2026, 3, 30, 7, 45, 0, 0, time.UTC)) {
			t.Errorf("DTSTART %v DTEND %v (%v %v)", st, en, err1, err2)
		}
		if p := ev.GetProperty(ics.ComponentPropertyDtStart); p == nil || p.ICalParameters["TZID"][0] != "Europe/Paris" || p.Value != "20260330T091500" {
			t.Errorf("DTSTART property %+v", p)
		}
		// Reminder: exactly once, never after a cancellation.
		rem := ReminderArgs{ID: a.ID, Start: a.Start.Unix()}
		sent1, err := f.m.remind(f.ctx, rem)
		sent2, _ := f.m.remind(f.ctx, rem)
		if err != nil || !sent1 || sent2 || len(f.mails(t, "appointments/reminder")) != 1 {
			t.Errorf("reminder sent %v then %v, %d mails (%v)", sent1, sent2, len(f.mails(t, "appointments/reminder")), err)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM river_job WHERE kind = 'appointments.sms'`); n != 1 {
			t.Errorf("%d SMS jobs, want 1", n)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM river_job WHERE kind = 'appointments.reminder'`); n != 1 {
			t.Errorf("%d reminder jobs, want 1 (unique)", n)
		}
		s2 := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-31", "09:15")
		b, err := f.m.Book(f.ctx, HoldRequest{SlotID: s2.ID}, Details{Name: "Max", Email: "max@example.fr", Answers: map[string]string{"motif": "Renouvellement"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Cancel(f.ctx, b.CancelToken, ""); err != nil {
			t.Fatal(err)
		}
		if sent, err := f.m.remind(f.ctx, ReminderArgs{ID: b.ID, Start: b.Start.Unix()}); sent || err != nil {
			t.Errorf("reminder after cancellation: %v %v", sent, err)
		}
		if err := f.m.afterCancel(f.ctx, CancelledArgs{ID: b.ID}); err != nil {
			t.Fatal(err)
		}
		if ms := f.mails(t, "appointments/cancelled"); len(ms) != 1 {
			t.Errorf("cancellation mails: %d", len(ms))
		}
	})
}

func TestCapacityOverrideAndCheckIn(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		s := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-03", "14:00")
		for _, e := range []string{"a@example.fr", "b@example.fr"} {
			if _, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID}, Details{Name: e, Email: e, Answers: map[string]string{"motif": "Renouvellement"}}); err != nil {
				t.Fatal(err)
			}
		}
		err := f.m.SetDayCapacity(f.ctx, f.agent, f.place.ID, f.svc.ID, "2026-03-03", 1)
		ce, ok := err.(*CapacityError)
		if !ok || len(ce.InTheWay) != 2 {
			t.Fatalf("lowering below booked: %v", err)
		}
		if err := f.m.SetDayCapacity(f.ctx, f.agent, f.place.ID, f.svc.ID, "2026-03-03", 4); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.m.Slot(f.ctx, f.DB.Read(), s.ID); got.Capacity != 4 {
			t.Errorf("capacity %d", got.Capacity)
		}
		// Check-in through the workflow engine, from the planning page.
		c := f.ClientAs(f.agent)
		r := c.Get("/admin/rdv/planning?jour=2026-03-03")
		if r.Status != 200 || !strings.Contains(r.Body, "a@example.fr") {
			t.Fatalf("planning: %d", r.Status)
		}
		var ref string
		_ = f.DB.Read().QueryRowContext(f.ctx, `SELECT ref FROM appt_appointments WHERE email = 'a@example.fr'`).Scan(&ref)
		if r := c.Post("/admin/rdv/rendez-vous/"+ref+"/etat", map[string][]string{"action": {"arrive"}}); r.Status != 303 {
			t.Fatalf("check-in: %d %s", r.Status, r.Body)
		}
		a, _ := f.m.apptWhere(f.ctx, f.DB.Read(), `a.ref = ?`, ref)
		if a.State != "arrived" {
			t.Errorf("state %q", a.State)
		}
		if r := c.Post("/admin/rdv/rendez-vous/"+ref+"/etat", map[string][]string{"action": {"no_show"}}); r.Status != 409 {
			t.Errorf("no-show after arrival: %d", r.Status)
		}
		for _, p := range []string{"/admin/rdv/export.csv?jour=2026-03-03", "/admin/rdv/export.xlsx?jour=2026-03-03", "/admin/rdv/statistiques?mois=2026-03", "/admin/rdv/planning/imprimer?jour=2026-03-03", "/admin/rdv/reglages"} {
			if r := c.Get(p); r.Status != 200 {
				t.Errorf("GET %s: %d", p, r.Status)
			}
		}
		if r := c.Get("/admin/rdv/export.csv?jour=2026-03-03"); !strings.Contains(r.Body, "a@example.fr") {
			t.Errorf("CSV: %s", r.Body)
		}
		// Statistics.
		st, err := f.m.Statistics(f.ctx, f.org, start, start.AddDate(0, 1, 0), planningQuery{})
		if err != nil || len(st) != 1 || st[0].Confirmed != 2 || st[0].Done != 1 {
			t.Errorf("stats %+v %v", st, err)
		}
		// An anonymous visitor is sent to the login page.
		if r := f.Client().Get("/admin/rdv/planning"); r.Status != 303 {
			t.Errorf("anonymous planning: %d", r.Status)
		}
	})
}

var _ = store.SQLite
