package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/token"
	"parvis.org/parvis/kernel/web"
)

// Recovery codes. An agent who turns on two-step verification is given ten one-time codes
// to keep on paper: each signs them in once in place of an authenticator code, for the day
// the phone is lost. A code is ten characters of Crockford's base32 (50 random bits),
// shown once as "xxxxx-xxxxx"; only its SHA-256 is stored (the login throttle bounds the
// guesses). Turning the second factor off, an administrator's reset, or new codes replace
// them all.

// RecoveryCodes is how many codes an agent is given.
const RecoveryCodes = 10

// crockford is Crockford's base32 alphabet (no i, l, o, u).
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

func newRecoveryCode() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 0, 11)
	for i, c := range b {
		if i == 5 {
			out = append(out, '-')
		}
		out = append(out, crockford[c&31])
	}
	return string(out)
}

// normRecoveryCode reads a code as typed: any case, spaces and dashes ignored, and the
// letters Crockford's base32 reads as digits (i and l as 1, o as 0); "" when it cannot be
// a recovery code.
func normRecoveryCode(s string) string {
	var out []byte
	for _, c := range strings.ToLower(s) {
		switch {
		case c == ' ' || c == '-' || c == '\t':
			continue
		case c == 'i' || c == 'l':
			c = '1'
		case c == 'o':
			c = '0'
		}
		if c > 127 || !strings.ContainsRune(crockford, c) {
			return ""
		}
		out = append(out, byte(c))
	}
	if len(out) != 10 {
		return ""
	}
	return string(out)
}

// NewRecoveryCodes replaces agentID's recovery codes by fresh ones, returned for showing once.
func (s *Store) NewRecoveryCodes(ctx context.Context, tx *store.Tx, agentID int64) ([]string, error) {
	if err := s.DeleteRecoveryCodes(ctx, tx, agentID); err != nil {
		return nil, err
	}
	codes := make([]string, RecoveryCodes)
	for i := range codes {
		codes[i] = newRecoveryCode()
		if _, err := tx.ExecContext(ctx, `INSERT INTO auth_recovery_codes (agent_id, code_hash) VALUES (?, ?)`,
			agentID, token.Hash(normRecoveryCode(codes[i]))); err != nil {
			return nil, fmt.Errorf("recovery code: %w", err)
		}
	}
	return codes, nil
}

// DeleteRecoveryCodes removes agentID's recovery codes.
func (s *Store) DeleteRecoveryCodes(ctx context.Context, tx *store.Tx, agentID int64) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM auth_recovery_codes WHERE agent_id = ?`, agentID)
	return err
}

// UseRecoveryCode spends one of agentID's unused codes; false when code is none of them.
// Of two sign-ins racing with one code, one only spends it.
func (s *Store) UseRecoveryCode(ctx context.Context, tx *store.Tx, agentID int64, code string, now time.Time) (bool, error) {
	code = normRecoveryCode(code)
	if code == "" {
		return false, nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE auth_recovery_codes SET used_at = ? WHERE agent_id = ? AND code_hash = ? AND used_at IS NULL`,
		now, agentID, token.Hash(code))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RecoveryCodesLeft counts agentID's unused recovery codes.
func (s *Store) RecoveryCodesLeft(ctx context.Context, q store.Querier, agentID int64) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_recovery_codes WHERE agent_id = ? AND used_at IS NULL`, agentID).Scan(&n)
	return n, err
}

// showRecoveryCodes renders the codes, once, with what to do with them.
func (m *Module) showRecoveryCodes(w http.ResponseWriter, r *http.Request, codes []string) {
	w.Header().Set("Cache-Control", "no-store")
	m.render(w, r, web.Page{Name: "totp_codes.html", Title: "kernel.auth.recovery.title", Form: web.NewForm(nil), Data: codes})
}

// newRecoveryCodes gives the signed-in agent new codes, after checking their password.
func (m *Module) newRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	a, ok := m.totpChange(w, r, "current_codes")
	if !ok {
		return
	}
	ctx := r.Context()
	var codes []string
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if codes, err = m.st.NewRecoveryCodes(ctx, tx, a.ID); err != nil {
			return err
		}
		return m.audit(ctx, tx, kernel.AuditEntry{Action: "users.recovery_codes", ResourceType: "agent", ResourceID: fmt.Sprint(a.ID)})
	})
	if err != nil {
		m.fail(w, r, err)
		return
	}
	m.showRecoveryCodes(w, r, codes)
}

// auditRecoveryUse records, in the sign-in's transaction, that a recovery code was spent.
func (m *Module) auditRecoveryUse(ctx context.Context, tx *store.Tx, a AgentRecord) error {
	// The agent is the actor (as for a password reset): they are signing in.
	return m.audit(kernel.WithAgent(ctx, toAgent(a, "")), tx, kernel.AuditEntry{Action: "users.recovery_code_used", ResourceType: "agent", ResourceID: fmt.Sprint(a.ID)})
}
