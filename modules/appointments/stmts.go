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
	sqlTake     = `UPDATE appt_slots SET booked = booked + 1 WHERE id = ? AND blocked = 0 AND booked < capacity`
	sqlTakeOver = `UPDATE appt_slots SET booked = booked + 1 WHERE id = ?`
	// sqlTakeSame, added to either, takes the place only in the slot that was read.
	sqlTakeSame     = ` AND service_id = ? AND place_id = ? AND start_s = ? AND end_s = ?`
	sqlRuleUpcoming = `SELECT COUNT(*) FROM appt_appointments WHERE email = ? AND service_id = ? AND status = 'confirmed' AND starts_at > ? AND id <> ?`
	sqlRuleCategory = `SELECT COUNT(*) FROM appt_appointments WHERE email = ? AND status = 'confirmed' AND starts_at > ? AND id <> ?
		AND service_id IN (SELECT id FROM appt_services WHERE category_id = ?)`
	sqlRuleGap = `SELECT COUNT(*) FROM appt_appointments WHERE email = ? AND service_id = ? AND status = 'confirmed'
		AND id <> ? AND starts_at > ? AND starts_at < ?`
	// One savepoint per booking of a group commit (perf_book.go).
	sqlSavepoint = `SAVEPOINT booking`
	sqlRelease   = `RELEASE booking`
	sqlRollback  = `ROLLBACK TO booking`
	// sqlTempStoreMemory keeps the savepoints' sub-journal in memory (perf_book.go).
	sqlTempStoreMemory = `PRAGMA temp_store = MEMORY`
	sqlInsertBook      = `INSERT INTO appt_appointments (org_id, ref, service_id, place_id, starts_at, ends_at, units, status,
			lang, replaces_id, overbooked, created_at, confirmed_at, email, phone, name, answers, ants_ids, citizen_id, booked_by, cancel_hash, manage_hash, legacy_tokens)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'confirmed', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`
)

func sqlLinks(n int) string {
	return `INSERT INTO appt_appointment_slots (appointment_id, slot_id) VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ")
}

func sqlPersons(n int) string {
	return `INSERT INTO appt_persons (appointment_id, need, kind, value) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", n), ", ") + ` ON CONFLICT DO NOTHING`
}

// stmtCache is the SQLite booking writer's state: its prepared statements, and the queue
// of its group commit (perf_book.go).
type stmtCache struct {
	once  sync.Mutex
	ready bool
	m     map[string]*sql.Stmt
	group groupCommit
	// general books every booking through bookTx (benchmarks compare the paths).
	general bool
	// the statements bound to the transaction running (stmt).
	boundTx *sql.Tx
	bound   map[string]*sql.Stmt
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
	for _, q := range []string{sqlTake, sqlTakeOver, sqlTake + sqlTakeSame, sqlTakeOver + sqlTakeSame, sqlInsertBook, sqlLinks(1), sqlPersons(1), sqlPersons(2), sqlPersons(3),
		sqlRuleUpcoming, sqlRuleCategory, sqlRuleGap, sqlSavepoint, sqlRelease, sqlRollback} {
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

// stmt returns q prepared and bound to tx, or nil when it is not prepared. The statements
// bound to the transaction running are kept (a group commit runs the same ones for each of
// its bookings); on SQLite, one write transaction runs at a time.
func (m *Module) stmt(ctx context.Context, tx *store.Tx, q string) *sql.Stmt {
	if tx.Dialect != store.SQLite {
		return nil
	}
	c := &m.stmts
	c.once.Lock()
	defer c.once.Unlock()
	st := c.m[q]
	if st == nil {
		return nil
	}
	if c.boundTx != tx.Raw {
		c.boundTx, c.bound = tx.Raw, map[string]*sql.Stmt{}
	}
	if b := c.bound[q]; b != nil {
		return b
	}
	b := tx.Raw.StmtContext(ctx, st)
	c.bound[q] = b
	return b
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
	c.m, c.ready, c.boundTx, c.bound = nil, false, nil, nil
}
