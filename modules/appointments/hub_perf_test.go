package appointments

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

// BenchmarkHubQuery compares the reads behind availableTimeSlots for 20 meeting points over
// 3 months, all slots free (about 21,600): every free slot with its columns (the former
// answer, hubScan), the IDs of the free ones, and the IDs of the not-free ones through
// their partial index (perf_hub.go, which reads the smaller of the two sets). No JSON.
func BenchmarkHubQuery(b *testing.B) {
	f := setup(b, store.SQLite)
	_, ids := hubBenchFixture(b, f)
	var pids []any
	for _, s := range ids {
		n, _ := strconv.ParseInt(s, 10, 64)
		pids = append(pids, n)
	}
	from, _ := time.ParseInLocation(dayLayout, "2026-03-02", f.m.loc)
	to, _ := time.ParseInLocation(dayLayout, "2026-06-01", f.m.loc)
	if _, err := f.m.hubSlots(f.ctx, nil, f.org, ids, pids, from, to, "PASSPORT", 1); err != nil {
		b.Fatal(err)
	}
	var svc int64
	if err := f.DB.Read().QueryRowContext(f.ctx, `SELECT id FROM appt_services WHERE ants_reason <> ''`).Scan(&svc); err != nil {
		b.Fatal(err)
	}
	args := append(append([]any{}, pids...), svc, from.Unix(), to.Unix())
	in := placeholders(len(pids))
	run := func(b *testing.B, q string, ncol int) {
		n := 0
		defer reportCPU(b)()
		for b.Loop() {
			rows, err := f.m.db.Read().QueryContext(f.ctx, q, args...)
			if err != nil {
				b.Fatal(err)
			}
			vals := make([]int64, ncol)
			ptrs := make([]any, ncol)
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			n = 0
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					b.Fatal(err)
				}
				n++
			}
			rows.Close()
		}
		b.ReportMetric(float64(n), "rows")
	}
	b.Run("free-slots-5-columns", func(b *testing.B) {
		run(b, `SELECT id, service_id, place_id, start_s, end_s FROM appt_slots WHERE place_id IN (`+in+`) AND service_id IN (?)
			AND start_s >= ? AND start_s < ? AND booked < capacity AND blocked = 0 ORDER BY place_id, service_id, start_s`, 5)
	})
	b.Run("free-ids", func(b *testing.B) {
		run(b, `SELECT id FROM appt_slots WHERE place_id IN (`+in+`) AND service_id IN (?)
			AND start_s >= ? AND start_s < ? AND booked < capacity AND blocked = 0`, 1)
	})
	b.Run("not-free-ids-without-index", func(b *testing.B) {
		run(b, `SELECT id FROM appt_slots INDEXED BY appt_slots_start WHERE place_id IN (`+in+`) AND service_id IN (?)
			AND start_s >= ? AND start_s < ? AND (booked >= capacity OR blocked <> 0)`, 1)
	})
	b.Run("not-free-ids", func(b *testing.B) {
		run(b, `SELECT id FROM appt_slots INDEXED BY appt_slots_not_free WHERE place_id IN (`+in+`) AND service_id IN (?)
			AND start_s >= ? AND start_s < ? AND (booked >= capacity OR blocked <> 0)`, 1)
	})
}

// TestHubGridMatchesScan compares, on random schedules and random states of the slots,
// availableTimeSlots computed from the grids (perf_hub.go; both ways of reading which slots
// are free) with the scan of every free slot (hubScan): byte for byte. Between rounds the
// slots change as other nodes would change them (booked, blocked, capacity, deleted,
// inserted again under a reused ID, days closed or redefined), which the grids must see.
func TestHubGridMatchesScan(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d)
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 5))
			svcs := []Service{
				{OrgID: f.org, CategoryID: f.svc.CategoryID, Name: "CNI et passeport", AntsReason: "CNI-PASSPORT", WindowDays: 80, HoldMinutes: 10, MaxUnits: 3, SlotsPerUnit: 1, NoticeHours: 2},
				{OrgID: f.org, CategoryID: f.svc.CategoryID, Name: "Passeport", AntsReason: "PASSPORT", WindowDays: 40, HoldMinutes: 10, MaxUnits: 2, SlotsPerUnit: 2, NoticeHours: 30},
				{OrgID: f.org, CategoryID: f.svc.CategoryID, Name: "CNI", AntsReason: "CNI", WindowDays: 60, HoldMinutes: 10, MaxUnits: 1, SlotsPerUnit: 1},
			}
			for i := range svcs {
				var err error
				if svcs[i].ID, err = f.m.SaveService(f.ctx, svcs[i]); err != nil {
					t.Fatal(err)
				}
			}
			var pids []any
			var ids []string
			for i := 0; i < 6; i++ {
				p := Place{OrgID: f.org, Name: fmt.Sprintf("Mairie %d", i), Address: "1 rue", ZipCode: "75001", City: "Paris"}
				var err error
				if p.ID, err = f.m.SavePlace(f.ctx, p); err != nil {
					t.Fatal(err)
				}
				for _, s := range svcs {
					if rng.IntN(3) == 0 {
						continue
					}
					tpl := Template{PlaceID: p.ID, ServiceID: s.ID, ValidFrom: "2026-01-01", ValidTo: "2026-12-31",
						SlotMinutes: []int{10, 15, 20, 30}[rng.IntN(4)], Capacity: 1 + rng.IntN(3)}
					for d := time.Monday; d <= time.Saturday; d++ {
						if rng.IntN(5) > 0 {
							tpl.Days[d] = []Range{{"08:30", "12:00"}, {"13:30", "17:15"}}
						}
					}
					if rng.IntN(2) == 0 {
						tpl.Breaks = []Range{{"10:00", "10:20"}}
					}
					if _, err := f.m.SaveTemplate(f.ctx, tpl); err != nil {
						t.Fatal(err)
					}
				}
				pids = append(pids, p.ID)
				ids = append(ids, strconv.FormatInt(p.ID, 10))
			}
			ids = append(ids, ids[2], "999999") // a repeated and an unknown meeting point
			pids = append(pids, int64(999999))
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := f.DB.Write().ExecContext(f.ctx, q, args...); err != nil {
					t.Fatal(err)
				}
			}
			nonEmpty := 0
			for round := 0; round < 12; round++ {
				for k := 0; k < 3; k++ {
					start := time.Date(2026, 3, 1+rng.IntN(60), 0, 0, 0, 0, f.m.loc)
					end := start.AddDate(0, 0, rng.IntN(100))
					reason := []string{"CNI", "PASSPORT", "CNI-PASSPORT"}[rng.IntN(3)]
					docs := 1 + rng.IntN(3)
					if _, err := f.m.hubSlots(f.ctx, nil, f.org, ids, pids, start, end, reason, docs); err != nil { // generates
						t.Fatal(err)
					}
					kept, minFrom, maxTo, err := f.m.hubOffers(f.ctx, f.org, pids, start, end, reason, docs)
					if err != nil {
						t.Fatal(err)
					}
					ref, err := f.m.hubScan(f.ctx, kept, minFrom, maxTo, docs)
					if err != nil {
						t.Fatal(err)
					}
					want := f.m.hubJSON(nil, ids, ref, docs)
					if len(want) > 2000 {
						nonEmpty++
					}
					for _, share := range []int64{0, 1000} {
						f.m.cache.grids.nonFreePermille.Store(share)
						found, ok, err := f.m.hubGrid(f.ctx, kept, minFrom, maxTo, docs)
						if err != nil || !ok {
							t.Fatalf("round %d: hubGrid: %v %v", round, ok, err)
						}
						if got := f.m.hubJSON(nil, ids, found, docs); string(got) != string(want) {
							t.Fatalf("round %d, %s→%s %s docs %d, not-free share %d: grid answer differs from the scan:\n%.600s\n---\n%.600s",
								round, start.Format(dayLayout), end.Format(dayLayout), reason, docs, share, got, want)
						}
					}
					got, err := f.m.hubSlots(f.ctx, nil, f.org, ids, pids, start, end, reason, docs)
					if err != nil || string(got) != string(want) {
						t.Fatalf("round %d: hubSlots differs from the scan (%v)", round, err)
					}
				}
				// Change the slots as bookings, agents and other nodes would.
				frac := rng.Float64()
				exec(`UPDATE appt_slots SET booked = CASE WHEN (id * 7919 + ?) % 100 < ? THEN capacity ELSE 0 END`, rng.IntN(1000), int(frac*100))
				exec(`UPDATE appt_slots SET blocked = CASE WHEN (id * 104729 + ?) % 100 < 5 THEN 1 ELSE 0 END`, rng.IntN(1000))
				exec(`UPDATE appt_slots SET capacity = capacity + 1 WHERE (id + ?) % 50 = 0`, rng.IntN(50))
				switch round % 4 {
				case 0: // another node deletes free slots of a day
					exec(`DELETE FROM appt_slots WHERE day = ? AND booked = 0`, fmt.Sprintf("2026-03-%02d", 10+rng.IntN(15)))
				case 1: // the newest slot goes and its ID comes back at another time (SQLite reuses the largest rowid)
					var id, place, svc, s, e int64
					var day string
					if err := f.DB.Read().QueryRowContext(f.ctx, `SELECT id, place_id, service_id, day, start_s, end_s FROM appt_slots ORDER BY id DESC LIMIT 1`).
						Scan(&id, &place, &svc, &day, &s, &e); err != nil {
						t.Fatal(err)
					}
					exec(`DELETE FROM appt_slots WHERE id = ?`, id)
					exec(`INSERT INTO appt_slots (place_id, service_id, day, starts_at, ends_at, start_s, end_s, capacity) VALUES (?, ?, ?, ?, ?, ?, ?, 1)`,
						place, svc, day, time.Unix(s+60, 0).UTC(), time.Unix(e+60, 0).UTC(), s+60, e+60)
				case 2:
					if err := f.m.AddClosing(f.ctx, f.org, 0, fmt.Sprintf("2026-04-%02d", 1+rng.IntN(28)), "fermé"); err != nil {
						t.Fatal(err)
					}
				case 3:
					p := pids[rng.IntN(6)].(int64)
					for _, s := range svcs {
						_ = f.m.SaveDayRule(f.ctx, DayRule{PlaceID: p, ServiceID: s.ID, Day: fmt.Sprintf("2026-03-%02d", 20+rng.IntN(10)),
							Ranges: []Range{{"09:00", "11:00"}}, SlotMinutes: 25, Capacity: 2}) // an offer the place lacks is refused: no matter
					}
				}
				f.clock.Add(time.Duration(rng.IntN(40)) * time.Hour)
			}
			if nonEmpty < 10 {
				t.Errorf("only %d answers with slots: the comparison proves little", nonEmpty)
			}
		})
	}
}
