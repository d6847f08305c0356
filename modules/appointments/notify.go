package appointments

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// The notifier sends what follows a confirmation (mail with the .ics and the capability
// links, reminder job, ANTS declaration, workflow). Its outbox is the appointment itself:
// status confirmed and notified_at NULL, committed in the booking transaction, so nothing
// confirmed can be missed, and a booking costs no job insert. afterConfirm sets notified_at
// by a conditional UPDATE in the transaction that queues the mail, so each appointment is
// notified exactly once even when several nodes work through the same outbox.

// capTokens derives the cancel and manage tokens of an appointment from its reference
// (random, unique) and the instance's secret key: 128 bits of HMAC-SHA256, unpredictable
// without the key. The database keeps only their SHA-256 hashes, and the notifier can
// rebuild them for the mail without any raw token being stored anywhere.
func (m *Module) capTokens(ref string) (cancel, manage string) {
	mk := func(kind string) string {
		h := hmac.New(sha256.New, m.tokenKey)
		h.Write([]byte("appointments|" + kind + "|" + ref))
		return ref + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16]) // booking.go: tokens
	}
	return mk("cancel"), mk("manage")
}

func (m *Module) initTokenKey() {
	if m.cfg != nil && m.cfg.SecretKey != "" {
		m.tokenKey = []byte(m.cfg.SecretKey)
		return
	}
	// No secret configured (bare test setups): a key for this process only.
	m.tokenKey = make([]byte, 32)
	_, _ = rand.Read(m.tokenKey)
}

// kickNotifier wakes the notifier after a commit (never blocks).
func (m *Module) kickNotifier() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// notifier is the outbox state of this process: backoff of the appointments that failed.
type notifier struct {
	mu    sync.Mutex
	retry map[int64]notifyRetry
}

type notifyRetry struct {
	n    int
	next time.Time
}

// runNotifier works through the outbox when kicked and every `every` (the retry path, and
// the catch-up after a crash or for another node's bookings).
func (m *Module) runNotifier(every time.Duration) {
	defer m.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		m.NotifyPending(context.Background())
		select {
		case <-m.stop:
			return
		case <-m.kick:
		case <-t.C:
		}
	}
}

// NotifyPending sends what follows every confirmed appointment not yet notified; it returns
// how many it handled. Failures are retried later with a growing delay (up to an hour).
func (m *Module) NotifyPending(ctx context.Context) int {
	done := 0
	for {
		rows, err := m.db.Read().QueryContext(ctx, `SELECT id FROM appt_appointments WHERE notified_at IS NULL AND status = 'confirmed'
			ORDER BY id LIMIT 200`)
		if err != nil {
			m.log.Error("appointments outbox", "err", err)
			return done
		}
		ids, err := scanIDs(rows)
		if err != nil {
			m.log.Error("appointments outbox", "err", err)
			return done
		}
		now := time.Now()
		progressed := false
		for _, id := range ids {
			m.notify.mu.Lock()
			r, failed := m.notify.retry[id]
			m.notify.mu.Unlock()
			if failed && now.Before(r.next) {
				continue
			}
			if err := m.afterConfirm(ctx, ConfirmedArgs{ID: id}); err != nil {
				r.n++
				r.next = now.Add(min(time.Duration(1<<min(r.n, 12))*time.Second, time.Hour))
				m.notify.mu.Lock()
				if m.notify.retry == nil {
					m.notify.retry = map[int64]notifyRetry{}
				}
				m.notify.retry[id] = r
				m.notify.mu.Unlock()
				m.log.Warn("appointment confirmation side effects failed; will retry", "id", id, "attempt", r.n, "err", err)
				continue
			}
			if failed {
				m.notify.mu.Lock()
				delete(m.notify.retry, id)
				m.notify.mu.Unlock()
			}
			progressed = true
			done++
		}
		if len(ids) < 200 || !progressed {
			return done
		}
	}
}
