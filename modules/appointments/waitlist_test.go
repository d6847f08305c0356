package appointments

import (
	"strings"
	"testing"
)

// TestWaitingListOffers: when places free, the first ones in line whose period covers the
// day are offered them, in turn, once each; a period that does not cover the day is skipped.
func TestWaitingListOffers(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		waits := []struct{ email, from, to string }{
			{"premier@example.fr", "2026-03-01", "2026-03-31"},
			{"avril@example.fr", "2026-04-01", "2026-04-30"}, // does not cover 10 March
			{"second@example.fr", "2026-03-09", "2026-03-11"},
			{"troisieme@example.fr", "2026-03-01", "2026-03-31"},
		}
		for _, w := range waits {
			if err := f.m.JoinWaitingList(f.ctx, &f.svc, 0, w.email, w.from, w.to); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.m.JoinWaitingList(f.ctx, &f.svc, 0, "x@example.fr", "2026-03-31", "2026-03-01"); err == nil {
			t.Error("a period ending before it starts was accepted")
		}
		var booked []*Appointment
		for i, hm := range []string{"09:00", "09:15"} {
			s := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-10", hm)
			a, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID}, Details{Name: "Usager", Email: []string{"a@example.fr", "b@example.fr"}[i],
				Answers: map[string]string{"motif": "Renouvellement"}})
			if err != nil {
				t.Fatal(err)
			}
			booked = append(booked, a)
		}
		for i, want := range []string{"premier@example.fr", "second@example.fr"} {
			a := booked[i]
			if _, err := f.m.Cancel(f.ctx, a.CancelToken, ""); err != nil {
				t.Fatal(err)
			}
			for k := 0; k < 2; k++ { // a retried job offers once
				if err := f.m.afterCancel(f.ctx, CancelledArgs{ID: a.ID}); err != nil {
					t.Fatal(err)
				}
			}
			ms := f.mails(t, "appointments/offer")
			if len(ms) != i+1 || !strings.Contains(ms[i].To, want) || !strings.Contains(ms[i].Text, "/rdv/demarche/") {
				t.Fatalf("after cancellation %d, offers: %+v, want the %d-th to %s", i+1, ms, i+1, want)
			}
			if n := f.count(t, `SELECT COUNT(*) FROM appt_waits WHERE email = ? AND status = 'offered' AND offered_slot = ?`, want, a.SlotIDs[0]); n != 1 {
				t.Errorf("%s not marked offered for slot %d", want, a.SlotIDs[0])
			}
		}
		if n := f.count(t, `SELECT COUNT(*) FROM appt_waits WHERE status = 'waiting'`); n != 2 {
			t.Errorf("%d still waiting, want 2 (April, third)", n)
		}
	})
}
