package audit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"parvis.org/parvis/kernel/store"
)

// The SQL of the audit log. Where the engines differ, both versions sit side by side.

// lockHead reads the chain head and, on PostgreSQL, locks its row until commit so that
// appends from every node serialise. On SQLite the write transaction is IMMEDIATE: it
// already holds the database's write lock.
var lockHead = map[store.Dialect]string{
	store.SQLite:   `SELECT seq, hash FROM audit_head WHERE id = 1`,
	store.Postgres: `SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`,
}

const (
	entryCols = `seq, at, org_id, actor_id, actor, client_ip, request_id, action, resource_type, resource_id, before_json, after_json, prev_hash, hash`

	insertEntry = `INSERT INTO audit_entries (` + entryCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	moveHead = `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`

	readHead = `SELECT seq, hash FROM audit_head WHERE id = 1`

	walkEntries = `SELECT ` + entryCols + ` FROM audit_entries ORDER BY seq`
)

func appendEntry(ctx context.Context, tx *store.Tx, e *Entry) error {
	var headSeq int64
	var headHash string
	if err := tx.QueryRowContext(ctx, lockHead[tx.Dialect]).Scan(&headSeq, &headHash); err != nil {
		return fmt.Errorf("reading the chain head: %w", err)
	}
	e.Seq, e.PrevHash = headSeq+1, headHash
	e.Hash = ComputeHash(e)
	if _, err := tx.ExecContext(ctx, insertEntry, e.Seq, e.At, e.OrgID, e.ActorID, e.Actor, e.ClientIP, e.RequestID,
		e.Action, e.ResourceType, e.ResourceID, nullable(e.Before), nullable(e.After), e.PrevHash, e.Hash); err != nil {
		return fmt.Errorf("appending entry %d: %w", e.Seq, err)
	}
	if _, err := tx.ExecContext(ctx, moveHead, e.Seq, e.Hash); err != nil {
		return fmt.Errorf("moving the chain head to %d: %w", e.Seq, err)
	}
	return nil
}

func nullable(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

type scanner interface{ Scan(dest ...any) error }

func scanEntry(s scanner) (*Entry, error) {
	var e Entry
	var before, after sql.NullString
	if err := s.Scan(&e.Seq, &e.At, &e.OrgID, &e.ActorID, &e.Actor, &e.ClientIP, &e.RequestID, &e.Action,
		&e.ResourceType, &e.ResourceID, &before, &after, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.At = e.At.UTC()
	if before.Valid {
		e.Before = &before.String
	}
	if after.Valid {
		e.After = &after.String
	}
	return &e, nil
}

// Filter selects entries for the back-office page.
type Filter struct {
	OrgID   int64
	AllOrgs bool // the instance-level view of superadmins; OrgID is then ignored

	Actor        string    // substring of the actor, case-insensitive
	Action       string    // exact
	ResourceType string    // exact
	ResourceID   string    // exact
	From, To     time.Time // From ≤ at < To; zero means unbounded

	// Keyset pagination on seq: at most one of Before and After.
	Before int64 // entries older than this seq (newest first)
	After  int64 // entries newer than this seq
	Limit  int
}

// Page is one page of entries, newest first.
type Page struct {
	Entries      []*Entry
	Newer, Older bool // whether entries exist on either side
}

func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	if !f.AllOrgs {
		conds, args = append(conds, "org_id = ?"), append(args, f.OrgID)
	}
	if f.Actor != "" {
		conds, args = append(conds, `LOWER(actor) LIKE ? ESCAPE '\'`), append(args, "%"+likeEscape(strings.ToLower(f.Actor))+"%")
	}
	if f.Action != "" {
		conds, args = append(conds, "action = ?"), append(args, f.Action)
	}
	if f.ResourceType != "" {
		conds, args = append(conds, "resource_type = ?"), append(args, f.ResourceType)
	}
	if f.ResourceID != "" {
		conds, args = append(conds, "resource_id = ?"), append(args, f.ResourceID)
	}
	if !f.From.IsZero() {
		conds, args = append(conds, "at >= ?"), append(args, f.From.UTC())
	}
	if !f.To.IsZero() {
		conds, args = append(conds, "at < ?"), append(args, f.To.UTC())
	}
	if len(conds) == 0 {
		return "1 = 1", nil
	}
	return strings.Join(conds, " AND "), args
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// List returns a page of entries matching f, newest first.
func (l *Log) List(ctx context.Context, f Filter) (*Page, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	where, args := f.where()
	q := l.db.Read()
	var query string
	switch {
	case f.After > 0:
		query = `SELECT ` + entryCols + ` FROM audit_entries WHERE ` + where + ` AND seq > ? ORDER BY seq ASC LIMIT ?`
		args = append(args, f.After, f.Limit+1)
	case f.Before > 0:
		query = `SELECT ` + entryCols + ` FROM audit_entries WHERE ` + where + ` AND seq < ? ORDER BY seq DESC LIMIT ?`
		args = append(args, f.Before, f.Limit+1)
	default:
		query = `SELECT ` + entryCols + ` FROM audit_entries WHERE ` + where + ` ORDER BY seq DESC LIMIT ?`
		args = append(args, f.Limit+1)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: listing: %w", err)
	}
	defer rows.Close()
	p := &Page{}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("audit: listing: %w", err)
		}
		p.Entries = append(p.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: listing: %w", err)
	}
	more := len(p.Entries) > f.Limit
	if more {
		p.Entries = p.Entries[:f.Limit]
	}
	if f.After > 0 {
		for i, j := 0, len(p.Entries)-1; i < j; i, j = i+1, j-1 {
			p.Entries[i], p.Entries[j] = p.Entries[j], p.Entries[i]
		}
		p.Newer = more
		p.Older, err = l.exists(ctx, f, "seq <= ?", f.After)
	} else {
		p.Older = more
		if f.Before > 0 {
			p.Newer, err = l.exists(ctx, f, "seq >= ?", f.Before)
		}
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (l *Log) exists(ctx context.Context, f Filter, cond string, seq int64) (bool, error) {
	where, args := f.where()
	var one int
	err := l.db.Read().QueryRowContext(ctx, `SELECT 1 FROM audit_entries WHERE `+where+` AND `+cond+` LIMIT 1`,
		append(args, seq)...).Scan(&one)
	if err == sql.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("audit: paging: %w", err)
	}
	return true, nil
}

// Get returns entry seq if it belongs to organisation orgID (any organisation when allOrgs),
// or an error wrapping store.ErrNotFound.
func (l *Log) Get(ctx context.Context, seq, orgID int64, allOrgs bool) (*Entry, error) {
	query, args := `SELECT `+entryCols+` FROM audit_entries WHERE seq = ? AND org_id = ?`, []any{seq, orgID}
	if allOrgs {
		query, args = `SELECT `+entryCols+` FROM audit_entries WHERE seq = ?`, []any{seq}
	}
	e, err := scanEntry(l.db.Read().QueryRowContext(ctx, query, args...))
	if err != nil {
		return nil, store.NotFound(err, fmt.Sprintf("audit entry %d", seq))
	}
	return e, nil
}
