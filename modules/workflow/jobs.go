package workflow

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	ktoken "parvis.org/parvis/kernel/token"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// Timers: delayed automatic actions.

// TimerArgs is the job that fires a delayed action. Its uniqueness (by args) and the
// timer row's done_at make the action run once even if the job is retried or two nodes work
// it at once; the resource's seq makes it a no-op once the resource has moved on.
type TimerArgs struct {
	TimerID int64 `json:"timer_id"`
}

// Kind implements river.JobArgs.
func (TimerArgs) Kind() string { return "workflow.timer" }

func (e *engine) arm(ctx context.Context, tx *store.Tx, st *Status, a *Action) error {
	due := e.now().Add(time.Duration(a.Delay))
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO workflow_timers (resource_id, action, seq, due_at) VALUES (?, ?, ?, ?) RETURNING id`,
		st.internalID, a.Key, st.seq, due).Scan(&id)
	if err != nil {
		return fmt.Errorf("arm timer %s: %w", a.Key, err)
	}
	return e.enqueue(ctx, tx, TimerArgs{TimerID: id}, &river.InsertOpts{ScheduledAt: due,
		UniqueOpts: river.UniqueOpts{ByArgs: true}})
}

type timerWorker struct {
	river.WorkerDefaults[TimerArgs]
	e *engine
}

// Work implements river.Worker.
func (w *timerWorker) Work(ctx context.Context, job *river.Job[TimerArgs]) error {
	wait, err := w.e.fireTimer(ctx, job.Args.TimerID)
	if err != nil {
		return err
	}
	if wait > 0 {
		// The job ran early by the engine's clock (clock skew between nodes): wait again.
		return river.JobSnooze(wait)
	}
	return nil
}

// fireTimer runs a due timer's action once; it returns how long to wait when not yet due.
func (e *engine) fireTimer(ctx context.Context, id int64) (time.Duration, error) {
	var wait time.Duration
	err := e.db.InTx(ctx, func(tx *store.Tx) error {
		var (
			rid, seq int64
			action   string
			due      time.Time
		)
		err := tx.QueryRowContext(ctx, `SELECT resource_id, action, seq, due_at FROM workflow_timers WHERE id = ? AND done_at IS NULL`, id).
			Scan(&rid, &action, &seq, &due)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // already fired, or its resource was deleted
		}
		if err != nil {
			return err
		}
		now := e.now()
		if now.Before(due) {
			wait = due.Sub(now)
			return nil
		}
		res, err := tx.ExecContext(ctx, `UPDATE workflow_timers SET done_at = ? WHERE id = ? AND done_at IS NULL`, now, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // another node fired it meanwhile
		}
		st, err := loadResource(ctx, tx, true, "id = ?", rid)
		if err != nil {
			return err
		}
		if err := e.withDef(ctx, tx, &st); err != nil {
			return err
		}
		a := st.def.ActionByKey(action)
		if st.seq != seq || a == nil || !a.AppliesIn(st.State) || st.Archived {
			return nil // the resource moved on since the timer was armed
		}
		return e.perform(ctx, tx, &st, a, nil, Input{}, 0)
	})
	return wait, err
}

// RunDueTimers fires every timer due by the engine's clock (a safety net for operators and
// tests; the scheduled jobs normally do it). It returns how many fired or were found stale.
func (e *engine) RunDueTimers(ctx context.Context) (int, error) {
	rows, err := e.db.Read().QueryContext(ctx, `SELECT id FROM workflow_timers WHERE done_at IS NULL AND due_at <= ? ORDER BY due_at`, e.now())
	if err != nil {
		return 0, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if _, err := e.fireTimer(ctx, id); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// Corrections.

func hashToken(t string) string { return ktoken.Hash(t) }

// Correction implements Engine.
func (e *engine) Correction(ctx context.Context, tok string) (Correction, error) {
	var (
		c      Correction
		fields string
	)
	err := e.db.Read().QueryRowContext(ctx, `SELECT r.rtype, r.rid, c.fields, c.message, c.expires_at
 FROM workflow_corrections c JOIN workflow_resources r ON r.id = c.resource_id
 WHERE c.token_hash = ? AND c.used_at IS NULL AND c.seq = r.seq AND c.expires_at > ?`, hashToken(tok), e.now()).
		Scan(&c.Ref.Type, &c.Ref.ID, &fields, &c.Message, &c.ExpiresAt)
	if err != nil {
		return c, notFound(err, "workflow.error.correction_not_found")
	}
	_ = json.Unmarshal([]byte(fields), &c.Fields)
	return c, nil
}

// Resubmit implements Engine.
func (e *engine) Resubmit(ctx context.Context, tx *store.Tx, tok string, fields map[string]any) (Status, error) {
	var (
		id, rid, seq int64
		ret, allowed string
	)
	now := e.now()
	err := tx.QueryRowContext(ctx, `SELECT id, resource_id, return_state, seq, fields FROM workflow_corrections
 WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`, hashToken(tok), now).Scan(&id, &rid, &ret, &seq, &allowed)
	if err != nil {
		return Status{}, notFound(err, "workflow.error.correction_not_found")
	}
	st, err := loadResource(ctx, tx, true, "id = ?", rid)
	if err != nil {
		return st, err
	}
	if err := e.withDef(ctx, tx, &st); err != nil {
		return st, err
	}
	if st.seq != seq {
		return st, errs.New(errs.Conflict, "workflow.error.correction_not_found")
	}
	var names []string
	_ = json.Unmarshal([]byte(allowed), &names)
	for k, v := range fields {
		if !contains(names, k) {
			return st, errs.OnField(errs.Invalid, k, "workflow.error.field_not_correctable")
		}
		setFlat(st.Fields, k, v)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE workflow_corrections SET used_at = ? WHERE id = ?`, now, id); err != nil {
		return st, err
	}
	// The return is a transition of its own, recorded as the citizen's.
	a := &Action{Key: "resubmit", To: ret, From: []string{st.State}}
	if err := insertEvent(ctx, tx, st.internalID, Event{At: now, Kind: "correction", Public: true, Action: "resubmit"}); err != nil {
		return st, err
	}
	return st, e.perform(ctx, tx, &st, a, nil, Input{}, 0)
}

// setFlat stores a corrected value in the flat field bag that conditions, routing and
// templates read: a value made of parts (an address, a point on a map) becomes one field per
// part, "<key>_<part>" ("adresse_postcode"), as the owning module wrote it on Attach, and
// never a nested map. A nil value (or part) removes the field: the owning module names the
// parts an emptied answer no longer has ({"lat": nil, …}).
func setFlat(fields map[string]any, k string, v any) {
	m, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			delete(fields, k)
		} else {
			fields[k] = v
		}
		return
	}
	delete(fields, k)
	for p, pv := range m {
		setFlat(fields, k+"_"+p, pv)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Webhooks and business applications.

// DeliverArgs is the job that sends one stored request.
type DeliverArgs struct {
	DeliveryID int64 `json:"delivery_id"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "workflow.deliver" }

// Emit implements Engine.
func (e *engine) Emit(ctx context.Context, tx *store.Tx, orgID int64, ref Ref, name string, data map[string]any) error {
	st, err := loadResource(ctx, tx, false, "rtype = ? AND rid = ?", ref.Type, ref.ID)
	if err != nil {
		return err
	}
	if st.OrgID != orgID {
		return errs.New(errs.NotFound, "workflow.error.resource_not_found")
	}
	return e.emit(ctx, tx, &st, name, data)
}

// emit queues event "<type>.<name>" to every subscribed endpoint of the organisation. The
// idempotency key is drawn once per event: every endpoint and every retry sees the same one.
func (e *engine) emit(ctx context.Context, tx *store.Tx, st *Status, name string, data map[string]any) error {
	event := st.Ref.Type + "." + name
	rows, err := tx.QueryContext(ctx, `SELECT id, events FROM workflow_endpoints WHERE org_id = ? AND active = TRUE AND events <> ''`, st.OrgID)
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var (
			id     int64
			events string
		)
		if err := rows.Scan(&id, &events); err != nil {
			rows.Close()
			return err
		}
		for _, ev := range strings.Fields(events) {
			if ev == event || ev == "*" {
				ids = append(ids, id)
				break
			}
		}
	}
	rows.Close()
	if len(ids) == 0 {
		return nil
	}
	key := newHexToken()
	body, err := json.Marshal(map[string]any{"id": key, "event": event, "occurred_at": e.now(), "org_id": st.OrgID,
		"resource": st.Ref, "workflow": st.Workflow, "state": st.State, "data": data})
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := e.queueDelivery(ctx, tx, st, id, "webhook", event, key, body); err != nil {
			return err
		}
	}
	return nil
}

func (e *engine) queueDelivery(ctx context.Context, tx *store.Tx, st *Status, endpointID int64, kind, event, key string, body []byte) error {
	now := e.now()
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO workflow_deliveries (org_id, endpoint_id, resource_id, kind, event, idem_key, body,
 created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		st.OrgID, endpointID, st.internalID, kind, event, key, string(body), now, now).Scan(&id)
	if err != nil {
		return fmt.Errorf("queue %s: %w", event, err)
	}
	return e.enqueue(ctx, tx, DeliverArgs{DeliveryID: id}, nil)
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	e *engine
}

// Work implements river.Worker.
func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	return w.e.deliver(ctx, job.Args.DeliveryID, job.Attempt >= job.MaxAttempts)
}

// Timeout bounds one attempt.
func (w *deliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration { return 30 * time.Second }

// Signature returns the value of the Parvis-Signature header for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>". Receivers recompute it and
// compare in constant time (hmac.Equal), and may refuse old timestamps against replays.
func Signature(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a Parvis-Signature header (for receivers written in Go, and tests).
func VerifySignature(secret, header string, body []byte) bool {
	var ts string
	for _, part := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(part, "t="); ok {
			ts = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	return hmac.Equal([]byte(Signature(secret, time.Unix(sec, 0), body)), []byte(header))
}

// deliver sends a stored request once; a non-2xx answer or a network failure is an error, so
// River retries it with backoff. The attempt and answer are recorded either way.
func (e *engine) deliver(ctx context.Context, id int64, last bool) error {
	var (
		url, secret, event, key, body, status, kind string
		resourceID                                  sql.NullInt64
	)
	err := e.db.Read().QueryRowContext(ctx, `SELECT p.url, p.secret, d.event, d.idem_key, d.body, d.status, d.kind, d.resource_id
 FROM workflow_deliveries d JOIN workflow_endpoints p ON p.id = d.endpoint_id WHERE d.id = ?`, id).
		Scan(&url, &secret, &event, &key, &body, &status, &kind, &resourceID)
	if errors.Is(err, sql.ErrNoRows) || status == "ok" {
		return nil // deleted endpoint, or delivered by an earlier run
	}
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		return e.recordAttempt(ctx, id, 0, err.Error(), true, kind, resourceID)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Parvis-Webhook/1")
	req.Header.Set("Parvis-Event", event)
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Parvis-Signature", Signature(secret, e.clock.Now(), []byte(body)))
	res, err := e.client.Do(req)
	if err != nil {
		if rerr := e.recordAttempt(ctx, id, 0, err.Error(), last, kind, resourceID); rerr != nil {
			return rerr
		}
		return fmt.Errorf("deliver %s to %s: %w", event, url, err)
	}
	answer, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	res.Body.Close()
	ok := res.StatusCode >= 200 && res.StatusCode < 300
	if err := e.recordAttempt(ctx, id, res.StatusCode, string(answer), last || ok, kind, resourceID); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("deliver %s to %s: HTTP %d", event, url, res.StatusCode)
	}
	return nil
}

func (e *engine) recordAttempt(ctx context.Context, id int64, code int, answer string, final bool, kind string, resourceID sql.NullInt64) error {
	status := "pending"
	if code >= 200 && code < 300 {
		status = "ok"
	} else if final {
		status = "failed"
	}
	return e.db.InTx(ctx, func(tx *store.Tx) error {
		now := e.now()
		if _, err := tx.ExecContext(ctx, `UPDATE workflow_deliveries SET attempts = attempts + 1, status = ?, last_code = ?,
 last_response = ?, updated_at = ? WHERE id = ?`, status, code, answer, now, id); err != nil {
			return err
		}
		// Calls to business applications are part of the resource's story; webhooks are not.
		if kind == "call" && resourceID.Valid && (status != "pending") {
			msg := fmt.Sprintf("HTTP %d", code)
			if code == 0 {
				msg = answer
			}
			return insertEvent(ctx, tx, resourceID.Int64, Event{At: now, Kind: "call", Task: "call", Message: status + ": " + msg})
		}
		return nil
	})
}
