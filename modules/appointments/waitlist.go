package appointments

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// resendLinks replaces an appointment's capability tokens and mails the new links.
func (m *Module) resendLinks(ctx context.Context, a *Appointment) error {
	cancel, ch := newToken(a.Ref)
	manage, mh := newToken(a.Ref)
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE appt_appointments SET cancel_hash = ?, manage_hash = ? WHERE id = ? AND status = 'confirmed'`, ch, mh, a.ID); err != nil {
			return err
		}
		t := a.Start.In(m.loc)
		links := m.links(a, cancel, manage)
		return m.mail.Send(ctx, tx, kernel.Mail{To: []string{a.Email}, Lang: a.Lang, Template: ID + "/links", OrgID: a.OrgID,
			Data: map[string]any{"Ref": a.Ref, "Service": a.ServiceName, "Place": a.PlaceName, "Date": t.Format("02/01/2006"), "Time": t.Format("15:04"),
				"Cancel": links["Cancel"], "Manage": links["Manage"]}})
	})
}

// JoinWaitingList records a wish to be told when a place frees between from and to.
func (m *Module) JoinWaitingList(ctx context.Context, svc *Service, placeID int64, email, from, to string) error {
	email = strings.ToLower(strings.TrimSpace(email))
	if at := strings.IndexByte(email, '@'); at < 1 || at == len(email)-1 {
		return errs.OnField(errs.Invalid, "email", "appointments.error.email")
	}
	f, err1 := time.Parse(dayLayout, from)
	t, err2 := time.Parse(dayLayout, to)
	if err1 != nil {
		return errs.OnField(errs.Invalid, "from", "appointments.error.date")
	}
	if err2 != nil || t.Before(f) {
		return errs.OnField(errs.Invalid, "to", "appointments.error.date_order")
	}
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO appt_waits (org_id, service_id, place_id, email, from_day, to_day, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			svc.OrgID, svc.ID, placeID, email, from, to, m.now())
		return err
	})
}

// offerToWaiting offers a freed place to the first in line whose period covers it; each
// freed place goes to the next one, in turn.
func (m *Module) offerToWaiting(ctx context.Context, tx *store.Tx, a *Appointment, svc *Service, place *Place) error {
	day := a.Start.In(m.loc).Format(dayLayout)
	var id int64
	var email string
	err := tx.QueryRowContext(ctx, `SELECT id, email FROM appt_waits WHERE service_id = ? AND status = 'waiting' AND (place_id = 0 OR place_id = ?)
		AND from_day <= ? AND to_day >= ? ORDER BY id LIMIT 1`, svc.ID, place.ID, day, day).Scan(&id, &email)
	if err == sql.ErrNoRows {
		return nil // nobody waits
	} else if err != nil {
		return err
	}
	slot := firstSlot(a)
	if slot == 0 { // loaded without its slots (the cancellation job)
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MIN(slot_id), 0) FROM appt_appointment_slots WHERE appointment_id = ?`, a.ID).Scan(&slot); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE appt_waits SET status = 'offered', offered_at = ?, offered_slot = ? WHERE id = ?`, m.now(), slot, id); err != nil {
		return err
	}
	t := a.Start.In(m.loc)
	link := m.baseURL() + "/rdv/demarche/" + strconv.FormatInt(svc.ID, 10) + "/" + strconv.FormatInt(place.ID, 10) + "/" + day
	return m.mail.Send(ctx, tx, kernel.Mail{To: []string{email}, Lang: "fr", Template: ID + "/offer", OrgID: a.OrgID,
		Data: map[string]any{"Service": svc.Name, "Place": place.Name, "Date": t.Format("02/01/2006"), "Time": t.Format("15:04"), "Link": link}})
}

func firstSlot(a *Appointment) int64 {
	if len(a.SlotIDs) > 0 {
		return a.SlotIDs[0]
	}
	return 0
}

func (m *Module) pageWait(w http.ResponseWriter, r *http.Request) {
	s, ok := m.service(w, r)
	if !ok {
		return
	}
	ps, _ := m.Places(r.Context(), s.OrgID, s.ID)
	opts := []map[string]string{{"Value": "0", "Label": m.i18n.T(m.lang(r), "appointments.wait.any_place")}}
	for _, p := range ps {
		opts = append(opts, map[string]string{"Value": strconv.FormatInt(p.ID, 10), "Label": p.Name})
	}
	m.render(w, r, "wait.html", "appointments.wait.title", 0, web.NewForm(url.Values{}), map[string]any{"Service": s, "Places": opts})
}

func (m *Module) postWait(w http.ResponseWriter, r *http.Request) {
	s, ok := m.service(w, r)
	if !ok {
		return
	}
	f, err := web.ParseForm(r)
	if err != nil {
		m.message(w, r, http.StatusRequestEntityTooLarge, "appointments.error.too_large")
		return
	}
	place, _ := strconv.ParseInt(f.Get("place"), 10, 64)
	err = m.JoinWaitingList(r.Context(), s, place, f.Get("email"), f.Get("from"), f.Get("to"))
	if err != nil {
		if e, ok := errs.As(err); ok && e.Field != "" {
			f.Fail(e.Field, e.Key)
			ps, _ := m.Places(r.Context(), s.OrgID, s.ID)
			opts := []map[string]string{{"Value": "0", "Label": m.i18n.T(m.lang(r), "appointments.wait.any_place")}}
			for _, p := range ps {
				opts = append(opts, map[string]string{"Value": strconv.FormatInt(p.ID, 10), "Label": p.Name})
			}
			m.render(w, r, "wait.html", "appointments.wait.title", http.StatusBadRequest, f, map[string]any{"Service": s, "Places": opts})
			return
		}
		m.fail(w, r, err)
		return
	}
	m.message(w, r, http.StatusOK, "appointments.wait.done")
}
