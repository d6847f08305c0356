package servertest

import (
	"strings"
	"testing"

	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

// SharedURL returns the PARVIS_DATABASE value of a fresh database that several servers
// started with NewNode share, as nodes of one instance do (skipping PostgreSQL when not set).
func SharedURL(t testing.TB, d store.Dialect) string {
	t.Helper()
	return storetest.URL(t, d)
}

// NewNode starts a Parvis on the database at dsn (from SharedURL) rather than a fresh one:
// call it twice for two nodes behind one database.
func NewNode(t testing.TB, dsn string, opt Options) *Server {
	t.Helper()
	d := store.SQLite
	if strings.HasPrefix(dsn, "postgres") {
		d = store.Postgres
	}
	// config.Load keeps the last value of a setting, so this one wins over New's own.
	opt.Env = append(append([]string(nil), opt.Env...), "PARVIS_DATABASE="+dsn)
	return New(t, d, opt)
}
