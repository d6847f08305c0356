package citizen

import (
	"context"
	"errors"
	"testing"
	"time"

	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

func migrated(t *testing.T, db *store.DB) {
	t.Helper()
	if _, err := store.Migrate(context.Background(), db, ID, sub("migrations"), nil); err != nil {
		t.Fatal(err)
	}
}

func TestStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		migrated(t, db)
		ctx := context.Background()
		now := time.Date(2026, 3, 29, 1, 30, 0, 123456000, time.UTC) // the night clocks change in Paris
		q := db.Write()
		a := &Account{Email: "anne@example.fr", Name: "Anne", Lang: "fr", CreatedAt: now, UpdatedAt: now, passwordHash: "h"}
		if err := insertAccount(ctx, q, a); err != nil {
			t.Fatal(err)
		}

		t.Run("accounts", func(t *testing.T) {
			for _, tc := range []struct {
				name  string
				run   func() error
				check func(t *testing.T, err error)
			}{
				{"duplicate email is a unique violation", func() error {
					return insertAccount(ctx, q, &Account{Email: "anne@example.fr", Name: "X", CreatedAt: now, UpdatedAt: now})
				}, func(t *testing.T, err error) {
					if !store.IsUniqueViolation(err) {
						t.Fatalf("want unique violation, got %v", err)
					}
				}},
				{"read back by email with times intact", func() error {
					got, err := accountByEmail(ctx, db.Read(), "anne@example.fr")
					if err == nil && (!got.CreatedAt.Equal(now) || got.VerifiedAt != nil || got.passwordHash != "h" || got.ID != a.ID) {
						t.Fatalf("read back %+v", got)
					}
					return err
				}, nil},
				{"verify round-trips a nullable time", func() error {
					v := now.Add(time.Hour)
					b := *a
					b.VerifiedAt = &v
					if err := updateAccount(ctx, q, b); err != nil {
						return err
					}
					got, err := accountByID(ctx, db.Read(), a.ID)
					if err == nil && (got.VerifiedAt == nil || !got.VerifiedAt.Equal(v)) {
						t.Fatalf("verified_at = %v, want %v", got.VerifiedAt, v)
					}
					return err
				}, nil},
				{"unknown email is ErrNotFound", func() error {
					_, err := accountByEmail(ctx, db.Read(), "nobody@example.fr")
					return err
				}, func(t *testing.T, err error) {
					if !errors.Is(err, store.ErrNotFound) {
						t.Fatalf("want ErrNotFound, got %v", err)
					}
				}},
				{"update of a missing account is ErrNotFound", func() error {
					return updateAccount(ctx, q, Account{ID: 999999, Email: "x@example.fr", UpdatedAt: now})
				}, func(t *testing.T, err error) {
					if !errors.Is(err, store.ErrNotFound) {
						t.Fatalf("want ErrNotFound, got %v", err)
					}
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					err := tc.run()
					if tc.check != nil {
						tc.check(t, err)
					} else if err != nil {
						t.Fatal(err)
					}
				})
			}
		})

		t.Run("sessions", func(t *testing.T) {
			live := session{ID: "live", AccountID: a.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			guest := session{ID: "guest", GuestEmail: "g@example.fr", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			dead := session{ID: "dead", AccountID: a.ID, CreatedAt: now, ExpiresAt: now.Add(-time.Second)}
			for _, s := range []session{live, guest, dead} {
				if err := insertSession(ctx, q, s); err != nil {
					t.Fatal(err)
				}
			}
			for _, tc := range []struct {
				id      string
				found   bool
				account int64
				guest   string
			}{
				{"live", true, a.ID, ""},
				{"guest", true, 0, "g@example.fr"},
				{"dead", false, 0, ""},
				{"nope", false, 0, ""},
			} {
				s, err := sessionByID(ctx, db.Read(), tc.id, now)
				if tc.found != (err == nil) || (err != nil && !errors.Is(err, store.ErrNotFound)) {
					t.Fatalf("%s: err = %v", tc.id, err)
				}
				if tc.found && (s.AccountID != tc.account || s.GuestEmail != tc.guest || !s.ExpiresAt.Equal(now.Add(time.Hour))) {
					t.Fatalf("%s: got %+v", tc.id, s)
				}
			}
			if err := deleteSessionsOf(ctx, q, a.ID, "live"); err != nil {
				t.Fatal(err)
			}
			if _, err := sessionByID(ctx, db.Read(), "live", now); err != nil {
				t.Fatalf("kept session gone: %v", err)
			}
			if err := purge(ctx, q, now); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("tokens are single use", func(t *testing.T) {
			tk := token{Hash: "h1", Kind: kindMagic, AccountID: a.ID, Email: a.Email, CreatedAt: now, ExpiresAt: now.Add(magicTTL)}
			if err := insertToken(ctx, q, tk); err != nil {
				t.Fatal(err)
			}
			if err := useToken(ctx, q, "h1", now); err != nil {
				t.Fatal(err)
			}
			if err := useToken(ctx, q, "h1", now); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("second use: want ErrNotFound, got %v", err)
			}
			got, err := tokenByHash(ctx, db.Read(), "h1")
			if err != nil || got.UsedAt == nil || !got.UsedAt.Equal(now) || got.Kind != kindMagic || !got.ExpiresAt.Equal(now.Add(magicTTL)) {
				t.Fatalf("token %+v, %v", got, err)
			}
		})

		t.Run("attempts count within the window", func(t *testing.T) {
			for i := range 4 {
				if err := attempts.Add(ctx, q, "login:x", now.Add(time.Duration(i)*time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			for _, tc := range []struct {
				since  time.Time
				n      int
				oldest time.Time
			}{
				{now.Add(-time.Minute), 4, now},
				{now.Add(90 * time.Second), 2, now.Add(2 * time.Minute)},
				{now.Add(time.Hour), 0, time.Time{}},
			} {
				n, err := attempts.Count(ctx, db.Read(), "login:x", tc.since)
				oldest, err2 := attempts.Oldest(ctx, db.Read(), "login:x", tc.since)
				if err != nil || err2 != nil || n != tc.n || !oldest.Equal(tc.oldest) {
					t.Fatalf("since %v: %d, %v, %v; want %d, %v", tc.since, n, oldest, err, tc.n, tc.oldest)
				}
			}
			if err := attempts.Clear(ctx, q, "login:x"); err != nil {
				t.Fatal(err)
			}
			if n, _ := attempts.Count(ctx, db.Read(), "login:x", now.Add(-time.Hour)); n != 0 {
				t.Fatalf("after clear: %d", n)
			}
		})

		t.Run("deleting the account cascades", func(t *testing.T) {
			if err := insertIdentity(ctx, q, "fc", "sub-1", a.ID, now); err != nil {
				t.Fatal(err)
			}
			if id, err := identityAccount(ctx, db.Read(), "fc", "sub-1"); err != nil || id != a.ID {
				t.Fatalf("identity: %d, %v", id, err)
			}
			if err := deleteAccount(ctx, q, a.ID); err != nil {
				t.Fatal(err)
			}
			for _, query := range []string{
				`SELECT COUNT(*) FROM citizen_sessions WHERE account_id = ?`,
				`SELECT COUNT(*) FROM citizen_tokens WHERE account_id = ?`,
				`SELECT COUNT(*) FROM citizen_identities WHERE account_id = ?`,
				`SELECT COUNT(*) FROM citizen_accounts WHERE id = ?`,
			} {
				var n int
				if err := db.Read().QueryRowContext(ctx, query, a.ID).Scan(&n); err != nil || n != 0 {
					t.Fatalf("%s: %d rows left (%v)", query, n, err)
				}
			}
		})
	})
}
