package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Attempts counts attempts (failed sign-ins, mails asked for…) per scope over a sliding
// window, in the database so that the limits hold across nodes: one row per attempt in a
// table the calling module owns, with the columns scope (TEXT) and at (TIMESTAMP), indexed
// on (scope, at). Scopes name what is counted: "account:lea@example.org", "ip:203.0.113.9".
type Attempts struct {
	Table string
}

// Add records an attempt of scope at a time.
func (a Attempts) Add(ctx context.Context, q Querier, scope string, at time.Time) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO `+a.Table+` (scope, at) VALUES (?, ?)`, scope, at); err != nil {
		return fmt.Errorf("%s: add: %w", a.Table, err)
	}
	return nil
}

// Count returns how many attempts of scope happened after since.
func (a Attempts) Count(ctx context.Context, q Querier, scope string, since time.Time) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+a.Table+` WHERE scope = ? AND at > ?`, scope, since).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: count: %w", a.Table, err)
	}
	return n, nil
}

// Oldest returns the time of the oldest attempt of scope after since (zero when none): the
// window reopens a window's length after it.
func (a Attempts) Oldest(ctx context.Context, q Querier, scope string, since time.Time) (time.Time, error) {
	var at sql.NullTime
	// MIN over a TIMESTAMP column comes back as text on SQLite: take the oldest row instead.
	err := q.QueryRowContext(ctx, `SELECT at FROM `+a.Table+` WHERE scope = ? AND at > ? ORDER BY at LIMIT 1`, scope, since).Scan(&at)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, fmt.Errorf("%s: oldest: %w", a.Table, err)
	}
	return at.Time.UTC(), nil
}

// Clear forgets the attempts of scope (after a successful sign-in, for instance).
func (a Attempts) Clear(ctx context.Context, q Querier, scope string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM `+a.Table+` WHERE scope = ?`, scope); err != nil {
		return fmt.Errorf("%s: clear: %w", a.Table, err)
	}
	return nil
}

// Purge drops the attempts older than before (no window is that long).
func (a Attempts) Purge(ctx context.Context, q Querier, before time.Time) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM `+a.Table+` WHERE at < ?`, before); err != nil {
		return fmt.Errorf("%s: purge: %w", a.Table, err)
	}
	return nil
}
