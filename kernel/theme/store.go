package theme

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"parvis.org/parvis/kernel/store"
)

// load returns the stored theme of org; ok is false when the organisation has none.
func load(ctx context.Context, q store.Querier, org int64) (t Theme, ok bool, err error) {
	err = q.QueryRowContext(ctx, "SELECT name, logo_url, primary_colour FROM kernel_theme WHERE org_id = ?", org).
		Scan(&t.Name, &t.LogoURL, &t.Primary)
	if errors.Is(err, sql.ErrNoRows) {
		return Default(), false, nil
	}
	if err != nil {
		return Theme{}, false, fmt.Errorf("theme of organisation %d: %w", org, err)
	}
	return t, true, nil
}

// save writes the theme of org in tx. by is the agent making the change (0 for none).
func save(ctx context.Context, tx *store.Tx, org int64, t Theme, by int64, at time.Time) error {
	var agent any
	if by != 0 {
		agent = by
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO kernel_theme (org_id, name, logo_url, primary_colour, updated_at, updated_by)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (org_id) DO UPDATE SET name = excluded.name, logo_url = excluded.logo_url,
    primary_colour = excluded.primary_colour, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		org, t.Name, t.LogoURL, t.Primary, at.UTC(), agent)
	if err != nil {
		return fmt.Errorf("saving theme of organisation %d: %w", org, err)
	}
	return nil
}
