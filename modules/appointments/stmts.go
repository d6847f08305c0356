package appointments

import (
	"context"
	"database/sql"
	"strings"
	"sync"

	"parvis.org/parvis/kernel/store"
)

// Prepared statements of the booking transaction on SQLite. The driver otherwise parses
// every statement afresh, and on SQLite the booking transaction holds the single writer:
// parsing was close to half of its time. Statements are prepared once on the writer's
// connection (outside any transaction, since that connection is the only one) and bound to
// each transaction with Tx.StmtContext, which reuses them on that same connection.
// PostgreSQL needs none of this: pgx caches its prepared statements per connection.

const (
	sqlTake       = `UPDATE appt_slots SET booked = booked + 1 WHERE id = ? AND blocked = 0 AND booked < capacity`
	sqlInsertBook = `INSERT INTO appt_appointments (org_id, ref, service_id, place_id, starts_at, ends_at, units, status,
			lang, replaces_id, overbooked, created_at, confirmed_at, email, phone, name, answers, ants_ids, citizen_id, booked_by, cancel_hash, manage_hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'confirmed', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
)

func sqlLinks(n int) string {
	return `INSERT INTO appt_appointment_slots (appointment_id, slot_id) VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ")
}

func sqlPersons(n int) string {
	return `INSERT INTO appt_persons (appointment_id, need, kind, value) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", n), ", ") + ` ON CONFLICT DO NOTHING RETURNING kind, value`
}

type stmtCache struct {
	once  sync.Mutex
	ready bool
	m     map[string]*sql.Stmt
}

// prepareBooking prepares the booking statements on SQLite, once; it must be called
// outside a transaction. A failure only leaves the statements unprepared.
func (m *Module) prepareBooking(ctx context.Context) {
	if m.db.Dialect != store.SQLite {
		return
	}
	c := &m.stmts
	c.once.Lock()
	defer c.once.Unlock()
	if c.ready {
		return
	}
	out := map[string]*sql.Stmt{}
	for _, q := range []string{sqlTake, sqlInsertBook, sqlLinks(1), sqlPersons(1), sqlPersons(2), sqlPersons(3)} {
		st, err := m.db.W.PrepareContext(ctx, q)
		if err != nil {
			m.log.Warn("prepare booking statement", "err", err)
			for _, s := range out {
				s.Close()
			}
			return
		}
		out[q] = st
	}
	c.m, c.ready = out, true
}

// stmt returns q prepared and bound to tx, or nil when it is not prepared.
func (m *Module) stmt(ctx context.Context, tx *store.Tx, q string) *sql.Stmt {
	if tx.Dialect != store.SQLite {
		return nil
	}
	c := &m.stmts
	c.once.Lock()
	st := c.m[q]
	c.once.Unlock()
	if st == nil {
		return nil
	}
	return tx.Raw.StmtContext(ctx, st)
}

func (m *Module) txExec(ctx context.Context, tx *store.Tx, q string, args ...any) (sql.Result, error) {
	if st := m.stmt(ctx, tx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

func (m *Module) txQuery(ctx context.Context, tx *store.Tx, q string, args ...any) (*sql.Rows, error) {
	if st := m.stmt(ctx, tx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, q, args...)
}

func (m *Module) txQueryRow(ctx context.Context, tx *store.Tx, q string, args ...any) *sql.Row {
	if st := m.stmt(ctx, tx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

func (m *Module) closeStmts() {
	c := &m.stmts
	c.once.Lock()
	defer c.once.Unlock()
	for _, s := range c.m {
		s.Close()
	}
	c.m, c.ready = nil, false
}
