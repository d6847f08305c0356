package store_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

func TestRebind(t *testing.T) {
	cases := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"x = '?' AND y = ?", "x = '?' AND y = $1"},
		{"-- what?\nz = ?", "-- what?\nz = $1"},
		{`"we?ird" = ?`, `"we?ird" = $1`},
	}
	for _, c := range cases {
		if got := store.Rebind(store.Postgres, c.in); got != c.want {
			t.Errorf("Rebind(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := store.Rebind(store.SQLite, c.in); got != c.in {
			t.Errorf("SQLite Rebind changed %q", c.in)
		}
	}
}

func TestMigrateTxAndTimes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mig := os.DirFS("testdata/migrations")
		if n, err := store.Migrate(ctx, db, "test.things", mig, nil); err != nil || n != 1 {
			t.Fatalf("migrate: %d, %v", n, err)
		}
		if n, err := store.Migrate(ctx, db, "test.things", mig, nil); err != nil || n != 0 {
			t.Fatalf("second migrate applied %d, %v", n, err)
		}
		if p, err := store.Pending(ctx, db, "test.things", mig); err != nil || p != 0 {
			t.Fatalf("pending %d %v", p, err)
		}
		at := time.Date(2026, 3, 29, 1, 30, 0, 123000000, time.UTC)
		var committed bool
		err := db.InTx(ctx, func(tx *store.Tx) error {
			tx.AfterCommit(func() { committed = true })
			_, err := tx.ExecContext(ctx, "INSERT INTO things (name, at) VALUES (?, ?)", "a", at)
			return err
		})
		if err != nil || !committed {
			t.Fatalf("insert: %v committed=%v", err, committed)
		}
		boom := errors.New("boom")
		err = db.InTx(ctx, func(tx *store.Tx) error {
			tx.AfterCommit(func() { t.Error("after-commit ran on rollback") })
			if _, err := tx.ExecContext(ctx, "INSERT INTO things (name, at) VALUES (?, ?)", "b", at); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("rollback: %v", err)
		}
		_, err = db.Write().ExecContext(ctx, "INSERT INTO things (name, at) VALUES (?, ?)", "a", at)
		if !store.IsUniqueViolation(err) {
			t.Fatalf("want unique violation, got %v", err)
		}
		var n int
		var got time.Time
		if err := db.Read().QueryRowContext(ctx, "SELECT COUNT(*) FROM things").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := db.Read().QueryRowContext(ctx, "SELECT at FROM things WHERE name = ?", "a").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if n != 1 || !got.Equal(at) {
			t.Fatalf("n=%d at=%v want 1, %v", n, got, at)
		}
		err = store.NotFound(db.Read().QueryRowContext(ctx, "SELECT id FROM things WHERE name = ?", "zz").Scan(&n), "thing zz")
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("want not found, got %v", err)
		}
	})
}

// TestSQLitePragmas: what every SQLite connection is opened with, and the writer's own
// settings (transactions begin IMMEDIATE; sub-journals in memory).
func TestSQLitePragmas(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	read := func(q store.Querier, pragma string) string {
		var v string
		if err := q.QueryRowContext(ctx, `PRAGMA `+pragma).Scan(&v); err != nil {
			t.Fatalf("%s: %v", pragma, err)
		}
		return v
	}
	for _, q := range []struct {
		name string
		q    store.Querier
	}{{"writer", db.Write()}, {"reader", db.Read()}} {
		if v := read(q.q, "journal_mode"); v != "wal" {
			t.Errorf("%s: journal_mode %s, want wal", q.name, v)
		}
		if v := read(q.q, "foreign_keys"); v != "1" {
			t.Errorf("%s: foreign_keys %s, want 1", q.name, v)
		}
		if v := read(q.q, "synchronous"); v != "1" {
			t.Errorf("%s: synchronous %s, want 1 (NORMAL)", q.name, v)
		}
	}
	if v := read(db.Write(), "temp_store"); v != "2" {
		t.Errorf("writer: temp_store %s, want 2 (MEMORY)", v)
	}
	if v := read(db.Read(), "query_only"); v != "1" {
		t.Errorf("reader: query_only %s, want 1", v)
	}
}
