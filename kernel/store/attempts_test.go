package store_test

import (
	"context"
	"testing"
	"time"

	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

// TestAttempts: counts per scope within the window, the oldest attempt, clear and purge,
// on both engines.
func TestAttempts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ts := "TIMESTAMP"
		if db.Dialect == store.Postgres {
			ts = "TIMESTAMPTZ"
		}
		if _, err := db.Write().ExecContext(ctx, `CREATE TABLE test_attempts (scope TEXT NOT NULL, at `+ts+` NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		a := store.Attempts{Table: "test_attempts"}
		q := db.Write()
		now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
		for i := range 4 {
			if err := a.Add(ctx, q, "account:lea", now.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Add(ctx, q, "ip:203.0.113.9", now.Add(-2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			scope  string
			since  time.Time
			n      int
			oldest time.Time
		}{
			{"account:lea", now.Add(-time.Minute), 4, now},
			{"account:lea", now.Add(90 * time.Second), 2, now.Add(2 * time.Minute)},
			{"account:lea", now.Add(time.Hour), 0, time.Time{}},
			{"account:max", now.Add(-time.Hour), 0, time.Time{}},
			{"ip:203.0.113.9", now.Add(-3 * time.Hour), 1, now.Add(-2 * time.Hour)},
		} {
			n, err := a.Count(ctx, db.Read(), tc.scope, tc.since)
			oldest, err2 := a.Oldest(ctx, db.Read(), tc.scope, tc.since)
			if err != nil || err2 != nil || n != tc.n || !oldest.Equal(tc.oldest) {
				t.Errorf("%s since %v: %d, %v (%v, %v); want %d, %v", tc.scope, tc.since, n, oldest, err, err2, tc.n, tc.oldest)
			}
		}
		if err := a.Purge(ctx, q, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n, _ := a.Count(ctx, db.Read(), "ip:203.0.113.9", now.Add(-3*time.Hour)); n != 0 {
			t.Errorf("purge kept %d old attempts", n)
		}
		if err := a.Clear(ctx, q, "account:lea"); err != nil {
			t.Fatal(err)
		}
		if n, _ := a.Count(ctx, db.Read(), "account:lea", now.Add(-time.Hour)); n != 0 {
			t.Errorf("clear kept %d attempts", n)
		}
	})
}
