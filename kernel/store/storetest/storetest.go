// Package storetest gives tests a fresh, isolated database: a SQLite file in a temporary
// folder always, and a PostgreSQL schema of its own when PARVIS_TEST_POSTGRES holds a URL
// (postgres://postgres@127.0.0.1:5432/postgres, say). Each test gets its own, so the suite
// runs in parallel.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"parvis.org/parvis/kernel/store"
)

// Engines returns the engines to run store tests on: sqlite always, postgres when set.
func Engines() []store.Dialect {
	if os.Getenv("PARVIS_TEST_POSTGRES") != "" {
		return []store.Dialect{store.SQLite, store.Postgres}
	}
	return []store.Dialect{store.SQLite}
}

// Each runs f as a subtest on every engine, each with a fresh database.
func Each(t *testing.T, f func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Engines() {
		t.Run(string(d), func(t *testing.T) {
			f(t, Open(t, d))
		})
	}
}

// Open returns a fresh database of dialect d, closed and dropped when the test ends. It
// skips the test for PostgreSQL when PARVIS_TEST_POSTGRES is not set.
func Open(t testing.TB, d store.Dialect) *store.DB {
	t.Helper()
	dsn := URL(t, d)
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// URL returns the PARVIS_DATABASE value of a fresh database of dialect d (a new SQLite file,
// or a new PostgreSQL schema dropped at cleanup), for tests that start whole processes.
func URL(t testing.TB, d store.Dialect) string {
	t.Helper()
	if d == store.SQLite {
		return "sqlite:" + filepath.Join(t.TempDir(), "parvis.db")
	}
	base := os.Getenv("PARVIS_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("PARVIS_TEST_REQUIRE_ALL") != "" {
			t.Fatal("PARVIS_TEST_POSTGRES is not set but PARVIS_TEST_REQUIRE_ALL is: CI must run every test")
		}
		t.Skip("PostgreSQL tests skipped: PARVIS_TEST_POSTGRES is not set")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("postgres: create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("PARVIS_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
