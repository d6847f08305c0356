package appointments

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// The booking rush. A booking is a short write transaction; what it costs beyond its
// statements is what each transaction pays: on SQLite, the commit (every page it changed
// written to the write-ahead log) and the hand-over of the single writer connection from
// one request to the next; on PostgreSQL, a network round trip per statement. So:
//
//   - On SQLite, bookings (and holds and confirmations) arriving together share one write
//     transaction (group commit): a write that finds the writer idle runs at once, alone;
//     those arriving meanwhile queue, and one worker goroutine runs the queue as a batch
//     in one transaction, each write inside its own SAVEPOINT (a refused booking is rolled
//     back alone and the others stand), commits once, and only then answers each of them:
//     a booking confirmed to its client is committed. While a batch runs the next queue
//     forms; the worker stops when the queue is empty. Capacity is still decided by the
//     conditional UPDATE in the database, and the rules by the same statements as a
//     booking alone (bookTx).
//   - On PostgreSQL, a one-slot booking sends its statements in one round trip (a pgx
//     batch, which the server runs as one implicit transaction: the place taken, the
//     appointment, its slot and its persons inserted by one statement, then the person
//     lock, the limits counted and the persons checked, a refusal raising an error that
//     rolls everything back); the answer comes once it is committed.
//
// Everything else (several slots, overbooking, a reschedule, an expired hold to free
// first) books as before, through bookTx in one transaction.

// book runs one booking.
func (m *Module) book(ctx context.Context, req HoldRequest, d Details, svc *Service, s Slot) (*Appointment, error) {
	if m.db.Dialect == store.Postgres && !m.booking.general && max(req.Units, 1)*svc.SlotsPerUnit == 1 && !req.Overbook && req.ReplacesID == 0 {
		if a, done, err := m.bookPipelined(ctx, req, d, svc, s); done {
			return a, err
		}
	}
	var a *Appointment
	err := m.inBookingTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		a, err = m.bookTx(ctx, tx, req, d, svc, s)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// inBookingTx runs f in a write transaction: on SQLite, the transaction shared by the
// bookings, holds and confirmations arriving together (f in its own savepoint); on
// PostgreSQL, its own. f's ctx is the one to use for statements.
func (m *Module) inBookingTx(ctx context.Context, f func(ctx context.Context, tx *store.Tx) error) error {
	if m.db.Dialect == store.SQLite {
		return m.grouped(ctx, f)
	}
	return m.inTx(ctx, func(tx *store.Tx) error { return f(ctx, tx) })
}

// --- SQLite: group commit

// bookReq is a write waiting for its batch.
type bookReq struct {
	ctx  context.Context
	run  func(ctx context.Context, tx *store.Tx) error
	err  error
	done chan struct{}
}

// groupCommit is the queue of the writes waiting for the writer, and its worker.
type groupCommit struct {
	mu    sync.Mutex
	queue []*bookReq
	busy  bool // the worker is running
	// transactions and writes run so far, and the time the batches took (tests and
	// figures).
	batches, bookings, batchNanos atomic.Int64
}

// maxBatch bounds the writes of one transaction (the writer is held that long).
const maxBatch = 128

// grouped runs run in the next batch and returns once that batch is committed (or failed).
func (m *Module) grouped(ctx context.Context, run func(ctx context.Context, tx *store.Tx) error) error {
	r := &bookReq{ctx: ctx, run: run, done: make(chan struct{})}
	g := &m.booking.group
	g.mu.Lock()
	if g.busy {
		g.queue = append(g.queue, r)
		g.mu.Unlock()
		<-r.done
		return r.err
	}
	// The writer is idle: this write runs now, alone, on this goroutine; a worker takes
	// over if others came meanwhile.
	g.busy = true
	g.mu.Unlock()
	m.runBatchSafe([]*bookReq{r})
	g.mu.Lock()
	if len(g.queue) == 0 {
		g.busy = false
		g.mu.Unlock()
	} else {
		g.mu.Unlock()
		go m.groupWorker()
	}
	return r.err
}

// groupWorker runs batches while writes are queued: one after the other, without handing
// the work from one goroutine to the next (on a busy machine, each hand-over waited for the
// scheduler), then stops until the next write.
func (m *Module) groupWorker() {
	g := &m.booking.group
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxBatch)
		if n == 0 {
			g.busy = false
			g.mu.Unlock()
			return
		}
		batch := make([]*bookReq, n)
		copy(batch, g.queue)
		g.queue = append(g.queue[:0:0], g.queue[n:]...)
		g.mu.Unlock()
		m.runBatchSafe(batch)
		for _, r := range batch {
			close(r.done)
		}
	}
}

// runBatchSafe runs the batch; a panic fails its writes (and is logged) instead of
// leaving them waiting.
func (m *Module) runBatchSafe(batch []*bookReq) {
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("booking batch", "panic", p)
			for _, r := range batch {
				r.err = fmt.Errorf("appointments: booking batch: %v", p)
			}
		}
	}()
	m.runBatch(batch)
}

// runBatch runs every write of the batch in one transaction, each in its savepoint.
func (m *Module) runBatch(batch []*bookReq) {
	m.booking.group.batches.Add(1)
	m.booking.group.bookings.Add(int64(len(batch)))
	defer func(t0 time.Time) { m.booking.group.batchNanos.Add(int64(time.Since(t0))) }(time.Now())
	// The transaction is the batch's: a client going away must not roll back the others.
	// Its context has no end: with one, the SQLite driver starts a goroutine to watch it
	// for every statement (a tenth of a booking's cost), and no statement of the batch
	// waits (the transaction holds the write lock from its start).
	ctx := context.Background()
	// Each booking runs in a savepoint, whose sub-journal the writer keeps in memory
	// (kernel/store: temp_store). A write alone needs none: the transaction is its own.
	alone := len(batch) == 1
	done := make([]bool, len(batch))
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		for i, r := range batch {
			r.err = nil
			if err := r.ctx.Err(); err != nil {
				r.err = err // its client is gone: nothing done
				continue
			}
			if alone {
				r.err = r.run(ctx, tx)
				done[i] = r.err == nil
				return r.err
			}
			if _, err := tx.ExecContext(ctx, sqlSavepoint); err != nil {
				return err
			}
			if r.err = r.run(ctx, tx); r.err != nil {
				if _, err := tx.ExecContext(ctx, sqlRollback); err != nil {
					return fmt.Errorf("rollback to savepoint: %w (after %v)", err, r.err)
				}
			} else {
				done[i] = true
			}
			if _, err := tx.ExecContext(ctx, sqlRelease); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Nothing of the batch is committed: what succeeded in it fails with the batch (a
		// write alone keeps its own error).
		for i, r := range batch {
			if done[i] || r.err == nil {
				r.err = err
			}
		}
	}
}

// --- PostgreSQL: one round trip

// sqlBookPG takes the place, inserts the appointment, its slot and its persons, and returns
// the appointment's ID: no row when the slot is full, or is not the slot remembered (its
// service, place and times are in the condition; Book then reads it again).
const sqlBookPG = `WITH took AS (
	UPDATE appt_slots SET booked = booked + 1 WHERE id = $1 AND blocked = 0 AND booked < capacity
		AND service_id = $4 AND place_id = $5 AND start_s = $23 AND end_s = $24
	RETURNING id
), ins AS (
	INSERT INTO appt_appointments (org_id, ref, service_id, place_id, starts_at, ends_at, units, status, lang, replaces_id, overbooked,
		created_at, confirmed_at, email, phone, name, answers, ants_ids, citizen_id, booked_by, cancel_hash, manage_hash, legacy_tokens)
	SELECT $2, $3, $4, $5, $6, $7, $8, 'confirmed', $9, 0, 0, $10, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, 0 FROM took
	RETURNING id
), link AS (
	INSERT INTO appt_appointment_slots (appointment_id, slot_id) SELECT ins.id, took.id FROM ins, took
), who AS (
	INSERT INTO appt_persons (appointment_id, need, kind, value)
	SELECT ins.id, $20, p.kind, p.value FROM ins, unnest($21::text[], $22::text[]) AS p(kind, value)
	ON CONFLICT DO NOTHING
)
SELECT ins.id FROM ins`

// sqlExpiredPG tells whether an expired hold still counts in the slot (the sweep frees it;
// a booking that finds the slot full frees it first, through bookTx).
const sqlExpiredPG = `SELECT EXISTS (SELECT 1 FROM appt_appointments a JOIN appt_appointment_slots s ON s.appointment_id = a.id
	WHERE s.slot_id = $1 AND a.status = 'held' AND a.hold_expires_at <= $2)`

// The refusals, in the order bookTx reports them: the per-citizen limits (as checkRules,
// the booking's own appointment left out by its reference), then a person already booked
// for the need (as confirmedTx, by kind of identity). Each passes when the booking took no
// place; appt_refuse_unless (migration 00004) raises the refusal, which rolls back the
// whole pipeline.
const (
	sqlBookedPG       = `NOT EXISTS (SELECT 1 FROM appt_appointments WHERE ref = $1)`
	sqlRuleUpcomingPG = `SELECT appt_refuse_unless(` + sqlBookedPG + ` OR (SELECT COUNT(*) FROM appt_appointments WHERE email = $2 AND service_id = $3
		AND status = 'confirmed' AND starts_at > $4 AND ref <> $1) < $5, 'max_upcoming')`
	sqlRuleCategoryPG = `SELECT appt_refuse_unless(` + sqlBookedPG + ` OR (SELECT COUNT(*) FROM appt_appointments WHERE email = $2 AND status = 'confirmed'
		AND starts_at > $3 AND ref <> $1 AND service_id IN (SELECT id FROM appt_services WHERE category_id = $4)) < $5, 'max_upcoming_category')`
	sqlRuleGapPG = `SELECT appt_refuse_unless(` + sqlBookedPG + ` OR NOT EXISTS (SELECT 1 FROM appt_appointments WHERE email = $2 AND service_id = $3
		AND status = 'confirmed' AND ref <> $1 AND starts_at > $4 AND starts_at < $5), 'min_gap')`
	sqlPersonPG = `SELECT appt_refuse_unless(` + sqlBookedPG + ` OR (SELECT COUNT(*) FROM appt_persons p JOIN appt_appointments a ON a.id = p.appointment_id
		WHERE a.ref = $1 AND p.kind = $2) = $3, 'same_person_' || $2)`
)

// refusedPrefix starts the message of appt_refuse_unless's exception.
const refusedPrefix = "appointments refused: "

// errFallBack asks for the booking through bookTx.
var errFallBack = errors.New("appointments: book through the general path")

// bookPipelined books one slot on PostgreSQL in one round trip: the statements are sent
// together and run as one implicit transaction, committed when the last has run, rolled
// back by a refusal. done is false when the booking must go through bookTx (an expired
// hold to free first); nothing is then written.
func (m *Module) bookPipelined(ctx context.Context, req HoldRequest, d Details, svc *Service, s Slot) (a *Appointment, done bool, err error) {
	now := m.now()
	if s.ServiceID != svc.ID {
		return nil, true, errs.OnField(errs.Invalid, "slot_id", "appointments.error.no_slot")
	}
	if s.Start.Before(now.Add(time.Duration(svc.NoticeHours)*time.Hour)) || s.Start.After(now.AddDate(0, 0, svc.WindowDays)) {
		return nil, true, errs.OnField(errs.Invalid, "slot_id", keyOutOfWindow)
	}
	ants, _ := ParseAntsIDs(d.AntsIDs)
	a = &Appointment{OrgID: svc.OrgID, Ref: newRef(), ServiceID: svc.ID, PlaceID: s.PlaceID, Start: s.Start, End: s.End,
		Units: max(req.Units, 1), Status: StatusConfirmed, State: "booked", Lang: req.Lang, CreatedAt: now, SlotIDs: []int64{s.ID},
		ServiceName: svc.Name, Email: d.Email, Phone: d.Phone, Name: d.Name, Answers: d.Answers, AntsIDs: ants, CitizenID: d.CitizenID,
		BookedBy: d.AgentID, ConfirmedAt: now}
	if a.Lang == "" {
		a.Lang = "fr"
	}
	a.CancelToken, a.ManageToken = m.capTokens(a.Ref)
	kinds, values := []string{"email"}, []string{a.Email}
	if a.Phone != "" {
		kinds, values = append(kinds, "phone"), append(values, a.Phone)
	}
	for _, id := range ants {
		kinds, values = append(kinds, "ants"), append(values, id)
	}

	b := &pgx.Batch{}
	b.Queue(sqlBookPG, s.ID, a.OrgID, a.Ref, a.ServiceID, a.PlaceID, a.Start, a.End, a.Units, a.Lang, now,
		d.Email, d.Phone, d.Name, mustJSON(d.Answers), strings.Join(ants, ","), d.CitizenID, d.AgentID,
		hashToken(a.CancelToken), hashToken(a.ManageToken), svc.NeedKey(), kinds, values, s.Start.Unix(), s.End.Unix())
	b.Queue(sqlExpiredPG, s.ID, now)
	if svc.MaxUpcoming > 0 || svc.MaxUpcomingCategory > 0 || svc.MinGapDays > 0 {
		b.Queue(`SELECT pg_advisory_xact_lock($1)`, personLockKey(a.Email))
		if svc.MaxUpcoming > 0 {
			b.Queue(sqlRuleUpcomingPG, a.Ref, a.Email, svc.ID, now, svc.MaxUpcoming)
		}
		if svc.MaxUpcomingCategory > 0 {
			b.Queue(sqlRuleCategoryPG, a.Ref, a.Email, now, svc.CategoryID, svc.MaxUpcomingCategory)
		}
		if svc.MinGapDays > 0 {
			gap := time.Duration(svc.MinGapDays) * 24 * time.Hour
			b.Queue(sqlRuleGapPG, a.Ref, a.Email, svc.ID, a.Start.Add(-gap), a.Start.Add(gap))
		}
	}
	count := map[string]int{}
	for _, k := range kinds {
		count[k]++
	}
	for _, k := range []string{"email", "phone", "ants"} {
		if count[k] > 0 {
			b.Queue(sqlPersonPG, a.Ref, k, count[k])
		}
	}

	conn, err := m.db.W.Conn(ctx)
	if err != nil {
		return nil, true, err
	}
	defer conn.Close()
	for try := 0; ; try++ {
		var outcome error
		err = conn.Raw(func(dc any) error {
			pc, ok := dc.(*stdlib.Conn)
			if !ok {
				return fmt.Errorf("appointments: unexpected PostgreSQL driver connection %T", dc)
			}
			outcome = m.runBookBatch(ctx, pc.Conn(), b, a, svc)
			if pc.Conn().PgConn().TxStatus() != 'I' {
				return driver.ErrBadConn // the transaction's end is unknown: drop the connection
			}
			return nil
		})
		if err == nil {
			err = outcome
		}
		// A deadlock or a serialization failure wrote nothing: try again (as inTx), with
		// the same statements (a batch is sent once: a copy).
		if err == nil || try == 4 || !(strings.Contains(err.Error(), "SQLSTATE 40P01") || strings.Contains(err.Error(), "SQLSTATE 40001")) {
			break
		}
		b = &pgx.Batch{QueuedQueries: cloneQueued(b.QueuedQueries)}
	}
	switch {
	case errors.Is(err, errFallBack):
		return nil, false, nil
	case err != nil:
		return nil, true, err
	}
	m.slotsChanged()
	m.kickNotifier()
	return a, true, nil
}

func cloneQueued(qs []*pgx.QueuedQuery) []*pgx.QueuedQuery {
	out := make([]*pgx.QueuedQuery, len(qs))
	for i, q := range qs {
		out[i] = &pgx.QueuedQuery{SQL: q.SQL, Arguments: q.Arguments}
	}
	return out
}

// runBookBatch sends the booking's statements on c and reads their results; nil means the
// booking is committed.
func (m *Module) runBookBatch(ctx context.Context, c *pgx.Conn, b *pgx.Batch, a *Appointment, svc *Service) (err error) {
	br := c.SendBatch(ctx, b)
	defer func() {
		// Close reads what is left and, when every statement ran, the commit's outcome; the
		// first error is the one to report.
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "P0001" && strings.HasPrefix(pe.Message, refusedPrefix) {
			err = refusal(strings.TrimPrefix(pe.Message, refusedPrefix), svc)
		}
	}()
	took := false
	if err := br.QueryRow().Scan(&a.ID); err == nil {
		took = true
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	var expired bool
	if err := br.QueryRow().Scan(&expired); err != nil {
		return err
	}
	for range len(b.QueuedQueries) - 2 {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	if !took {
		if expired {
			return errFallBack
		}
		return &SlotFullError{}
	}
	return nil
}

// refusal is the error of a refusal raised by the one-round-trip booking, as bookTx
// reports it.
func refusal(rule string, svc *Service) error {
	switch rule {
	case "max_upcoming":
		return errs.OnField(errs.Conflict, "email", rulePrefix+rule, "max", svc.MaxUpcoming)
	case "max_upcoming_category":
		return errs.OnField(errs.Conflict, "email", rulePrefix+rule, "max", svc.MaxUpcomingCategory)
	case "min_gap":
		return errs.OnField(errs.Conflict, "email", rulePrefix+rule, "days", svc.MinGapDays)
	}
	kind := strings.TrimPrefix(rule, "same_person_")
	return errs.OnField(errs.Conflict, personField(kind), rulePrefix+"same_person_"+kind)
}
