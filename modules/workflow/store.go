package workflow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// Query functions of the module's tables, grouped here so that the SQL stays in one place.

func notFound(err error, key string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return &errs.Error{Code: errs.NotFound, Key: key, Err: store.ErrNotFound}
	}
	return err
}

const resourceCols = `id, org_id, rtype, rid, wf_key, wf_version, state, seq, unit_id, agent_id, citizen_id,
 citizen_email, lang, title, fields, labels, archived, state_since, created_at`

func scanResource(sc interface{ Scan(...any) error }) (Status, error) {
	var st Status
	var fields, labels string
	err := sc.Scan(&st.internalID, &st.OrgID, &st.Ref.Type, &st.Ref.ID, &st.Workflow, &st.Version, &st.State, &st.seq,
		&st.UnitID, &st.AgentID, &st.CitizenID, &st.CitizenEmail, &st.Lang, &st.Title, &fields, &labels, &st.Archived,
		&st.Since, &st.CreatedAt)
	if err != nil {
		return st, err
	}
	st.Since, st.CreatedAt = st.Since.UTC(), st.CreatedAt.UTC()
	if err := json.Unmarshal([]byte(fields), &st.Fields); err != nil {
		return st, fmt.Errorf("resource %s fields: %w", st.Ref, err)
	}
	if st.Fields == nil {
		st.Fields = map[string]any{}
	}
	if err := json.Unmarshal([]byte(labels), &st.Labels); err != nil {
		return st, fmt.Errorf("resource %s labels: %w", st.Ref, err)
	}
	return st, nil
}

// loadResource reads a resource; in a transaction on PostgreSQL it locks the row, so that two
// agents acting at once are serialised (SQLite transactions already hold the write lock).
func loadResource(ctx context.Context, q store.Querier, forUpdate bool, where string, args ...any) (Status, error) {
	query := "SELECT " + resourceCols + " FROM workflow_resources WHERE " + where
	if tx, ok := q.(*store.Tx); ok && forUpdate && tx.Dialect == store.Postgres {
		query += " FOR UPDATE"
	}
	st, err := scanResource(q.QueryRowContext(ctx, query, args...))
	return st, notFound(err, "workflow.error.resource_not_found")
}

func insertResource(ctx context.Context, tx *store.Tx, st *Status, now time.Time) error {
	fields, _ := json.Marshal(st.Fields)
	labels, _ := json.Marshal(nonNil(st.Labels))
	err := tx.QueryRowContext(ctx, `INSERT INTO workflow_resources (org_id, rtype, rid, wf_key, wf_version, state, seq,
 unit_id, agent_id, citizen_id, citizen_email, lang, title, fields, labels, archived, state_since, created_at, updated_at)
 VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, ?, ?, ?) RETURNING id`,
		st.OrgID, st.Ref.Type, st.Ref.ID, st.Workflow, st.Version, st.State, st.UnitID, st.AgentID, st.CitizenID,
		st.CitizenEmail, st.Lang, st.Title, string(fields), string(labels), now, now, now).Scan(&st.internalID)
	if store.IsUniqueViolation(err) {
		return errs.New(errs.Conflict, "workflow.error.already_attached")
	}
	return err
}

// saveResource writes st back; when the state changed, only if nobody moved the resource
// since it was read (seq), which is what makes a transition happen once.
func saveResource(ctx context.Context, tx *store.Tx, st *Status, oldSeq int64, now time.Time) error {
	fields, _ := json.Marshal(st.Fields)
	labels, _ := json.Marshal(nonNil(st.Labels))
	res, err := tx.ExecContext(ctx, `UPDATE workflow_resources SET state = ?, seq = ?, unit_id = ?, agent_id = ?,
 fields = ?, labels = ?, archived = ?, state_since = ?, updated_at = ? WHERE id = ? AND seq = ?`,
		st.State, st.seq, st.UnitID, st.AgentID, string(fields), string(labels), st.Archived, st.Since, now,
		st.internalID, oldSeq)
	if err != nil {
		return fmt.Errorf("save resource %s: %w", st.Ref, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.New(errs.Conflict, "workflow.error.moved")
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func insertEvent(ctx context.Context, tx *store.Tx, resourceID int64, ev Event) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO workflow_history (resource_id, at, kind, action, from_state, to_state,
 task, actor_id, actor_name, public, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		resourceID, ev.At, ev.Kind, ev.Action, ev.From, ev.To, ev.Task, ev.ActorID, ev.ActorName, ev.Public, ev.Message)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

func listEvents(ctx context.Context, q store.Querier, resourceID int64, public bool) ([]Event, error) {
	query := `SELECT id, at, kind, action, from_state, to_state, task, actor_id, actor_name, public, message
 FROM workflow_history WHERE resource_id = ?`
	if public {
		query += " AND public = TRUE"
	}
	rows, err := q.QueryContext(ctx, query+" ORDER BY id", resourceID)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var ev Event
		if err := rows.Scan(&ev.ID, &ev.At, &ev.Kind, &ev.Action, &ev.From, &ev.To, &ev.Task, &ev.ActorID,
			&ev.ActorName, &ev.Public, &ev.Message); err != nil {
			return nil, err
		}
		ev.At = ev.At.UTC()
		out = append(out, ev)
	}
	return out, rows.Err()
}

// Definitions.

func loadDefinition(ctx context.Context, q store.Querier, orgID int64, key string, version int) (*Definition, error) {
	var (
		doc string
		at  time.Time
		v   int
	)
	var err error
	if version > 0 {
		err = q.QueryRowContext(ctx, `SELECT doc, version, created_at FROM workflow_defs WHERE org_id = ? AND key = ? AND version = ?`,
			orgID, key, version).Scan(&doc, &v, &at)
	} else {
		err = q.QueryRowContext(ctx, `SELECT doc, version, created_at FROM workflow_defs WHERE org_id = ? AND key = ?
 ORDER BY version DESC LIMIT 1`, orgID, key).Scan(&doc, &v, &at)
	}
	if err != nil {
		return nil, notFound(err, "workflow.error.workflow_not_found")
	}
	var d Definition
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return nil, fmt.Errorf("workflow %s v%d: %w", key, v, err)
	}
	d.Version, d.UpdatedAt, d.OrgID = v, at.UTC(), orgID
	return &d, nil
}

func latestVersions(ctx context.Context, q store.Querier, orgID int64) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT key FROM workflow_defs WHERE org_id = ? ORDER BY key`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

func insertDefinition(ctx context.Context, tx *store.Tx, orgID int64, d *Definition, now time.Time) (int, error) {
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM workflow_defs WHERE org_id = ? AND key = ?`,
		orgID, d.Key).Scan(&v); err != nil {
		return 0, err
	}
	v++
	d.Version = v
	doc, err := json.Marshal(d)
	if err != nil {
		return 0, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO workflow_defs (org_id, key, version, title, doc, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		orgID, d.Key, v, d.Title, string(doc), now)
	if store.IsUniqueViolation(err) {
		return 0, errs.New(errs.Conflict, "workflow.error.concurrent_edit")
	}
	return v, err
}

// Inbox.

// InboxFilter selects resources for the inbox.
type InboxFilter struct {
	OrgID    int64
	All      bool    // the whole organisation
	UnitIDs  []int64 // else these units
	AgentID  int64   // "assigned to me"
	Workflow string
	State    string
	Archived bool
	Limit    int
	Offset   int
}

func (f InboxFilter) where() (string, []any) {
	w := []string{"org_id = ?", "archived = ?"}
	args := []any{f.OrgID, f.Archived}
	if !f.All {
		if len(f.UnitIDs) == 0 {
			w = append(w, "1 = 0")
		} else {
			w = append(w, "unit_id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(f.UnitIDs)), ",")+")")
			for _, u := range f.UnitIDs {
				args = append(args, u)
			}
		}
	}
	if f.AgentID != 0 {
		w, args = append(w, "agent_id = ?"), append(args, f.AgentID)
	}
	if f.Workflow != "" {
		w, args = append(w, "wf_key = ?"), append(args, f.Workflow)
	}
	return strings.Join(w, " AND "), args
}

// StateCount is the number of resources in one state of one workflow.
type StateCount struct {
	Workflow string
	State    string
	Count    int
}

func inboxCounts(ctx context.Context, q store.Querier, f InboxFilter) ([]StateCount, error) {
	w, args := f.where()
	rows, err := q.QueryContext(ctx, "SELECT wf_key, state, COUNT(*) FROM workflow_resources WHERE "+w+
		" GROUP BY wf_key, state ORDER BY wf_key, state", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StateCount
	for rows.Next() {
		var c StateCount
		if err := rows.Scan(&c.Workflow, &c.State, &c.Count); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func inboxList(ctx context.Context, q store.Querier, f InboxFilter) ([]Status, error) {
	w, args := f.where()
	if f.State != "" {
		w, args = w+" AND state = ?", append(args, f.State)
	}
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	rows, err := q.QueryContext(ctx, "SELECT "+resourceCols+" FROM workflow_resources WHERE "+w+
		" ORDER BY state_since, id LIMIT ? OFFSET ?", append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Status
	for rows.Next() {
		st, err := scanResource(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}
