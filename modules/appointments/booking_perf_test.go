package appointments

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// Tests of the booking's fast paths (perf_book.go): SQLite's group commit, PostgreSQL's one
// round trip, and the slots remembered between bookings (cache.go).

var motif = map[string]string{"motif": "Renouvellement"}

// TestGroupCommitKeepsEachBookingApart: bookings sent at once share write transactions on
// SQLite, yet each is refused or kept on its own: a full slot, a person booked twice, a
// limit reached roll back only that booking. On PostgreSQL the same attempts go through
// the one-round-trip booking.
func TestGroupCommitKeepsEachBookingApart(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		small := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-04", "09:00") // capacity 2
		var big []Slot
		for _, hm := range []string{"14:00", "14:15", "14:30", "14:45", "15:00", "15:15", "15:30", "15:45", "16:00", "16:15", "16:30"} {
			big = append(big, f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-05", hm))
		}
		type attempt struct {
			slot  int64
			email string
			want  string // "", "slot_full" or "rule_refused"
		}
		var attempts []attempt
		for i := 0; i < 8; i++ { // 8 people, 2 places
			attempts = append(attempts, attempt{small.ID, fmt.Sprintf("small%d@example.fr", i), "?"})
		}
		for _, hm := range []string{"14:00", "14:15", "14:30", "14:45", "15:00", "15:15", "15:30", "15:45"} {
			// one person 8 times (at most one upcoming appointment)
			attempts = append(attempts, attempt{f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-06", hm).ID, "dup@example.fr", "?"})
		}
		for i := 0; i < 20; i++ { // 20 people, room for all (2 places × 11 slots)
			attempts = append(attempts, attempt{big[i%len(big)].ID, fmt.Sprintf("ok%d@example.fr", i), ""})
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[string]int{}
		for _, at := range attempts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				a, err := f.m.Book(f.ctx, HoldRequest{SlotID: at.slot}, Details{Name: "Usager", Email: at.email, Answers: motif})
				code, _ := APICode(err)
				if err == nil {
					code = "ok"
					if a.ID == 0 || a.Ref == "" || a.CancelToken == "" {
						t.Errorf("booked without its identifiers: %+v", a)
					}
				}
				mu.Lock()
				codes[strings.SplitN(at.email, "@", 2)[0][:2]+" "+code]++
				mu.Unlock()
				if at.want == "" && err != nil {
					t.Errorf("%s: %v", at.email, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		want := map[string]int{"sm ok": 2, "sm slot_full": 6, "du ok": 1, "du rule_refused": 7, "ok ok": 20}
		if fmt.Sprint(codes) != fmt.Sprint(want) {
			t.Fatalf("outcomes %v, want %v", codes, want)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM appt_appointments`); n != 23 {
			t.Errorf("%d appointments stored, want 23", n)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM appt_persons WHERE active = 1`); n != 23 {
			t.Errorf("%d persons stored, want 23", n)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM appt_appointment_slots`); n != 23 {
			t.Errorf("%d appointment slots stored, want 23", n)
		}
		checkAccounting(t, f)
		if f.DB.Dialect == store.SQLite {
			g := &f.m.booking.group
			if g.bookings.Load() != int64(len(attempts)) || g.batches.Load() >= g.bookings.Load() {
				t.Errorf("%d bookings in %d transactions: want %d bookings sharing transactions", g.bookings.Load(), g.batches.Load(), len(attempts))
			}
		}
	})
}

// TestBookRemembersSlotsSafely: a booking uses the slot remembered from an earlier one
// (cache.go) only if the database still has that slot under that ID.
func TestBookRemembersSlotsSafely(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		s := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-06", "09:00")
		bad := Details{Name: "Usager", Email: "not-an-email", Answers: motif}
		remember := func() {
			t.Helper()
			if _, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID}, bad); errs.CodeOf(err) != errs.Invalid {
				t.Fatalf("booking with a bad email: %v", err)
			}
			if _, ok := f.m.cache.slot(s.ID); !ok {
				t.Fatal("the slot is not remembered")
			}
		}
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := f.DB.Write().ExecContext(f.ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		// Deleted (by another node): not found, not "full".
		remember()
		exec(`DELETE FROM appt_slots WHERE id = ?`, s.ID)
		_, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID}, Details{Name: "Usager", Email: "a@example.fr", Answers: motif})
		if errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("booking a deleted slot: %v", err)
		}
		// Its ID taken again by a slot at another time (SQLite reuses the largest rowid): the
		// booking is for the slot as it is now.
		remember2 := func() {
			exec(`INSERT INTO appt_slots (id, place_id, service_id, day, starts_at, ends_at, start_s, end_s, capacity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 2)`,
				s.ID, s.PlaceID, s.ServiceID, s.Day, s.Start, s.End, s.Start.Unix(), s.End.Unix())
			remember()
			exec(`DELETE FROM appt_slots WHERE id = ?`, s.ID)
			later := s.Start.Add(5 * time.Minute)
			exec(`INSERT INTO appt_slots (id, place_id, service_id, day, starts_at, ends_at, start_s, end_s, capacity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 2)`,
				s.ID, s.PlaceID, s.ServiceID, s.Day, later, later.Add(15*time.Minute), later.Unix(), later.Add(15*time.Minute).Unix())
		}
		remember2()
		a, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID}, Details{Name: "Usager", Email: "b@example.fr", Answers: motif})
		if err != nil {
			t.Fatal(err)
		}
		if want := s.Start.Add(5 * time.Minute); !a.Start.Equal(want) {
			t.Errorf("booked at %s, the slot is now at %s", a.Start, want)
		}
		if got, err := f.m.Appointment(f.ctx, a.ID); err != nil || !got.Start.Equal(a.Start) {
			t.Errorf("stored appointment: %+v %v", got, err)
		}
		checkAccounting(t, f)
	})
}

// TestBookFreesAnExpiredHold: a booking that finds its slot full of expired holds frees
// them and books (on PostgreSQL, through the general path).
func TestBookFreesAnExpiredHold(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		s := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-06", "10:00")
		for i := 0; i < 2; i++ {
			if _, err := f.m.Hold(f.ctx, HoldRequest{SlotID: s.ID}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID}, Details{Name: "Usager", Email: "c@example.fr", Answers: motif}); !isFull(err) {
			t.Fatalf("booking a slot held twice: %v", err)
		}
		f.clock.Add(11 * time.Minute)
		if _, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID}, Details{Name: "Usager", Email: "c@example.fr", Answers: motif}); err != nil {
			t.Fatalf("booking after the holds expired: %v", err)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM appt_appointments WHERE status = 'expired'`); n != 2 {
			t.Errorf("%d holds expired by the booking, want both", n)
		}
		checkAccounting(t, f)
	})
}

// TestBookGapAndLimitRules: the minimum gap and the number of upcoming appointments, as the
// one-round-trip booking counts them.
func TestBookGapAndLimitRules(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		svc := Service{OrgID: f.org, CategoryID: f.svc.CategoryID, Name: "Espacé", WindowDays: 60, HoldMinutes: 10, MaxUnits: 1,
			MaxUpcoming: 2, MinGapDays: 7}
		var err error
		if svc.ID, err = f.m.SaveService(f.ctx, svc); err != nil {
			t.Fatal(err)
		}
		tpl := Template{PlaceID: f.place.ID, ServiceID: svc.ID, ValidFrom: "2026-03-01", ValidTo: "2026-04-30", SlotMinutes: 30, Capacity: 5}
		tpl.Days[time.Monday] = []Range{{"09:00", "10:00"}}
		tpl.Days[time.Thursday] = []Range{{"09:00", "10:00"}}
		if _, err := f.m.SaveTemplate(f.ctx, tpl); err != nil {
			t.Fatal(err)
		}
		d := Details{Name: "Léa", Email: "lea@example.fr"}
		book := func(day string) error {
			_, err := f.m.Book(f.ctx, HoldRequest{SlotID: f.slotAt(t, svc.ID, f.place.ID, day, "09:00").ID}, d)
			return err
		}
		rule := func(err error) string {
			if e, ok := errs.As(err); ok {
				return e.Key
			}
			return fmt.Sprint(err)
		}
		if err := book("2026-03-09"); err != nil {
			t.Fatal(err)
		}
		if err := book("2026-03-12"); rule(err) != rulePrefix+"min_gap" {
			t.Errorf("3 days later: %v", err)
		}
		if err := book("2026-03-19"); rule(err) != rulePrefix+"same_person_email" {
			t.Errorf("10 days later, same need: %v", err)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM appt_appointments WHERE email = 'lea@example.fr' AND status = 'confirmed'`); n != 1 {
			t.Errorf("%d appointments kept, want 1", n)
		}
		checkAccounting(t, f)
	})
}
