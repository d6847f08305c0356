package appointments

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/riverqueue/river"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/modules/workflow"
)

// ConfirmedArgs: after a confirmation, mail the citizen (with the .ics and the capability
// links), schedule the reminder, tell ANTS, attach the workflow. The raw tokens travel in the
// job (the database keeps only their hashes) and leave with it once done.
type ConfirmedArgs struct {
	ID     int64  `json:"id"`
	Cancel string `json:"cancel,omitempty"`
	Manage string `json:"manage,omitempty"`
}

func (ConfirmedArgs) Kind() string { return "appointments.confirmed" }

// CancelledArgs: after a cancellation, mail, tell ANTS, offer the place to the waiting list.
type CancelledArgs struct {
	ID      int64 `json:"id"`
	ByAgent bool  `json:"by_agent"`
}

func (CancelledArgs) Kind() string { return "appointments.cancelled" }

// ReminderArgs is unique per appointment and start: one reminder, whatever the retries.
type ReminderArgs struct {
	ID    int64 `json:"id" river:"unique"`
	Start int64 `json:"start" river:"unique"`
}

func (ReminderArgs) Kind() string { return "appointments.reminder" }

// SMSArgs sends one text message (retried on its own, so a slow gateway never re-sends mail).
type SMSArgs struct {
	OrgID int64  `json:"org_id"`
	To    string `json:"to"`
	Text  string `json:"text"`
}

func (SMSArgs) Kind() string { return "appointments.sms" }

// AntsArgs declares (Op "create") or withdraws (Op "delete") an appointment to the ANTS
// coordination API; River retries with backoff while it is down.
type AntsArgs struct {
	Op string `json:"op"`
	ID int64  `json:"id"`
}

func (AntsArgs) Kind() string { return "appointments.ants" }

type confirmedWorker struct {
	river.WorkerDefaults[ConfirmedArgs]
	m *Module
}

func (w *confirmedWorker) Work(ctx context.Context, j *river.Job[ConfirmedArgs]) error {
	return w.m.afterConfirm(ctx, j.Args)
}

type cancelledWorker struct {
	river.WorkerDefaults[CancelledArgs]
	m *Module
}

func (w *cancelledWorker) Work(ctx context.Context, j *river.Job[CancelledArgs]) error {
	return w.m.afterCancel(ctx, j.Args)
}

type reminderWorker struct {
	river.WorkerDefaults[ReminderArgs]
	m *Module
}

func (w *reminderWorker) Work(ctx context.Context, j *river.Job[ReminderArgs]) error {
	_, err := w.m.remind(ctx, j.Args)
	return err
}

type smsWorker struct {
	river.WorkerDefaults[SMSArgs]
	m *Module
}

func (w *smsWorker) Work(ctx context.Context, j *river.Job[SMSArgs]) error {
	st, err := w.m.Settings(ctx, w.m.db.Read(), j.Args.OrgID)
	if err != nil {
		return err
	}
	p := w.m.sms(st)
	if p == nil {
		return nil // no gateway configured
	}
	return p.Send(ctx, j.Args.To, j.Args.Text)
}

type antsWorker struct {
	river.WorkerDefaults[AntsArgs]
	m *Module
}

func (w *antsWorker) Work(ctx context.Context, j *river.Job[AntsArgs]) error {
	return w.m.antsSync(ctx, j.Args)
}

func (m *Module) addWorkers(ws *river.Workers) {
	river.AddWorker(ws, &confirmedWorker{m: m})
	river.AddWorker(ws, &cancelledWorker{m: m})
	river.AddWorker(ws, &reminderWorker{m: m})
	river.AddWorker(ws, &smsWorker{m: m})
	river.AddWorker(ws, &antsWorker{m: m})
}

func (m *Module) links(a *Appointment, cancel, manage string) map[string]string {
	base := m.baseURL()
	out := map[string]string{}
	if cancel != "" {
		out["Cancel"] = base + "/rdv/annuler/" + cancel
	}
	if manage != "" {
		out["Manage"] = base + "/rdv/gerer/" + manage
	}
	return out
}

func (m *Module) baseURL() string {
	if m.cfg != nil {
		return m.cfg.BaseURL
	}
	return ""
}

func (m *Module) mailData(a *Appointment, place *Place, svc *Service, links map[string]string) map[string]any {
	loc := a.Start.In(m.loc)
	return map[string]any{"Ref": a.Ref, "Name": a.Name, "Service": svc.Name, "Place": place.Name,
		"Address": place.Address + ", " + place.ZipCode + " " + place.City, "Access": place.Access, "Accessibility": place.Accessibility,
		"Date": loc.Format("02/01/2006"), "Time": loc.Format("15:04"), "Bring": svc.Bring, "Cancel": links["Cancel"], "Manage": links["Manage"],
		"Message": a.Message, "Answers": m.answerLines(context.Background(), svc, a.Answers, a.Lang)}
}

// afterConfirm runs once per confirmation: a conditional UPDATE of notified_at makes a
// retried job a no-op.
func (m *Module) afterConfirm(ctx context.Context, args ConfirmedArgs) error {
	a, err := m.Appointment(ctx, args.ID)
	if err != nil {
		return err
	}
	svc, err := m.Service(ctx, m.db.Read(), a.ServiceID)
	if err != nil {
		return err
	}
	place, err := m.Place(ctx, m.db.Read(), a.PlaceID)
	if err != nil {
		return err
	}
	return m.inTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE appt_appointments SET notified_at = ? WHERE id = ? AND notified_at IS NULL AND status = 'confirmed'`, m.now(), a.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		if args.Cancel == "" {
			args.Cancel, args.Manage = m.capTokens(a.Ref)
		}
		links := m.links(a, args.Cancel, args.Manage)
		host := "parvis"
		if u, err := url.Parse(m.baseURL()); err == nil && u.Host != "" {
			host = u.Hostname()
		}
		cal := ICS(a, &place, svc.Name, svc.Bring, links["Manage"], host, m.loc, m.now())
		if err := m.mail.Send(ctx, tx, kernel.Mail{To: []string{a.Email}, Lang: a.Lang, Template: ID + "/confirmed", OrgID: a.OrgID,
			Data: m.mailData(a, &place, &svc, links), Attachments: []kernel.Attachment{{Name: "rendez-vous.ics", ContentType: "text/calendar; charset=utf-8; method=PUBLISH", Data: cal}}}); err != nil {
			return err
		}
		if svc.ReminderHours > 0 {
			at := a.Start.Add(-time.Duration(svc.ReminderHours) * time.Hour)
			if at.After(m.now()) {
				if err := m.jobs.Enqueue(ctx, tx, ReminderArgs{ID: a.ID, Start: a.Start.Unix()}, &river.InsertOpts{ScheduledAt: at,
					UniqueOpts: river.UniqueOpts{ByArgs: true}}); err != nil {
					return err
				}
			}
		}
		if svc.AntsReason != "" && len(a.AntsIDs) > 0 {
			if err := m.jobs.Enqueue(ctx, tx, AntsArgs{Op: "create", ID: a.ID}, nil); err != nil {
				return err
			}
		}
		return m.syncWorkflow(ctx, tx, a, &svc, &place)
	})
}

// remind sends the reminder exactly once, and never for an appointment cancelled or moved
// since the job was scheduled. It reports whether it sent.
func (m *Module) remind(ctx context.Context, args ReminderArgs) (bool, error) {
	a, err := m.Appointment(ctx, args.ID)
	if err != nil {
		if errs.CodeOf(err) == errs.NotFound {
			return false, nil
		}
		return false, err
	}
	svc, err := m.Service(ctx, m.db.Read(), a.ServiceID)
	if err != nil {
		return false, err
	}
	place, err := m.Place(ctx, m.db.Read(), a.PlaceID)
	if err != nil {
		return false, err
	}
	sent := false
	err = m.inTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE appt_appointments SET reminded_at = ? WHERE id = ? AND status = 'confirmed' AND reminded_at IS NULL
			AND starts_at = ?`, m.now(), a.ID, time.Unix(args.Start, 0).UTC())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		sent = true
		data := m.mailData(a, &place, &svc, nil)
		if err := m.mail.Send(ctx, tx, kernel.Mail{To: []string{a.Email}, Lang: a.Lang, Template: ID + "/reminder", OrgID: a.OrgID, Data: data}); err != nil {
			return err
		}
		if a.Phone != "" {
			text := m.i18n.T(a.Lang, "appointments.sms.reminder", "service", svc.Name, "date", data["Date"], "time", data["Time"], "place", place.Name)
			return m.jobs.Enqueue(ctx, tx, SMSArgs{OrgID: a.OrgID, To: a.Phone, Text: text}, nil)
		}
		return nil
	})
	return sent, err
}

func (m *Module) afterCancel(ctx context.Context, args CancelledArgs) error {
	a, err := m.Appointment(ctx, args.ID)
	if err != nil {
		return err
	}
	svc, err := m.Service(ctx, m.db.Read(), a.ServiceID)
	if err != nil {
		return err
	}
	place, err := m.Place(ctx, m.db.Read(), a.PlaceID)
	if err != nil {
		return err
	}
	return m.inTx(ctx, func(tx *store.Tx) error {
		// Once per cancellation, whatever the retries: the marker commits with the mail.
		res, err := tx.ExecContext(ctx, `UPDATE appt_appointments SET cancel_notified_at = ? WHERE id = ? AND status = 'cancelled'
			AND cancel_notified_at IS NULL`, m.now(), a.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		// A replaced appointment is not "cancelled" for the citizen: the new one's mail says it.
		var replaced int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM appt_appointments WHERE replaces_id = ? AND status = 'confirmed'`, a.ID).Scan(&replaced); err != nil {
			return err
		}
		if replaced == 0 {
			if err := m.mail.Send(ctx, tx, kernel.Mail{To: []string{a.Email}, Lang: a.Lang, Template: ID + "/cancelled", OrgID: a.OrgID,
				Data: m.mailData(a, &place, &svc, nil)}); err != nil {
				return err
			}
		}
		if svc.AntsReason != "" && len(a.AntsIDs) > 0 {
			if err := m.jobs.Enqueue(ctx, tx, AntsArgs{Op: "delete", ID: a.ID}, nil); err != nil {
				return err
			}
		}
		if err := m.offerToWaiting(ctx, tx, a, &svc, &place); err != nil {
			return err
		}
		return m.syncWorkflow(ctx, tx, a, &svc, &place)
	})
}

// workflowKey is the workflow every organisation's appointments run through; towns edit it
// (add steps and messages) in the workflow module's editor.
const workflowKey = "appointments"

const resourceType = "appointments.appointment"

func defaultWorkflow() *workflow.Definition {
	from := []string{"booked", "arrived"}
	return &workflow.Definition{Key: workflowKey, Title: "Rendez-vous",
		States: []workflow.State{
			{Key: "booked", Title: "Réservé", PublicLabel: "Rendez-vous confirmé", Initial: true},
			{Key: "arrived", Title: "Arrivé", PublicLabel: "Accueilli"},
			{Key: "done", Title: "Terminé", PublicLabel: "Rendez-vous honoré", Final: true},
			{Key: "no_show", Title: "Absent", PublicLabel: "Absent au rendez-vous", Final: true},
			{Key: "cancelled", Title: "Annulé", PublicLabel: "Rendez-vous annulé", Final: true},
		},
		Actions: []workflow.Action{
			{Key: "arrive", Title: "Arrivé", From: []string{"booked"}, To: "arrived", Permission: PermManage},
			{Key: "no_show", Title: "Absent", From: []string{"booked"}, To: "no_show", Permission: PermManage},
			{Key: "done", Title: "Terminé", From: from, To: "done", Permission: PermManage},
			{Key: "cancel", Title: "Annulé", From: from, To: "cancelled", Kind: workflow.KindAuto, Trigger: workflow.OnCondition,
				Condition: &workflow.Condition{Field: "status", Op: "eq", Value: StatusCancelled}},
		}}
}

// syncWorkflow attaches the appointment to the organisation's workflow (creating the
// default one the first time) and passes its status on.
func (m *Module) syncWorkflow(ctx context.Context, tx *store.Tx, a *Appointment, svc *Service, place *Place) error {
	if m.wf == nil {
		return nil
	}
	ref := workflow.Ref{Type: resourceType, ID: a.Ref}
	if _, err := m.wf.Definition(ctx, a.OrgID, workflowKey); errs.CodeOf(err) == errs.NotFound {
		if _, err := m.wf.SaveDefinition(ctx, tx, a.OrgID, defaultWorkflow()); err != nil {
			return fmt.Errorf("default workflow: %w", err)
		}
	} else if err != nil {
		return err
	}
	if _, err := m.wf.State(ctx, ref); errs.CodeOf(err) == errs.NotFound {
		unit := svc.UnitID
		if place.UnitID != 0 {
			unit = place.UnitID
		}
		if _, err := m.wf.Attach(ctx, tx, workflow.NewResource{Ref: ref, OrgID: a.OrgID, UnitID: unit, Title: svc.Name + " – " + a.Name,
			CitizenID: a.CitizenID, CitizenEmail: a.Email, Lang: a.Lang,
			Fields: map[string]any{"status": StatusConfirmed, "service": svc.Name, "place": place.Name}}, workflowKey); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if a.Status == StatusCancelled {
		return m.wf.SetFields(ctx, tx, ref, map[string]any{"status": StatusCancelled})
	}
	return nil
}

// SMS is a text-message gateway.
type SMS interface {
	Send(ctx context.Context, to, text string) error
}

// HTTPSMS posts {"to", "text"} as JSON to a gateway URL with a bearer token: the shape most
// French SMS aggregators' generic HTTP APIs accept (or adapt with a small proxy).
type HTTPSMS struct {
	URL, Token string
	Client     *http.Client
}

// Send implements SMS.
func (h *HTTPSMS) Send(ctx context.Context, to, text string) error {
	body, _ := json.Marshal(map[string]string{"to": to, "text": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	res, err := h.Client.Do(req)
	if err != nil {
		return fmt.Errorf("sms gateway: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		return errors.New("sms gateway: status " + strconv.Itoa(res.StatusCode))
	}
	return nil
}

func (m *Module) sms(st Settings) SMS {
	if m.SMS != nil {
		return m.SMS
	}
	if st.SMSURL == "" {
		return nil
	}
	return &HTTPSMS{URL: st.SMSURL, Token: st.SMSToken, Client: m.client}
}
