package forms

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/modules/workflow"
)

// SweepArgs is the periodic job that purges expired drafts and applies retention. Each run
// schedules the next (unique per hour, so several nodes schedule one).
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "forms.sweep" }

// sweepEvery is the period of the sweep.
const sweepEvery = time.Hour

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	m *Module
}

func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	if _, err := w.m.Sweep(ctx); err != nil {
		return err
	}
	return w.m.db.InTx(ctx, func(tx *store.Tx) error { return w.m.scheduleSweep(ctx, tx, w.m.clock.Now().Add(sweepEvery)) })
}

func (m *Module) scheduleSweep(ctx context.Context, tx *store.Tx, at time.Time) error {
	return m.jobs.Enqueue(ctx, tx, SweepArgs{}, &river.InsertOpts{ScheduledAt: at,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: sweepEvery}})
}

// SweepResult counts what a sweep did.
type SweepResult struct{ Drafts, Purged, Anonymised int }

// Sweep deletes expired drafts (with their files) and applies each form's retention rule to
// its responses, recording each form's retention in the audit log.
func (m *Module) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	now := m.now()
	var gone []string
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT f.id FROM forms_files f JOIN forms_drafts d ON d.id = f.draft_id WHERE d.expires_at < ?`, now)
		if err != nil {
			return err
		}
		gone, err = scanStrings(rows)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM forms_files WHERE draft_id IN (SELECT id FROM forms_drafts WHERE expires_at < ?)`, now); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM forms_drafts WHERE expires_at < ?`, now)
		if err != nil {
			return err
		}
		n, _ := r.RowsAffected()
		res.Drafts = int(n)
		return nil
	})
	if err != nil {
		return res, err
	}
	for _, id := range gone {
		_ = os.Remove(m.filePath(id))
	}
	// Retention, form by form.
	rows, err := m.db.Read().QueryContext(ctx, `SELECT id, org_id, key, published, closed_at FROM forms_forms WHERE published > 0`)
	if err != nil {
		return res, err
	}
	type target struct {
		id, org int64
		key     string
		version int
		closed  *time.Time
	}
	var ts []target
	for rows.Next() {
		var t target
		var closed *time.Time
		if err := rows.Scan(&t.id, &t.org, &t.key, &t.version, &closed); err != nil {
			rows.Close()
			return res, err
		}
		t.closed = closed
		ts = append(ts, t)
	}
	rows.Close()
	for _, t := range ts {
		v, err := getVersion(ctx, m.db.Read(), t.id, t.version)
		if err != nil {
			return res, err
		}
		s := v.Def.Settings
		if s.RetentionMonths == 0 {
			continue
		}
		closed := t.closed
		if closed == nil {
			closed = s.ClosesAt
		}
		// The form closed long enough ago: all its responses; else those whose request
		// closed long enough ago.
		all := closed != nil && !closed.AddDate(0, s.RetentionMonths, 0).After(now)
		n, err := m.retain(ctx, t.id, t.org, t.key, s.RetentionMode, all, now.AddDate(0, -s.RetentionMonths, 0))
		if err != nil {
			return res, err
		}
		if s.RetentionMode == "anonymise" {
			res.Anonymised += n
		} else {
			res.Purged += n
		}
	}
	return res, nil
}

// retainBatch is how many responses one retention transaction handles.
const retainBatch = 200

// retain purges or anonymises a form's responses (all, or those closed before cutoff) with
// their files, messages and what the workflow holds of them, a batch per transaction, each
// recorded in the audit log. It returns how many responses it handled.
func (m *Module) retain(ctx context.Context, formID, orgID int64, key, mode string, all bool, cutoff time.Time) (int, error) {
	if mode == "" {
		mode = "purge"
	}
	where, args := `form_id = ?`, []any{formID}
	if mode == "anonymise" {
		where += ` AND anonymised = FALSE`
	}
	if !all {
		where, args = where+` AND closed_at IS NOT NULL AND closed_at <= ?`, append(args, cutoff)
	}
	total := 0
	for {
		var gone []string
		n := 0
		err := m.db.InTx(ctx, func(tx *store.Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT id, ref FROM forms_responses WHERE `+where+` ORDER BY id LIMIT `+strconv.Itoa(retainBatch), args...)
			if err != nil {
				return err
			}
			type target struct {
				id  int64
				ref string
			}
			var ts []target
			for rows.Next() {
				var t target
				if err := rows.Scan(&t.id, &t.ref); err != nil {
					rows.Close()
					return err
				}
				ts = append(ts, t)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, t := range ts {
				frows, err := tx.QueryContext(ctx, `SELECT id FROM forms_files WHERE response_id = ?`, t.id)
				if err != nil {
					return err
				}
				files, err := scanStrings(frows)
				if err != nil {
					return err
				}
				gone = append(gone, files...)
				stmts := []string{`DELETE FROM forms_files WHERE response_id = ?`, `DELETE FROM forms_messages WHERE response_id = ?`}
				if tx.Dialect == store.SQLite {
					stmts = append(stmts, `DELETE FROM forms_search WHERE rowid = ?`)
				}
				if mode == "anonymise" {
					stmts = append(stmts, `UPDATE forms_responses SET answers = '{}', search = '', email = '', citizen_id = NULL, owner_key = NULL,
 anonymised = TRUE, updated_at = ? WHERE id = ?`)
				} else {
					stmts = append(stmts, `DELETE FROM forms_responses WHERE id = ?`)
				}
				for _, q := range stmts {
					a := []any{t.id}
					if strings.HasPrefix(q, "UPDATE") {
						a = []any{m.now(), t.id}
					}
					if _, err := tx.ExecContext(ctx, q, a...); err != nil {
						return err
					}
				}
				if err := m.wf.Forget(ctx, tx, workflow.Ref{Type: ResourceType, ID: t.ref}, mode != "anonymise"); err != nil {
					return err
				}
			}
			n = len(ts)
			if n == 0 {
				return nil
			}
			return m.audit.Record(ctx, tx, kernel.AuditEntry{Action: "forms.retention." + mode, ResourceType: "form", ResourceID: key,
				After: map[string]any{"org": orgID, "responses": n}})
		})
		if err != nil {
			return total, err
		}
		for _, id := range gone {
			_ = os.Remove(m.filePath(id))
		}
		total += n
		if n < retainBatch {
			return total, nil
		}
	}
}

func scanStrings(rows interface {
	Next() bool
	Scan(...any) error
	Close() error
	Err() error
}) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
