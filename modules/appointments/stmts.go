package appointments

import (
	"strings"
)

// The booking transaction's statements. On SQLite they run prepared through the kernel's
// statement cache (kernel/store: prepared on the writer once seen twice, bound once per
// transaction, which a group of bookings shares); pgx prepares and caches them itself.

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
	sqlSavepoint  = `SAVEPOINT booking`
	sqlRelease    = `RELEASE booking`
	sqlRollback   = `ROLLBACK TO booking`
	sqlInsertBook = `INSERT INTO appt_appointments (org_id, ref, service_id, place_id, starts_at, ends_at, units, status,
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

// booking is the state of the booking path: the SQLite group commit's queue (perf_book.go).
type booking struct {
	group groupCommit
	// general books every booking through bookTx (benchmarks compare the paths).
	general bool
}
