package appointments

import (
	"strings"
	"testing"

	"parvis.org/parvis/kernel/errs"
)

// TestCapabilityTokens: tokens start with the reference and carry 128 random (or keyed)
// bits; a token is accepted only whole, for its own appointment; clearing the stored hash
// revokes it; tokens issued before migration 00005 (no reference) still work on the rows
// marked legacy_tokens, and new rows never enter the legacy indexes.
func TestCapabilityTokens(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		s := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-03", "09:00")
		a, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID, OrgID: f.org}, Details{Name: "Léa", Email: "lea@example.fr", Answers: map[string]string{"motif": "Renouvellement"}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID, OrgID: f.org}, Details{Name: "Max", Email: "max@example.fr", Answers: map[string]string{"motif": "Renouvellement"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{a.CancelToken, a.ManageToken} {
			ref, legacy, ok := tokenRef(tok)
			if !ok || legacy || ref != a.Ref || len(tok) != len(a.Ref)+22 {
				t.Fatalf("token %q: ref %q legacy %v ok %v", tok, ref, legacy, ok)
			}
			got, err := f.m.ByToken(f.ctx, tok)
			if err != nil || got.ID != a.ID {
				t.Fatalf("ByToken(%q) = %v, %v", tok, got, err)
			}
		}
		if a.CancelToken == a.ManageToken {
			t.Fatal("cancel and manage tokens are the same")
		}
		secret := a.CancelToken[len(a.Ref):]
		bad := []string{
			"",                              // empty
			secret,                          // the secret alone (a legacy-looking token that was never issued)
			b.Ref + secret,                  // a's secret on b's reference
			a.Ref + secret[:21],             // truncated
			a.Ref + secret + "x",            // extended
			strings.ToLower(a.Ref) + secret, // reference not in the alphabet
			"AAAAA-AAAAA" + secret,          // a reference that does not exist
			a.Ref + strings.Repeat("A", 22), // forged secret
		}
		for _, tok := range bad {
			if got, err := f.m.ByToken(f.ctx, tok); errs.CodeOf(err) != errs.NotFound {
				t.Errorf("ByToken(%q) = %v, %v; want not found", tok, got, err)
			}
		}
		// New rows are not in the legacy indexes.
		if n := f.count(t, `SELECT COUNT(*) FROM appt_appointments WHERE legacy_tokens = 1`); n != 0 {
			t.Errorf("%d new appointments marked legacy_tokens", n)
		}

		// A token mailed before the migration: no reference, found by hash on a legacy row.
		old, oldHash := "q8Yw0cJ2mVxL5tKp3nRz7A", hashToken("q8Yw0cJ2mVxL5tKp3nRz7A")
		if _, err := f.DB.Write().ExecContext(f.ctx, `UPDATE appt_appointments SET legacy_tokens = 1, manage_hash = ? WHERE id = ?`, oldHash, b.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := f.m.ByToken(f.ctx, old); err != nil || got.ID != b.ID {
			t.Fatalf("legacy manage token: %v, %v", got, err)
		}
		// Revocation: a cancelled appointment's hashes are cleared, its tokens then fail.
		if _, err := f.m.Cancel(f.ctx, a.CancelToken, ""); err != nil {
			t.Fatal(err)
		}
		if got, err := f.m.ByToken(f.ctx, a.CancelToken); err == nil && got.Status != StatusCancelled {
			t.Fatalf("after cancel: %+v", got)
		}

		// Holds: the hold token names its reference too, and only the whole token finds it.
		s2 := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-03", "10:00")
		h, err := f.m.Hold(f.ctx, HoldRequest{SlotID: s2.ID, OrgID: f.org})
		if err != nil {
			t.Fatal(err)
		}
		if ref, legacy, ok := tokenRef(h.HoldToken); !ok || legacy || ref != h.Ref {
			t.Fatalf("hold token %q", h.HoldToken)
		}
		if got, err := f.m.ByHoldToken(f.ctx, h.HoldToken); err != nil || got.ID != h.ID {
			t.Fatalf("ByHoldToken: %v, %v", got, err)
		}
		if _, err := f.m.ByHoldToken(f.ctx, h.Ref+strings.Repeat("B", 22)); errs.CodeOf(err) != errs.NotFound {
			t.Fatalf("forged hold token: %v", err)
		}
	})
}
