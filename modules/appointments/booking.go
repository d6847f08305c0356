package appointments

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	ktoken "parvis.org/parvis/kernel/token"
	"sort"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// Error keys that the API maps to its distinct codes.
const (
	keySlotFull    = "appointments.error.slot_full"
	keyHoldExpired = "appointments.error.hold_expired"
	keyBadToken    = "appointments.error.bad_token"
	keyAntsDown    = "appointments.error.ants_down"
	keyOutOfWindow = "appointments.error.out_of_window"
	rulePrefix     = "appointments.rule."
)

// SlotFullError says the slot (or one of the consecutive slots needed) is full; Nearest are
// the closest free starts for the same service and place.
type SlotFullError struct{ Nearest []Slot }

func (e *SlotFullError) Error() string { return "slot full" }
func (e *SlotFullError) Unwrap() error { return errs.New(errs.Conflict, keySlotFull) }

// Capability tokens start with the appointment's reference: "ABCDE-FGHJK" then the secret,
// 22 URL-safe base64 characters carrying 128 bits (33 characters in all, no separator, so
// they survive any URL matcher). The reference finds the row through its unique index, and
// the SHA-256 of the whole token must equal the hash stored for that use (hold, cancel,
// manage); clearing the hash revokes the token. Tokens issued before migration 00005 are
// the 22-character secret alone, and are still found by hash on the rows marked
// legacy_tokens.

const (
	refLen      = 11 // newRef
	secretLen   = 22 // 16 bytes, URL-safe base64 without padding
	tokenLen    = refLen + secretLen
	legacyToken = secretLen
)

// newToken returns a random capability token for the appointment ref, and its hash.
func newToken(ref string) (raw, hash string) {
	secret, _ := ktoken.New(16)
	raw = ref + secret
	return raw, hashToken(raw)
}

// tokenRef returns the reference a token starts with, or legacy for a token issued before
// migration 00005; ok is false for anything else.
func tokenRef(raw string) (ref string, legacy, ok bool) {
	switch {
	case len(raw) == legacyToken:
		return "", true, true
	case len(raw) == tokenLen && validRef(raw[:refLen]):
		return raw[:refLen], false, true
	}
	return "", false, false
}

// validRef reports whether s has the form of a reference from newRef.
func validRef(s string) bool {
	if len(s) != refLen || s[5] != '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i != 5 && strings.IndexByte(refAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

func hashToken(raw string) string { return ktoken.Hash(raw) }

const refAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// newRef is a short public reference; not a capability (the tokens are).
func newRef() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 0, 12)
	for i, c := range b {
		if i == 5 {
			out = append(out, '-')
		}
		out = append(out, refAlphabet[int(c)%len(refAlphabet)])
	}
	return string(out)
}

// inTx retries a transaction that PostgreSQL aborted for a deadlock or a serialization
// failure (two releases touching the same slots in another order): nothing was written.
func (m *Module) inTx(ctx context.Context, f func(tx *store.Tx) error) error {
	var err error
	for i := 0; i < 5; i++ {
		err = m.db.InTx(ctx, f)
		if err == nil || !(strings.Contains(err.Error(), "SQLSTATE 40P01") || strings.Contains(err.Error(), "SQLSTATE 40001")) {
			return err
		}
	}
	return err
}

// SlotQuery selects slots.
type SlotQuery struct {
	ServiceID, PlaceID int64
	From, To           time.Time
	// Units is the number of persons or documents: only starts with that many consecutive
	// free slots are returned.
	Units    int
	FreeOnly bool
}

// Slots lists the slots of a service at a place between From and To, generating them first
// when needed. With Units > 1 (and SlotsPerUnit), only starts followed by enough
// consecutive free slots are kept.
func (m *Module) Slots(ctx context.Context, q SlotQuery) ([]Slot, error) {
	svc, err := m.cachedService(ctx, q.ServiceID)
	if err != nil {
		return nil, err
	}
	if err := m.Ensure(ctx, q.PlaceID, q.ServiceID, q.To.In(m.loc).Format(dayLayout)); err != nil {
		return nil, err
	}
	free := ""
	if q.FreeOnly {
		// Full and blocked slots are left in the database: only free ones travel.
		free = ` AND booked < capacity AND blocked = 0`
	}
	rows, err := m.db.Read().QueryContext(ctx, `SELECT `+slotCols+` FROM appt_slots WHERE place_id = ? AND service_id = ?
		AND start_s >= ? AND start_s < ?`+free+` ORDER BY start_s`, q.PlaceID, q.ServiceID, q.From.Unix(), q.To.Unix())
	if err != nil {
		return nil, err
	}
	all, err := scanSlots(rows)
	if err != nil {
		return nil, err
	}
	if !q.FreeOnly {
		return all, nil
	}
	return keepFits(all, svc.SlotsPerUnit*max(q.Units, 1)), nil
}

// keepFits keeps, from free slots in time order, those followed by need-1 free slots that
// continue without a gap. Consecutive free slots are neighbours in the list, so a chain
// broken by a full slot shows as a gap.
func keepFits(free []Slot, need int) []Slot {
	if need <= 1 {
		return free
	}
	var out []Slot
	for i := range free {
		if fits(free, i, need) {
			out = append(out, free[i])
		}
	}
	return out
}

// fits reports whether need consecutive, contiguous free slots start at all[i].
func fits(all []Slot, i, need int) bool {
	if i+need > len(all) {
		return false
	}
	for k := i; k < i+need; k++ {
		if all[k].Free() == 0 || (k > i && !all[k].Start.Equal(all[k-1].End)) {
			return false
		}
	}
	return true
}

// slotCols reads the bounds as Unix seconds: no timestamp text to parse per row.
const slotCols = `id, place_id, service_id, day, start_s, end_s, capacity, booked, blocked`

func scanSlots(rows *sql.Rows) ([]Slot, error) {
	defer rows.Close()
	var out []Slot
	for rows.Next() {
		var s Slot
		var blocked int
		var start, end int64
		if err := rows.Scan(&s.ID, &s.PlaceID, &s.ServiceID, &s.Day, &start, &end, &s.Capacity, &s.Booked, &blocked); err != nil {
			return nil, err
		}
		s.Blocked = blocked == 1
		s.Start, s.End = time.Unix(start, 0).UTC(), time.Unix(end, 0).UTC()
		out = append(out, s)
	}
	return out, rows.Err()
}

// Slot returns one slot.
func (m *Module) Slot(ctx context.Context, q store.Querier, id int64) (Slot, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+slotCols+` FROM appt_slots WHERE id = ?`, id)
	if err != nil {
		return Slot{}, err
	}
	ss, err := scanSlots(rows)
	if err != nil {
		return Slot{}, err
	}
	if len(ss) == 0 {
		return Slot{}, errs.OnField(errs.NotFound, "slot_id", "appointments.error.no_slot")
	}
	return ss[0], nil
}

// Nearest returns up to n free starts nearest to at for the service and place.
func (m *Module) Nearest(ctx context.Context, svc *Service, placeID int64, at time.Time, units, n int) []Slot {
	now := m.now()
	from := now.Add(time.Duration(svc.NoticeHours) * time.Hour)
	to := now.AddDate(0, 0, svc.WindowDays)
	ss, err := m.Slots(ctx, SlotQuery{ServiceID: svc.ID, PlaceID: placeID, From: from, To: to, Units: units, FreeOnly: true})
	if err != nil {
		m.log.Warn("nearest slots", "err", err)
		return nil
	}
	sort.SliceStable(ss, func(a, b int) bool { return absDur(ss[a].Start.Sub(at)) < absDur(ss[b].Start.Sub(at)) })
	if len(ss) > n {
		ss = ss[:n]
	}
	sort.Slice(ss, func(a, b int) bool { return ss[a].Start.Before(ss[b].Start) })
	return ss
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// HoldRequest asks for a place.
type HoldRequest struct {
	SlotID int64
	// ServiceID, when set, must be the slot's service.
	ServiceID int64
	// OrgID, when set, must be the service's organisation (API clients of one town).
	OrgID int64
	Units int
	// Overbook lets an agent holding appointments.overbook exceed capacity.
	Overbook bool
	// ReplacesID is the appointment this one reschedules (kept until confirmation).
	ReplacesID int64
	Lang       string
}

// reserve takes one place in each of the consecutive slots the request needs, through
// conditional UPDATEs: the database, not this process, decides who gets the last place.
// first was read before the transaction: a slot's service, place and times never change,
// and what may (booked, capacity, blocked) is decided by the conditional UPDATE.
func (m *Module) reserve(ctx context.Context, tx *store.Tx, svc *Service, first Slot, req HoldRequest, now time.Time) (ids []int64, end time.Time, err error) {
	if first.ServiceID != svc.ID {
		return nil, end, errs.OnField(errs.Invalid, "slot_id", "appointments.error.no_slot")
	}
	if !req.Overbook && (first.Start.Before(now.Add(time.Duration(svc.NoticeHours)*time.Hour)) || first.Start.After(now.AddDate(0, 0, svc.WindowDays))) {
		return nil, end, errs.OnField(errs.Invalid, "slot_id", keyOutOfWindow)
	}
	units := max(req.Units, 1)
	if units > svc.MaxUnits {
		return nil, end, errs.OnField(errs.Invalid, "units", "appointments.error.too_many_units", "max", svc.MaxUnits)
	}
	need := units * svc.SlotsPerUnit
	chain := []Slot{first}
	if need > 1 {
		rows, err := tx.QueryContext(ctx, `SELECT `+slotCols+` FROM appt_slots
			WHERE place_id = ? AND service_id = ? AND start_s >= ? ORDER BY start_s LIMIT ?`, first.PlaceID, first.ServiceID, first.Start.Unix(), need)
		if err != nil {
			return nil, end, err
		}
		if chain, err = scanSlots(rows); err != nil {
			return nil, end, err
		}
		if len(chain) == 0 || chain[0].ID != first.ID {
			return nil, end, &SlotFullError{}
		}
		if !sameSlot(chain[0], first) {
			return nil, end, errStaleSlot
		}
		if len(chain) < need {
			return nil, end, &SlotFullError{}
		}
		for k := 1; k < len(chain); k++ {
			if !chain[k].Start.Equal(chain[k-1].End) {
				return nil, end, &SlotFullError{}
			}
		}
	}
	end = chain[len(chain)-1].End
	for _, s := range chain {
		ids = append(ids, s.ID)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] }) // one lock order for everyone
	for _, id := range ids {
		// The first slot was read before the transaction (or remembered, cache.go): the
		// UPDATE takes it only if it is still that slot (not an ID reused after a
		// deletion); a chain was read in the transaction, and its first slot checked above.
		var want *Slot
		if id == first.ID && need == 1 {
			want = &first
		}
		ok, err := m.take(ctx, tx, id, req.Overbook, want)
		if err != nil {
			return nil, end, err
		}
		if !ok {
			// Expired holds still count in booked until swept: free them and try again.
			if n, err := m.releaseExpiredOn(ctx, tx, id, now); err != nil {
				return nil, end, err
			} else if n > 0 {
				ok, err = m.take(ctx, tx, id, req.Overbook, want)
				if err != nil {
					return nil, end, err
				}
			}
		}
		if !ok {
			return nil, end, &SlotFullError{}
		}
	}
	return ids, end, nil
}

// errStaleSlot: the slot remembered for a booking is not the slot of that ID any more.
var errStaleSlot = errors.New("appointments: slot changed since it was read")

// sameSlot compares what never changes in a slot.
func sameSlot(a, b Slot) bool {
	return a.ID == b.ID && a.ServiceID == b.ServiceID && a.PlaceID == b.PlaceID && a.Start.Equal(b.Start) && a.End.Equal(b.End)
}

// take takes one place in the slot; with want, only if the slot is still that one (its
// service, place and times in the condition): a slot that is another one now is not taken,
// and the booking, finding it "full", reads it again (recheckSlot).
func (m *Module) take(ctx context.Context, tx *store.Tx, slotID int64, overbook bool, want *Slot) (bool, error) {
	q, args := sqlTake, []any{slotID}
	if overbook {
		q = sqlTakeOver
	}
	if want != nil {
		q += sqlTakeSame
		args = append(args, want.ServiceID, want.PlaceID, want.Start.Unix(), want.End.Unix())
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("take slot: %w", err)
	}
	tx.AfterCommit(m.slotsChanged)
	n, err := res.RowsAffected()
	return n == 1, err
}

// release turns an appointment from one of from into status and gives its places back, in
// one conditional step: a place is given back exactly once, whoever tries.
func (m *Module) release(ctx context.Context, tx *store.Tx, id int64, from []string, status string, now time.Time) (bool, error) {
	q := `UPDATE appt_appointments SET status = ?, cancelled_at = ? WHERE id = ? AND status IN (` + placeholders(len(from)) + `)`
	args := []any{status, now, id}
	for _, f := range from {
		args = append(args, f)
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("release: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	tx.AfterCommit(m.slotsChanged)
	if _, err := tx.ExecContext(ctx, `UPDATE appt_slots SET booked = booked - 1 WHERE id IN (SELECT slot_id FROM appt_appointment_slots WHERE appointment_id = ?)`, id); err != nil {
		return false, fmt.Errorf("release slots: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE appt_persons SET active = 0 WHERE appointment_id = ?`, id); err != nil {
		return false, err
	}
	return true, nil
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func (m *Module) releaseExpiredOn(ctx context.Context, tx *store.Tx, slotID int64, now time.Time) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT a.id FROM appt_appointments a JOIN appt_appointment_slots s ON s.appointment_id = a.id
		WHERE s.slot_id = ? AND a.status = 'held' AND a.hold_expires_at <= ?`, slotID, now)
	if err != nil {
		return 0, err
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		ok, err := m.release(ctx, tx, id, []string{StatusHeld}, StatusExpired, now)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

func scanIDs(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// ExpireHolds frees the places of every expired hold (the sweep job); it returns how many.
func (m *Module) ExpireHolds(ctx context.Context) (int, error) {
	now := m.now()
	rows, err := m.db.Read().QueryContext(ctx, `SELECT id FROM appt_appointments WHERE status = 'held' AND hold_expires_at <= ? ORDER BY id LIMIT 1000`, now)
	if err != nil {
		return 0, err
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		err := m.inTx(ctx, func(tx *store.Tx) error {
			ok, err := m.release(ctx, tx, id, []string{StatusHeld}, StatusExpired, now)
			if ok {
				n++
			}
			return err
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Hold takes the places for a few minutes; the returned appointment carries HoldToken, the
// capability to answer the questions and confirm.
func (m *Module) Hold(ctx context.Context, req HoldRequest) (*Appointment, error) {
	s, svc, err := m.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	var a *Appointment
	err = m.inBookingTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		a, err = m.holdTx(ctx, tx, req, &svc, s, nil)
		return err
	})
	if err != nil {
		a = nil
	}
	if retry, fresh, ferr := m.recheckSlot(ctx, err, req.SlotID, s); retry && !again(ctx) {
		return m.Hold(withAgain(ctx), req)
	} else if ferr != nil {
		return nil, ferr
	} else {
		return a, m.withNearest(ctx, err, req, fresh)
	}
}

// prepare finds the slot and its service before the transaction, so that the write
// transaction (the single writer on SQLite) holds only the statements that must be in it.
// What never changes in a slot is remembered (cache.go); the booking's conditional UPDATE
// checks it against the database.
func (m *Module) prepare(ctx context.Context, req HoldRequest) (Slot, Service, error) {
	s, ok := m.cache.slot(req.SlotID)
	if !ok {
		var err error
		if s, err = m.Slot(ctx, m.db.Read(), req.SlotID); err != nil {
			return s, Service{}, err
		}
		m.cache.rememberSlot(s)
	}
	if req.ServiceID != 0 && req.ServiceID != s.ServiceID {
		return s, Service{}, errs.OnField(errs.Invalid, "slot_id", "appointments.error.no_slot")
	}
	svc, err := m.cachedService(ctx, s.ServiceID)
	if err != nil {
		return s, svc, err
	}
	if req.OrgID != 0 && svc.OrgID != req.OrgID {
		return s, svc, errs.OnField(errs.NotFound, "slot_id", "appointments.error.no_slot")
	}
	if !svc.Active {
		return s, svc, errs.New(errs.NotFound, "appointments.error.no_service")
	}
	return s, svc, nil
}

// recheckSlot reads the slot again after a booking found it full or changed: a remembered
// slot may have been deleted, or its ID reused for another. retry tells the caller to
// start again (the slot is forgotten, so it is read afresh); err is the answer when the
// slot is gone; fresh is the slot as it is (for the nearest free starts).
func (m *Module) recheckSlot(ctx context.Context, bookErr error, id int64, used Slot) (retry bool, fresh *Slot, err error) {
	var full *SlotFullError
	stale := errors.Is(bookErr, errStaleSlot)
	if !stale && !errors.As(bookErr, &full) {
		return false, nil, nil
	}
	s, err := m.Slot(ctx, m.db.Read(), id)
	if err != nil {
		m.cache.forgetSlot(id)
		if errs.CodeOf(err) == errs.NotFound {
			return false, nil, err
		}
		return false, nil, bookErr
	}
	if stale || !sameSlot(s, used) {
		m.cache.forgetSlot(id)
		return true, nil, nil
	}
	return false, &s, nil
}

type againKey struct{}

// withAgain marks a second attempt (after a remembered slot turned out to be stale), which
// is the last.
func withAgain(ctx context.Context) context.Context { return context.WithValue(ctx, againKey{}, true) }

func again(ctx context.Context) bool { return ctx.Value(againKey{}) != nil }

// withNearest adds to a "slot full" error the nearest free starts around slot s.
func (m *Module) withNearest(ctx context.Context, err error, req HoldRequest, s *Slot) error {
	var full *SlotFullError
	if errors.As(err, &full) && s != nil {
		if svc, e := m.cachedService(ctx, s.ServiceID); e == nil {
			full.Nearest = m.Nearest(ctx, &svc, s.PlaceID, s.Start, req.Units, 5)
		}
	}
	return err
}

// holdTx takes the places and inserts the appointment: a hold (d nil) or, for Book, an
// appointment confirmed at once with the citizen's details (no hold row then UPDATE).
func (m *Module) holdTx(ctx context.Context, tx *store.Tx, req HoldRequest, svc *Service, s Slot, d *Details) (*Appointment, error) {
	now := m.now()
	ids, end, err := m.reserve(ctx, tx, svc, s, req, now)
	if err != nil {
		return nil, err
	}
	a := &Appointment{OrgID: svc.OrgID, Ref: newRef(), ServiceID: svc.ID, PlaceID: s.PlaceID, Start: s.Start, End: end,
		Units: max(req.Units, 1), Status: StatusHeld, State: "booked", Lang: req.Lang, ReplacesID: req.ReplacesID,
		Overbooked: req.Overbook, CreatedAt: now, SlotIDs: ids, ServiceName: svc.Name}
	if a.Lang == "" {
		a.Lang = "fr"
	}
	if d == nil {
		var holdHash string
		a.HoldToken, holdHash = newToken(a.Ref)
		a.HoldExpires = now.Add(time.Duration(svc.HoldMinutes) * time.Minute)
		if err := tx.QueryRowContext(ctx, `INSERT INTO appt_appointments (org_id, ref, service_id, place_id, starts_at, ends_at, units, status,
			hold_hash, hold_expires_at, lang, replaces_id, overbooked, created_at, legacy_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, 'held', ?, ?, ?, ?, ?, ?, 0) RETURNING id`,
			a.OrgID, a.Ref, a.ServiceID, a.PlaceID, a.Start, a.End, a.Units, holdHash, a.HoldExpires, a.Lang, a.ReplacesID, b2i(a.Overbooked), now).Scan(&a.ID); err != nil {
			return nil, fmt.Errorf("insert hold: %w", err)
		}
	} else {
		ants, _ := ParseAntsIDs(d.AntsIDs)
		a.CancelToken, a.ManageToken = m.capTokens(a.Ref)
		cancelHash, manageHash := hashToken(a.CancelToken), hashToken(a.ManageToken)
		a.Status, a.Email, a.Phone, a.Name, a.Answers, a.AntsIDs, a.CitizenID, a.BookedBy, a.ConfirmedAt =
			StatusConfirmed, d.Email, d.Phone, d.Name, d.Answers, ants, d.CitizenID, d.AgentID, now
		args := []any{a.OrgID, a.Ref, a.ServiceID, a.PlaceID, a.Start, a.End, a.Units, a.Lang, a.ReplacesID, b2i(a.Overbooked), now, now,
			d.Email, d.Phone, d.Name, mustJSON(d.Answers), strings.Join(ants, ","), d.CitizenID, d.AgentID, cancelHash, manageHash}
		if tx.Dialect == store.SQLite {
			// No RETURNING: the row ID comes with the result, without a result set.
			res, err := tx.ExecContext(ctx, sqlInsertBook, args...)
			if err == nil {
				a.ID, err = res.LastInsertId()
			}
			if err != nil {
				return nil, fmt.Errorf("insert appointment: %w", err)
			}
		} else if err := tx.QueryRowContext(ctx, sqlInsertBook+` RETURNING id`, args...).Scan(&a.ID); err != nil {
			return nil, fmt.Errorf("insert appointment: %w", err)
		}
	}
	// One statement for all the slots taken.
	args := make([]any, 0, 2*len(ids))
	for _, id := range ids {
		args = append(args, a.ID, id)
	}
	if _, err := tx.ExecContext(ctx, sqlLinks(len(ids)), args...); err != nil {
		return nil, err
	}
	return a, nil
}

// Details are the citizen's answers.
type Details struct {
	Email, Phone, Name string
	CitizenID          int64
	Answers            map[string]string
	AntsIDs            string // raw, as typed
	// AgentID is set when an agent books on behalf of the citizen.
	AgentID int64
}

// checkDetails validates the answers against the service's questions.
func checkDetails(svc *Service, d *Details, units int) error {
	d.Email = strings.ToLower(strings.TrimSpace(d.Email))
	d.Name = strings.TrimSpace(d.Name)
	d.Phone = normPhone(d.Phone)
	if d.Name == "" || len(d.Name) > 200 {
		return errs.OnField(errs.Invalid, "name", "appointments.error.required")
	}
	if at := strings.IndexByte(d.Email, '@'); at < 1 || at == len(d.Email)-1 || len(d.Email) > 254 || strings.ContainsAny(d.Email, " <>\"") {
		return errs.OnField(errs.Invalid, "email", "appointments.error.email")
	}
	if d.Phone != "" && (len(d.Phone) < 10 || len(d.Phone) > 15) {
		return errs.OnField(errs.Invalid, "phone", "appointments.error.phone")
	}
	if err := svc.checkAnswers(d.Answers); err != nil { // questions.go: the service's form, or its inline list
		return err
	}
	if svc.AntsReason != "" {
		ids, bad := ParseAntsIDs(d.AntsIDs)
		switch {
		case len(bad) > 0:
			return errs.OnField(errs.Invalid, "ants_ids", "appointments.error.ants_format", "id", bad[0])
		case len(ids) == 0:
			return errs.OnField(errs.Invalid, "ants_ids", "appointments.error.ants_required")
		case len(ids) > units:
			return errs.OnField(errs.Invalid, "ants_ids", "appointments.error.ants_too_many", "max", units)
		}
	}
	return nil
}

func normPhone(p string) string {
	var b strings.Builder
	for i, r := range strings.TrimSpace(p) {
		if (r >= '0' && r <= '9') || (r == '+' && i == 0) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// SaveDetails stores the answers on a hold (before the recap).
func (m *Module) SaveDetails(ctx context.Context, holdToken string, d Details) (*Appointment, error) {
	a, err := m.ByHoldToken(ctx, holdToken)
	if err != nil {
		return nil, err
	}
	svc, err := m.cachedService(ctx, a.ServiceID)
	if err != nil {
		return nil, err
	}
	if err := checkDetails(&svc, &d, a.Units); err != nil {
		return a, err
	}
	ids, _ := ParseAntsIDs(d.AntsIDs)
	err = m.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE appt_appointments SET email = ?, phone = ?, name = ?, answers = ?, ants_ids = ?, citizen_id = ?
			WHERE id = ? AND status = 'held' AND hold_expires_at > ?`, d.Email, d.Phone, d.Name, mustJSON(d.Answers), strings.Join(ids, ","), d.CitizenID, a.ID, m.now())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errs.New(errs.Conflict, keyHoldExpired)
		}
		return nil
	})
	if err != nil {
		return a, err
	}
	return m.ByHoldToken(ctx, holdToken)
}

// Confirm turns a hold into an appointment, checking the per-citizen rules; the hold's
// expiry is checked in the same conditional UPDATE that confirms it.
func (m *Module) Confirm(ctx context.Context, holdToken string, d Details) (*Appointment, error) {
	a, err := m.ByHoldToken(ctx, holdToken)
	if err != nil {
		return nil, err
	}
	svc, err := m.cachedService(ctx, a.ServiceID)
	if err != nil {
		return nil, err
	}
	if err := checkDetails(&svc, &d, a.Units); err != nil {
		return nil, err
	}
	if err := m.antsPrecheck(ctx, &svc, d.AntsIDs); err != nil {
		return nil, err
	}
	err = m.inBookingTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		return m.confirmTx(ctx, tx, a, &svc, d, true)
	})
	if errs.CodeOf(err) == errs.Conflict && err != nil && strings.Contains(err.Error(), keyHoldExpired) {
		// Give the place back now rather than at the next sweep.
		_ = m.inTx(ctx, func(tx *store.Tx) error {
			_, e := m.release(ctx, tx, a.ID, []string{StatusHeld}, StatusExpired, m.now())
			return e
		})
	}
	return a, err
}

// Book holds and confirms in one transaction (the API's createAppointment, agents' booking):
// one conditional UPDATE per slot, one INSERT of the confirmed appointment, one of its
// slots, one of its persons; the appointment itself is the outbox of its side effects. On
// SQLite the bookings arriving together share one write transaction (perf_book.go); on
// PostgreSQL a one-slot booking is one round trip, its commit included.
func (m *Module) Book(ctx context.Context, req HoldRequest, d Details) (*Appointment, error) {
	s, svc, err := m.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := checkDetails(&svc, &d, max(req.Units, 1)); err != nil {
		return nil, err
	}
	if err := m.antsPrecheck(ctx, &svc, d.AntsIDs); err != nil {
		return nil, err
	}
	a, err := m.book(ctx, req, d, &svc, s)
	if retry, fresh, ferr := m.recheckSlot(ctx, err, req.SlotID, s); retry && !again(ctx) {
		return m.Book(withAgain(ctx), req, d)
	} else if ferr != nil {
		return nil, ferr
	} else {
		return a, m.withNearest(ctx, err, req, fresh)
	}
}

// bookTx is a booking inside a write transaction.
func (m *Module) bookTx(ctx context.Context, tx *store.Tx, req HoldRequest, d Details, svc *Service, s Slot) (*Appointment, error) {
	a, err := m.holdTx(ctx, tx, req, svc, s, &d)
	if err != nil {
		return nil, err
	}
	return a, m.confirmedTx(ctx, tx, a, svc, d)
}

func (m *Module) confirmTx(ctx context.Context, tx *store.Tx, a *Appointment, svc *Service, d Details, checkHold bool) error {
	now := m.now()
	ids, _ := ParseAntsIDs(d.AntsIDs)
	a.CancelToken, a.ManageToken = m.capTokens(a.Ref)
	cancelHash, manageHash := hashToken(a.CancelToken), hashToken(a.ManageToken)
	q := `UPDATE appt_appointments SET status = 'confirmed', confirmed_at = ?, email = ?, phone = ?, name = ?, answers = ?, ants_ids = ?,
		citizen_id = ?, booked_by = ?, cancel_hash = ?, manage_hash = ?, hold_hash = '', hold_expires_at = NULL WHERE id = ? AND status = 'held'`
	args := []any{now, d.Email, d.Phone, d.Name, mustJSON(d.Answers), strings.Join(ids, ","), d.CitizenID, d.AgentID, cancelHash, manageHash, a.ID}
	if checkHold {
		q += ` AND hold_expires_at > ?`
		args = append(args, now)
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("confirm: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		var status string
		_ = tx.QueryRowContext(ctx, `SELECT status FROM appt_appointments WHERE id = ?`, a.ID).Scan(&status)
		if status == StatusConfirmed {
			return errs.New(errs.Conflict, "appointments.error.already_confirmed")
		}
		return errs.New(errs.Conflict, keyHoldExpired)
	}
	a.Status, a.Email, a.Phone, a.Name, a.Answers, a.AntsIDs, a.CitizenID, a.ConfirmedAt = StatusConfirmed, d.Email, d.Phone, d.Name, d.Answers, ids, d.CitizenID, now
	return m.confirmedTx(ctx, tx, a, svc, d)
}

// confirmedTx completes a confirmation in its transaction: the rescheduled appointment goes,
// the per-citizen rules and the per-person uniqueness are checked. The side effects (mail
// with the .ics, reminder, ANTS, workflow) need no job here: the confirmed row with
// notified_at NULL is their outbox, committed with the booking, and the notifier
// (notify.go) works through it.
func (m *Module) confirmedTx(ctx context.Context, tx *store.Tx, a *Appointment, svc *Service, d Details) error {
	now := m.now()
	if a.ReplacesID != 0 {
		// The rescheduled appointment goes only now that its replacement is confirmed.
		ok, err := m.release(ctx, tx, a.ReplacesID, []string{StatusConfirmed}, StatusCancelled, now)
		if err != nil {
			return err
		}
		if !ok {
			return errs.New(errs.Conflict, "appointments.error.replaced_gone")
		}
	}
	persons := [][2]string{{"email", a.Email}}
	if a.Phone != "" {
		persons = append(persons, [2]string{"phone", a.Phone})
	}
	for _, id := range a.AntsIDs {
		persons = append(persons, [2]string{"ants", id})
	}
	// One INSERT for every identity; the partial unique index skips (and so reveals) the
	// ones already booked for this need, whatever the concurrency.
	need := svc.NeedKey()
	args := make([]any, 0, 4*len(persons))
	for _, p := range persons {
		args = append(args, a.ID, need, p[0], p[1])
	}
	res, err := tx.ExecContext(ctx, sqlPersons(len(persons)), args...)
	if err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	var took map[[2]string]bool // nil: all inserted
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if int(n) < len(persons) {
		// Some were skipped: which (a refusal, so rare enough for a query).
		took = map[[2]string]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT kind, value FROM appt_persons WHERE appointment_id = ?`, a.ID)
		if err != nil {
			return fmt.Errorf("persons: %w", err)
		}
		for rows.Next() {
			var p [2]string
			if err := rows.Scan(&p[0], &p[1]); err != nil {
				rows.Close()
				return err
			}
			took[p] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	// The per-citizen limits are counted after the persons are inserted, so that every
	// booking takes its locks in one order (slots, persons, person lock), the one-round-trip
	// booking of PostgreSQL included; a refused limit is reported before a repeated person.
	if d.AgentID == 0 || !a.Overbooked {
		if err := m.lockPerson(ctx, tx, svc, a.Email); err != nil {
			return err
		}
		if err := m.checkRules(ctx, tx, a, svc, now); err != nil {
			return err
		}
	}
	for _, p := range persons {
		if took != nil && !took[p] {
			return errs.OnField(errs.Conflict, personField(p[0]), rulePrefix+"same_person_"+p[0])
		}
	}
	tx.AfterCommit(m.kickNotifier)
	return nil
}

func personField(kind string) string {
	switch kind {
	case "phone":
		return "phone"
	case "ants":
		return "ants_ids"
	}
	return "email"
}

// lockPerson serialises, on PostgreSQL, the bookings of one email address while the
// per-citizen limits are counted: without it two concurrent bookings of one person (on two
// nodes, or two tabs) could each count the other as absent. SQLite's single writer already
// serialises them. The lock is taken after the slots' row locks and nothing takes a slot
// after it, so it adds no deadlock.
func (m *Module) lockPerson(ctx context.Context, tx *store.Tx, svc *Service, email string) error {
	if tx.Dialect != store.Postgres || (svc.MaxUpcoming <= 0 && svc.MaxUpcomingCategory <= 0 && svc.MinGapDays <= 0) {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, personLockKey(email))
	return err
}

// personLockKey is the advisory lock serialising one person's bookings on PostgreSQL (the
// per-citizen rules count their other appointments), taken by both booking paths.
func personLockKey(email string) int64 {
	h := fnv.New64a()
	h.Write([]byte("appointments.person|" + email))
	return int64(h.Sum64())
}

// checkRules applies the per-citizen limits; replaced appointments are already released.
func (m *Module) checkRules(ctx context.Context, tx *store.Tx, a *Appointment, svc *Service, now time.Time) error {
	if svc.MaxUpcoming > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, sqlRuleUpcoming, a.Email, svc.ID, now, a.ID).Scan(&n); err != nil {
			return err
		}
		if n >= svc.MaxUpcoming {
			return errs.OnField(errs.Conflict, "email", rulePrefix+"max_upcoming", "max", svc.MaxUpcoming)
		}
	}
	if svc.MaxUpcomingCategory > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, sqlRuleCategory, a.Email, now, a.ID, svc.CategoryID).Scan(&n); err != nil {
			return err
		}
		if n >= svc.MaxUpcomingCategory {
			return errs.OnField(errs.Conflict, "email", rulePrefix+"max_upcoming_category", "max", svc.MaxUpcomingCategory)
		}
	}
	if svc.MinGapDays > 0 {
		gap := time.Duration(svc.MinGapDays) * 24 * time.Hour
		var n int
		if err := tx.QueryRowContext(ctx, sqlRuleGap, a.Email, svc.ID, a.ID, a.Start.Add(-gap), a.Start.Add(gap)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errs.OnField(errs.Conflict, "email", rulePrefix+"min_gap", "days", svc.MinGapDays)
		}
	}
	return nil
}

const apptCols = `a.id, a.org_id, a.ref, a.service_id, a.place_id, a.starts_at, a.ends_at, a.units, a.status, a.state, a.hold_expires_at,
	a.citizen_id, a.email, a.phone, a.name, a.answers, a.ants_ids, a.lang, a.replaces_id, a.overbooked, a.booked_by, a.message,
	a.created_at, a.confirmed_at, a.cancelled_at, s.name, p.name, p.address || ', ' || p.zip_code || ' ' || p.city`

const apptFrom = ` FROM appt_appointments a JOIN appt_services s ON s.id = a.service_id JOIN appt_places p ON p.id = a.place_id `

func scanAppt(sc interface{ Scan(...any) error }) (*Appointment, error) {
	a := &Appointment{}
	var hold, conf, canc sql.NullTime
	var answers, ants string
	var over int
	if err := sc.Scan(&a.ID, &a.OrgID, &a.Ref, &a.ServiceID, &a.PlaceID, &a.Start, &a.End, &a.Units, &a.Status, &a.State, &hold,
		&a.CitizenID, &a.Email, &a.Phone, &a.Name, &answers, &ants, &a.Lang, &a.ReplacesID, &over, &a.BookedBy, &a.Message,
		&a.CreatedAt, &conf, &canc, &a.ServiceName, &a.PlaceName, &a.PlaceAddress); err != nil {
		return nil, err
	}
	a.Start, a.End, a.CreatedAt = a.Start.UTC(), a.End.UTC(), a.CreatedAt.UTC()
	a.HoldExpires, a.ConfirmedAt, a.CancelledAt = hold.Time.UTC(), conf.Time.UTC(), canc.Time.UTC()
	if !hold.Valid {
		a.HoldExpires = time.Time{}
	}
	if !conf.Valid {
		a.ConfirmedAt = time.Time{}
	}
	if !canc.Valid {
		a.CancelledAt = time.Time{}
	}
	a.Overbooked = over == 1
	_ = json.Unmarshal([]byte(answers), &a.Answers)
	if ants != "" {
		a.AntsIDs = strings.Split(ants, ",")
	}
	return a, nil
}

func (m *Module) apptWhere(ctx context.Context, q store.Querier, where string, args ...any) (*Appointment, error) {
	a, err := scanAppt(q.QueryRowContext(ctx, `SELECT `+apptCols+apptFrom+`WHERE `+where, args...))
	if err == sql.ErrNoRows {
		return nil, errs.New(errs.NotFound, keyBadToken)
	}
	return a, err
}

// ByHoldToken finds a hold by its capability token (expired or not).
func (m *Module) ByHoldToken(ctx context.Context, raw string) (*Appointment, error) {
	if raw == "" {
		return nil, errs.New(errs.NotFound, keyBadToken)
	}
	ref, legacy, ok := tokenRef(raw)
	if !ok {
		return nil, errs.New(errs.NotFound, keyBadToken)
	}
	var a *Appointment
	var err error
	if legacy {
		a, err = m.apptWhere(ctx, m.db.Read(), `a.legacy_tokens = 1 AND a.hold_hash = ?`, hashToken(raw))
	} else {
		a, err = m.apptWhere(ctx, m.db.Read(), `a.ref = ? AND a.hold_hash = ?`, ref, hashToken(raw))
	}
	if err != nil {
		return nil, err
	}
	if a.Status != StatusHeld {
		return a, errs.New(errs.Conflict, keyHoldExpired)
	}
	a.HoldToken = raw
	return a, nil
}

// ByToken finds a confirmed (or cancelled) appointment by its cancel or manage token.
func (m *Module) ByToken(ctx context.Context, raw string) (*Appointment, error) {
	ref, legacy, ok := tokenRef(raw)
	if !ok {
		return nil, errs.New(errs.NotFound, keyBadToken)
	}
	h := hashToken(raw)
	if !legacy {
		return m.apptWhere(ctx, m.db.Read(), `a.ref = ? AND (a.cancel_hash = ? OR a.manage_hash = ?)`, ref, h, h)
	}
	// One query per column: each has its own partial index.
	a, err := m.apptWhere(ctx, m.db.Read(), `a.legacy_tokens = 1 AND a.cancel_hash = ?`, h)
	if errs.CodeOf(err) == errs.NotFound {
		a, err = m.apptWhere(ctx, m.db.Read(), `a.legacy_tokens = 1 AND a.manage_hash = ?`, h)
	}
	return a, err
}

// Appointment returns one appointment by ID.
func (m *Module) Appointment(ctx context.Context, id int64) (*Appointment, error) {
	a, err := m.apptWhere(ctx, m.db.Read(), `a.id = ?`, id)
	if err != nil && errs.CodeOf(err) == errs.NotFound {
		return nil, errs.New(errs.NotFound, "appointments.error.no_appointment")
	}
	return a, err
}

// Cancel cancels by capability token: the places are free again at once. A token of an
// appointment already cancelled is refused (it cannot be used twice).
func (m *Module) Cancel(ctx context.Context, token, message string) (*Appointment, error) {
	a, err := m.ByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	return a, m.cancel(ctx, a, message, 0)
}

// CancelByAgent cancels with a message to the citizen.
func (m *Module) CancelByAgent(ctx context.Context, agent *kernel.Agent, id int64, message string) (*Appointment, error) {
	a, err := m.Appointment(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.OrgID != agent.OrgID {
		return nil, errs.New(errs.NotFound, "appointments.error.no_appointment")
	}
	return a, m.cancel(ctx, a, message, agent.ID)
}

func (m *Module) cancel(ctx context.Context, a *Appointment, message string, agentID int64) error {
	now := m.now()
	return m.inTx(ctx, func(tx *store.Tx) error {
		ok, err := m.release(ctx, tx, a.ID, []string{StatusConfirmed}, StatusCancelled, now)
		if err != nil {
			return err
		}
		if !ok {
			return errs.New(errs.Conflict, "appointments.error.already_cancelled")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE appt_appointments SET message = ?, cancel_hash = '', manage_hash = '' WHERE id = ?`, message, a.ID); err != nil {
			return err
		}
		a.Status, a.CancelledAt, a.Message = StatusCancelled, now, message
		if agentID != 0 && m.audit != nil {
			if err := m.audit.Record(ctx, tx, kernel.AuditEntry{Action: "appointments.cancel", ResourceType: "appointment",
				ResourceID: a.Ref, After: map[string]any{"message": message}}); err != nil {
				return err
			}
		}
		return m.jobs.Enqueue(ctx, tx, CancelledArgs{ID: a.ID, ByAgent: agentID != 0}, nil)
	})
}

// Reschedule holds a new slot for the appointment of the manage token; the old one stays
// until the new hold is confirmed (ConfirmReschedule).
func (m *Module) Reschedule(ctx context.Context, token string, slotID int64) (*Appointment, error) {
	old, err := m.ByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if old.Status != StatusConfirmed {
		return nil, errs.New(errs.Conflict, "appointments.error.already_cancelled")
	}
	return m.Hold(ctx, HoldRequest{SlotID: slotID, ServiceID: old.ServiceID, Units: old.Units, ReplacesID: old.ID, Lang: old.Lang})
}

// DetailsOf returns the details an appointment was booked with (for a reschedule).
func DetailsOf(a *Appointment) Details {
	return Details{Email: a.Email, Phone: a.Phone, Name: a.Name, CitizenID: a.CitizenID, Answers: a.Answers, AntsIDs: strings.Join(a.AntsIDs, " ")}
}
