package theme

import (
	"context"
	"time"

	"parvis.org/parvis/kernel/store"
)

// Read and write access for the suites module, which installs and exports an
// organisation's look as part of a suite file.

// Load returns the stored look of org; ok is false when the organisation never chose one
// (then t is the default look).
func Load(ctx context.Context, q store.Querier, org int64) (t Theme, ok bool, err error) {
	return load(ctx, q, org)
}

// Save checks t and writes it as the look of org in tx. Call Forget on the theme module
// of this node after the commit.
func Save(ctx context.Context, tx *store.Tx, org int64, t Theme, at time.Time) error {
	t = t.Normalize()
	if err := t.Validate(); err != nil {
		return err
	}
	return save(ctx, tx, org, t, 0, at)
}

// Forget drops this node's cached look of org (other nodes refresh within cacheTTL) and
// tells the subscribers (the portal drops the pages that show it), as a save from the
// theme page does. Call it after the transaction that saved the theme has committed.
func (m *Module) Forget(org int64) {
	m.changedOn(context.Background(), org) // forgets, then tells
}
