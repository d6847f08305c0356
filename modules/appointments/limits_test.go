package appointments

import (
	"sync"
	"testing"
	"time"
)

// TestPerCitizenLimitUnderConcurrency: one person books two services of one category at
// once, 16 attempts in parallel, with at most one upcoming appointment in the category. The
// per-person index cannot decide (each service is its own need): only the counted rule can,
// so on PostgreSQL it holds only if concurrent bookings of one person are serialised.
func TestPerCitizenLimitUnderConcurrency(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		var slots []Slot
		for i := 0; i < 2; i++ {
			svc := Service{OrgID: f.org, CategoryID: f.svc.CategoryID, Name: "Limité", WindowDays: 60, HoldMinutes: 10, MaxUnits: 1,
				MaxUpcomingCategory: 1}
			var err error
			if svc.ID, err = f.m.SaveService(f.ctx, svc); err != nil {
				t.Fatal(err)
			}
			tpl := Template{PlaceID: f.place.ID, ServiceID: svc.ID, ValidFrom: "2026-03-10", ValidTo: "2026-03-10", SlotMinutes: 15, Capacity: 5}
			tpl.Days[time.Tuesday] = []Range{{"09:00", "11:00"}}
			if _, err := f.m.SaveTemplate(f.ctx, tpl); err != nil {
				t.Fatal(err)
			}
			for _, hm := range []string{"09:00", "09:30", "10:00", "10:30"} {
				slots = append(slots, f.slotAt(t, svc.ID, f.place.ID, "2026-03-10", hm))
			}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		booked, refused := 0, 0
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, err := f.m.Book(f.ctx, HoldRequest{SlotID: slots[i%len(slots)].ID}, Details{Name: "Léa", Email: "lea@example.fr"})
				mu.Lock()
				defer mu.Unlock()
				switch code, _ := APICode(err); {
				case err == nil:
					booked++
				case code == "rule_refused":
					refused++
				default:
					t.Errorf("attempt %d: %v", i, err)
				}
			}(i)
		}
		wg.Wait()
		if booked != 1 || refused != 15 {
			t.Fatalf("booked %d, refused %d: want 1 and 15", booked, refused)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM appt_appointments WHERE email = 'lea@example.fr' AND status = 'confirmed'`); n != 1 {
			t.Fatalf("%d confirmed appointments for one person, limit 1", n)
		}
	})
}
