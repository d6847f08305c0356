package citizen

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"parvis.org/parvis/kernel/store"
)

// Query functions, grouped per table. Every time passed in is UTC.

const accountCols = `id, email, name, password_hash, lang, verified_at, created_at, updated_at`

func scanAccount(row interface{ Scan(...any) error }) (Account, error) {
	var (
		a        Account
		verified sql.NullTime
	)
	err := row.Scan(&a.ID, &a.Email, &a.Name, &a.passwordHash, &a.Lang, &verified, &a.CreatedAt, &a.UpdatedAt)
	if verified.Valid {
		t := verified.Time.UTC()
		a.VerifiedAt = &t
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, err
}

func insertAccount(ctx context.Context, q store.Querier, a *Account) error {
	err := q.QueryRowContext(ctx, `INSERT INTO citizen_accounts (email, name, password_hash, lang, verified_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		a.Email, a.Name, a.passwordHash, a.Lang, nullTime(a.VerifiedAt), a.CreatedAt, a.UpdatedAt).Scan(&a.ID)
	if err != nil {
		return fmt.Errorf("insert account: %w", err)
	}
	return nil
}

func accountByEmail(ctx context.Context, q store.Querier, email string) (Account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, `SELECT `+accountCols+` FROM citizen_accounts WHERE email = ?`, email))
	return a, store.NotFound(err, "citizen account")
}

func accountByID(ctx context.Context, q store.Querier, id int64) (Account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, `SELECT `+accountCols+` FROM citizen_accounts WHERE id = ?`, id))
	return a, store.NotFound(err, "citizen account")
}

func updateAccount(ctx context.Context, q store.Querier, a Account) error {
	res, err := q.ExecContext(ctx, `UPDATE citizen_accounts SET email = ?, name = ?, password_hash = ?, lang = ?,
		verified_at = ?, updated_at = ? WHERE id = ?`,
		a.Email, a.Name, a.passwordHash, a.Lang, nullTime(a.VerifiedAt), a.UpdatedAt, a.ID)
	if err != nil {
		return fmt.Errorf("update account: %w", err)
	}
	return mustAffect(res, "citizen account")
}

func deleteAccount(ctx context.Context, q store.Querier, id int64) error {
	res, err := q.ExecContext(ctx, `DELETE FROM citizen_accounts WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	return mustAffect(res, "citizen account")
}

func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// session is a row of citizen_sessions; id is the hash of the cookie value.
type session struct {
	ID         string
	AccountID  int64 // 0: a guest session
	GuestEmail string
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// signedIn returns a live session and, for an account's session, the account, in one
// query (the citizen middleware's look-up on every request carrying the cookie).
func signedIn(ctx context.Context, q store.Querier, id string, now time.Time) (session, *Account, error) {
	var (
		s                              session
		acc, aID                       sql.NullInt64
		guest, email, name, hash, lang sql.NullString
		verified, aCreated, aUpdated   sql.NullTime
	)
	err := q.QueryRowContext(ctx, `SELECT s.id, s.account_id, s.guest_email, s.created_at, s.expires_at,
			a.id, a.email, a.name, a.password_hash, a.lang, a.verified_at, a.created_at, a.updated_at
		FROM citizen_sessions s LEFT JOIN citizen_accounts a ON a.id = s.account_id
		WHERE s.id = ? AND s.expires_at > ?`, id, now).
		Scan(&s.ID, &acc, &guest, &s.CreatedAt, &s.ExpiresAt, &aID, &email, &name, &hash, &lang, &verified, &aCreated, &aUpdated)
	if err != nil {
		return s, nil, store.NotFound(err, "citizen session")
	}
	s.AccountID, s.GuestEmail = acc.Int64, guest.String
	s.CreatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	if !acc.Valid {
		return s, nil, nil
	}
	if !aID.Valid {
		return s, nil, fmt.Errorf("citizen account: %w", store.ErrNotFound)
	}
	a := &Account{ID: aID.Int64, Email: email.String, Name: name.String, passwordHash: hash.String, Lang: lang.String,
		CreatedAt: aCreated.Time.UTC(), UpdatedAt: aUpdated.Time.UTC()}
	if verified.Valid {
		t := verified.Time.UTC()
		a.VerifiedAt = &t
	}
	return s, a, nil
}

func insertSession(ctx context.Context, q store.Querier, s session) error {
	var acc any
	if s.AccountID != 0 {
		acc = s.AccountID
	}
	_, err := q.ExecContext(ctx, `INSERT INTO citizen_sessions (id, account_id, guest_email, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?)`, s.ID, acc, nullString(s.GuestEmail), s.CreatedAt, s.ExpiresAt)
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

// sessionByID returns a live session (not expired at now).
func sessionByID(ctx context.Context, q store.Querier, id string, now time.Time) (session, error) {
	var (
		s     session
		acc   sql.NullInt64
		guest sql.NullString
	)
	err := q.QueryRowContext(ctx, `SELECT id, account_id, guest_email, created_at, expires_at FROM citizen_sessions
		WHERE id = ? AND expires_at > ?`, id, now).Scan(&s.ID, &acc, &guest, &s.CreatedAt, &s.ExpiresAt)
	if err != nil {
		return s, store.NotFound(err, "citizen session")
	}
	s.AccountID, s.GuestEmail = acc.Int64, guest.String
	s.CreatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	return s, nil
}

func extendSession(ctx context.Context, q store.Querier, id string, until time.Time) error {
	_, err := q.ExecContext(ctx, `UPDATE citizen_sessions SET expires_at = ? WHERE id = ?`, until, id)
	if err != nil {
		return fmt.Errorf("extend session: %w", err)
	}
	return nil
}

func setSessionGuest(ctx context.Context, q store.Querier, id, email string) error {
	_, err := q.ExecContext(ctx, `UPDATE citizen_sessions SET guest_email = ? WHERE id = ?`, email, id)
	if err != nil {
		return fmt.Errorf("session guest: %w", err)
	}
	return nil
}

func deleteSession(ctx context.Context, q store.Querier, id string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM citizen_sessions WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// deleteSessionsOf removes every session of an account except keep ("" for all).
func deleteSessionsOf(ctx context.Context, q store.Querier, accountID int64, keep string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM citizen_sessions WHERE account_id = ? AND id <> ?`, accountID, keep); err != nil {
		return fmt.Errorf("delete sessions: %w", err)
	}
	return nil
}

// token is a row of citizen_tokens.
type token struct {
	Hash      string
	Kind      string
	AccountID int64
	Email     string
	ReturnTo  string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// Token kinds.
const (
	kindVerify      = "verify"       // confirms the email of a new account
	kindMagic       = "magic"        // signs in without a password
	kindEmailChange = "email_change" // confirms a new email address
	kindGuest       = "guest"        // proves a guest owns an email
)

func insertToken(ctx context.Context, q store.Querier, t token) error {
	var acc any
	if t.AccountID != 0 {
		acc = t.AccountID
	}
	_, err := q.ExecContext(ctx, `INSERT INTO citizen_tokens (hash, kind, account_id, email, return_to, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, t.Hash, t.Kind, acc, t.Email, t.ReturnTo, t.CreatedAt, t.ExpiresAt)
	if err != nil {
		return fmt.Errorf("insert token: %w", err)
	}
	return nil
}

func tokenByHash(ctx context.Context, q store.Querier, hash string) (token, error) {
	var (
		t    token
		acc  sql.NullInt64
		used sql.NullTime
	)
	err := q.QueryRowContext(ctx, `SELECT hash, kind, account_id, email, return_to, created_at, expires_at, used_at
		FROM citizen_tokens WHERE hash = ?`, hash).Scan(&t.Hash, &t.Kind, &acc, &t.Email, &t.ReturnTo, &t.CreatedAt, &t.ExpiresAt, &used)
	if err != nil {
		return t, store.NotFound(err, "citizen token")
	}
	t.AccountID = acc.Int64
	t.CreatedAt, t.ExpiresAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	if used.Valid {
		u := used.Time.UTC()
		t.UsedAt = &u
	}
	return t, nil
}

// useToken marks a token used; it fails with ErrNotFound if it was used meanwhile, so two
// concurrent clicks cannot both succeed.
func useToken(ctx context.Context, q store.Querier, hash string, now time.Time) error {
	res, err := q.ExecContext(ctx, `UPDATE citizen_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL`, now, hash)
	if err != nil {
		return fmt.Errorf("use token: %w", err)
	}
	return mustAffect(res, "unused citizen token")
}

// attempts counts sign-in failures and mails asked for, per scope (store.Attempts).
var attempts = store.Attempts{Table: "citizen_attempts"}

// purge removes expired sessions, tokens and old attempts; run now and then on a write.
func purge(ctx context.Context, q store.Querier, now time.Time) error {
	for _, s := range []struct {
		sql string
		at  time.Time
	}{
		{`DELETE FROM citizen_sessions WHERE expires_at < ?`, now},
		{`DELETE FROM citizen_tokens WHERE expires_at < ?`, now.Add(-24 * time.Hour)},
	} {
		if _, err := q.ExecContext(ctx, s.sql, s.at); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
	}
	return attempts.Purge(ctx, q, now.Add(-24*time.Hour))
}

func identityAccount(ctx context.Context, q store.Querier, provider, subject string) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT account_id FROM citizen_identities WHERE provider = ? AND subject = ?`, provider, subject).Scan(&id)
	return id, store.NotFound(err, "citizen identity")
}

func insertIdentity(ctx context.Context, q store.Querier, provider, subject string, accountID int64, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO citizen_identities (provider, subject, account_id, created_at) VALUES (?, ?, ?, ?)`,
		provider, subject, accountID, now)
	if err != nil {
		return fmt.Errorf("insert identity: %w", err)
	}
	return nil
}

func identitiesOf(ctx context.Context, q store.Querier, accountID int64) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT provider FROM citizen_identities WHERE account_id = ? ORDER BY provider`, accountID)
	if err != nil {
		return nil, fmt.Errorf("identities: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
