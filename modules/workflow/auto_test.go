package workflow

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

// triage has an action run on entering a state and one run when a condition on the fields
// holds; "again" brings a request back to where the condition is checked.
const triage = `
key: triage
title: Tri
states:
  - {key: new, title: Nouvelle, public_label: Reçue, initial: true}
  - {key: sorting, title: Tri, public_label: En cours de tri}
  - {key: urgent, title: Urgente, public_label: Traitée en priorité}
  - {key: normal, title: Normale, public_label: En cours}
actions:
  - key: sort
    title: Trier
    kind: auto
    trigger: enter
    from: [new]
    to: sorting
    tasks: [{type: label, config: {add: [triee]}}]
  - key: hurry
    title: En urgence
    kind: auto
    trigger: condition
    condition: {any: [{field: urgent, op: eq, value: "yes"}, {field: tags, op: contains, value: danger}]}
    from: [sorting]
    to: urgent
    tasks: [{type: comment, config: {text: urgence détectée}}]
  - {key: plain, title: Normale, from: [sorting], to: normal}
  - {key: again, title: Retrier, from: [normal, urgent], to: sorting}
`

// TestAutomaticOnce: an on-enter action runs once as the request arrives, a conditional one
// once when its condition comes to hold (on attach, on a change of fields, on coming back to
// its state), however many changes arrive at once; nothing runs when the condition does
// not hold.
func TestAutomaticOnce(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d, false)
			ctx := kernel.WithAgent(context.Background(), f.boss)
			if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error {
				_, err := f.eng.Import(ctx, tx, f.org, []byte(triage), "yaml")
				return err
			}); err != nil {
				t.Fatal(err)
			}
			attach := func(id string, fields map[string]any) Status {
				t.Helper()
				f.sample.mu.Lock()
				f.sample.docs[id] = Description{Title: id}
				f.sample.mu.Unlock()
				var st Status
				if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error {
					var err error
					st, err = f.eng.Attach(ctx, tx, NewResource{Ref: ref(id), OrgID: f.org, Title: id, Fields: fields}, "triage")
					return err
				}); err != nil {
					t.Fatalf("attach %s: %v", id, err)
				}
				return st
			}
			runs := func(id, action string) int {
				t.Helper()
				evs, err := f.eng.History(ctx, ref(id), false)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, ev := range evs {
					if ev.Kind == "transition" && ev.Action == action {
						n++
					}
				}
				return n
			}
			setFields := func(id string, fields map[string]any) error {
				return f.s.DB.InTx(ctx, func(tx *store.Tx) error { return f.eng.SetFields(ctx, tx, ref(id), fields) })
			}

			// Entering "new" sorts at once; the condition does not hold: it waits in "sorting".
			st := attach("A1", map[string]any{"urgent": "no"})
			if st.State != "sorting" || runs("A1", "sort") != 1 || runs("A1", "hurry") != 0 || len(st.Labels) != 1 {
				t.Fatalf("A1 on attach: %s, sort ×%d, hurry ×%d, labels %v", st.State, runs("A1", "sort"), runs("A1", "hurry"), st.Labels)
			}
			// Another field changes: still nothing.
			if err := setFields("A1", map[string]any{"note": "x"}); err != nil {
				t.Fatal(err)
			}
			if st, _ := f.eng.State(ctx, ref("A1")); st.State != "sorting" {
				t.Fatalf("A1 moved on an unrelated change: %s", st.State)
			}
			// The condition comes to hold through four changes at once: one transition.
			var wg sync.WaitGroup
			errc := make(chan error, 4)
			for range 4 {
				wg.Go(func() { errc <- setFields("A1", map[string]any{"urgent": "yes"}) })
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				if err != nil {
					t.Errorf("set fields: %v", err)
				}
			}
			if st, _ := f.eng.State(ctx, ref("A1")); st.State != "urgent" || runs("A1", "hurry") != 1 || runs("A1", "sort") != 1 {
				t.Fatalf("A1 after the change: %s, hurry ×%d, sort ×%d", st.State, runs("A1", "hurry"), runs("A1", "sort"))
			}
			// Coming back to "sorting" with the condition still true runs it again, once.
			if _, err := f.eng.Run(ctx, f.boss, ref("A1"), "again", Input{}); err != nil {
				t.Fatal(err)
			}
			if st, _ := f.eng.State(ctx, ref("A1")); st.State != "urgent" || runs("A1", "hurry") != 2 {
				t.Fatalf("A1 back in sorting: %s, hurry ×%d", st.State, runs("A1", "hurry"))
			}
			// Attached with the condition true: sorted then hurried in the same transaction,
			// each once; a multiple choice (a Go list, as modules pass it) is searched.
			st = attach("A2", map[string]any{"urgent": "no", "tags": []string{"bruit", "danger"}})
			if st.State != "urgent" || runs("A2", "sort") != 1 || runs("A2", "hurry") != 1 {
				t.Fatalf("A2: %s, sort ×%d, hurry ×%d", st.State, runs("A2", "sort"), runs("A2", "hurry"))
			}
			st = attach("A3", map[string]any{"tags": []string{"dangereux"}})
			if st.State != "sorting" {
				t.Errorf("A3 (no exact tag): %s", st.State)
			}
		})
	}
}

// TestAutomaticLoop: automatic actions that would send a request back and forth for ever
// make the attach fail, and nothing of the request is stored.
func TestAutomaticLoop(t *testing.T) {
	f := setup(t, store.SQLite, false)
	ctx := kernel.WithAgent(context.Background(), f.boss)
	const loop = `
key: loop
title: Boucle
states:
  - {key: a, title: A, public_label: A, initial: true}
  - {key: b, title: B, public_label: B}
actions:
  - {key: ab, title: AB, kind: auto, trigger: enter, from: [a], to: b}
  - {key: ba, title: BA, kind: auto, trigger: enter, from: [b], to: a}
`
	if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error {
		_, err := f.eng.Import(ctx, tx, f.org, []byte(loop), "yaml")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err := f.s.DB.InTx(ctx, func(tx *store.Tx) error {
		_, err := f.eng.Attach(ctx, tx, NewResource{Ref: ref("L1"), OrgID: f.org, Title: "L1"}, "loop")
		return err
	})
	if err == nil {
		t.Fatal("a loop of automatic actions was accepted")
	}
	var n int
	_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM workflow_resources`).Scan(&n)
	if n != 0 {
		t.Errorf("%d resources stored after the refused attach", n)
	}
}

// TestSetDelay: the silence of a delayed action is set in the back office; requests entering
// its state afterwards wait the new delay, those already waiting keep theirs.
func TestSetDelay(t *testing.T) {
	f := setup(t, store.SQLite, false)
	ctx := context.Background()
	f.attach(t, "S1", "75011")
	if _, err := f.eng.Run(ctx, f.agentA, ref("S1"), "take", Input{}); err != nil {
		t.Fatal(err)
	}
	boss := f.s.ClientAs(f.boss)
	if res := boss.Get("/admin/workflows/terrace"); res.Status != 200 || !strings.Contains(res.Body, `name="delay" value="60d"`) {
		t.Fatalf("workflow page: %d", res.Status)
	}
	for _, bad := range []string{"bientôt", "0d", "-3d"} {
		if res := boss.Post("/admin/workflows/terrace", url.Values{"op": {"set_delay"}, "action": {"silence"}, "delay": {bad}}); res.Status != 400 || !strings.Contains(res.Body, `href="#f-delay-silence"`) {
			t.Errorf("delay %q: %d", bad, res.Status)
		}
	}
	if res := boss.Post("/admin/workflows/terrace", url.Values{"op": {"set_delay"}, "action": {"take"}, "delay": {"3d"}}); res.Status != 400 {
		t.Errorf("delay of a manual action: %d", res.Status)
	}
	if res := boss.Post("/admin/workflows/terrace", url.Values{"op": {"set_delay"}, "action": {"silence"}, "delay": {"10d"}}); res.Status != 303 {
		t.Fatalf("set 10d: %d\n%s", res.Status, res.Body)
	}
	if d, _ := f.eng.Definition(ctx, f.org, "terrace"); time.Duration(d.ActionByKey("silence").Delay) != 10*24*time.Hour {
		t.Fatalf("delay saved: %v", d.ActionByKey("silence").Delay)
	}
	f.attach(t, "S2", "75011")
	if _, err := f.eng.Run(ctx, f.agentA, ref("S2"), "take", Input{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(11 * 24 * time.Hour)
	if _, err := f.m.RunDueTimers(ctx); err != nil {
		t.Fatal(err)
	}
	s1, _ := f.eng.State(ctx, ref("S1"))
	s2, _ := f.eng.State(ctx, ref("S2"))
	if s1.State != "review" || s2.State != "accepted" {
		t.Errorf("after 11 days: S1 %s (armed for 60 days), S2 %s (armed for 10)", s1.State, s2.State)
	}
	// The business application ("erp") has no endpoint here: the acceptance went through all
	// the same, and the history says nothing was sent.
	evs, _ := f.eng.History(ctx, ref("S2"), false)
	said := false
	for _, ev := range evs {
		said = said || (ev.Task == "call" && strings.Contains(ev.Message, "nothing sent"))
	}
	if !said {
		t.Errorf("history of S2 does not tell the call was not sent: %+v", evs)
	}
}

// TestForget: anonymising keeps the states a resource went through and drops its fields,
// title, citizen, documents, correction links, queued deliveries and history texts; purging
// drops it all; a resource already gone is no error.
func TestForget(t *testing.T) {
	f := setup(t, store.SQLite, false)
	ctx := context.Background()
	if err := f.m.SaveEndpoint(ctx, f.org, Endpoint{Key: "hook", URL: "http://127.0.0.1:9/", Secret: "0123456789abcdef", Events: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"F1", "F2"} {
		f.attach(t, id, "75011")
		for _, a := range []string{"take", "ask"} {
			if _, err := f.eng.Run(ctx, f.boss, ref(id), a, Input{Comment: "Mme Martin a appelé"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func(query, id string) int {
		var n int
		if err := f.s.DB.Read().QueryRowContext(ctx, query, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const (
		deliveries  = `SELECT COUNT(*) FROM workflow_deliveries d JOIN workflow_resources r ON r.id = d.resource_id WHERE r.rid = ?`
		corrections = `SELECT COUNT(*) FROM workflow_corrections c JOIN workflow_resources r ON r.id = c.resource_id WHERE r.rid = ?`
		texts       = `SELECT COUNT(*) FROM workflow_history h JOIN workflow_resources r ON r.id = h.resource_id WHERE r.rid = ? AND h.message <> ''`
		steps       = `SELECT COUNT(*) FROM workflow_history h JOIN workflow_resources r ON r.id = h.resource_id WHERE r.rid = ? AND h.kind = 'transition'`
		all         = `SELECT COUNT(*) FROM workflow_history WHERE resource_id IN (SELECT id FROM workflow_resources WHERE rid = ?) OR resource_id IS NULL`
	)
	if count(deliveries, "F1") == 0 || count(corrections, "F1") != 1 || count(texts, "F1") == 0 {
		t.Fatal("nothing to forget")
	}
	forget := func(id string, purge bool) {
		t.Helper()
		if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error { return f.eng.Forget(ctx, tx, ref(id), purge) }); err != nil {
			t.Fatal(err)
		}
	}
	forget("F1", false)
	st, err := f.eng.State(ctx, ref("F1"))
	if err != nil || st.State != "correction" || len(st.Fields) != 0 || st.Title != "F1" || st.CitizenEmail != "" {
		t.Errorf("anonymised F1: %+v %v", st, err)
	}
	if count(deliveries, "F1") != 0 || count(corrections, "F1") != 0 || count(texts, "F1") != 0 || count(steps, "F1") != 2 {
		t.Errorf("anonymised F1 keeps personal data, or lost its steps")
	}
	forget("F2", true)
	if _, err := f.eng.State(ctx, ref("F2")); err == nil {
		t.Error("purged F2 still there")
	}
	var left int
	_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM workflow_deliveries WHERE resource_id IS NULL`).Scan(&left)
	if left != 0 || count(all, "F2") != 0 {
		t.Errorf("purged F2 leaves %d deliveries or its history", left)
	}
	forget("F2", true) // already gone
}

// outbound runs a "call" task and a task type contributed by another module.
const outbound = `
key: outbound
title: Transmission
states:
  - {key: new, title: Nouvelle, public_label: Reçue, initial: true}
  - {key: sent, title: Transmise, public_label: Transmise au service}
actions:
  - key: send
    title: Transmettre
    from: [new]
    to: sent
    tasks:
      - {type: wftest_stamp, config: {stamp: OK}}
      - {type: call, config: {endpoint: erp, answers: true}}
`

// TestCallTask: the business application gets a signed JSON POST with the fields and
// answers after the agent's action has committed (the agent never waits for it); a refusal
// is retried with the same document and key, the application's answer is recorded, and a
// call that fails to the last attempt is marked failed in the history. A task type
// contributed by another module runs like a built-in one, and its validation applies.
func TestCallTask(t *testing.T) {
	type hit struct {
		key, sig string
		body     []byte
	}
	var (
		mu   sync.Mutex
		hits []hit
		fail = true
	)
	const secret = "erp-secret-0123456789"
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		hits = append(hits, hit{r.Header.Get("Idempotency-Key"), r.Header.Get("Parvis-Signature"), b})
		if fail {
			http.Error(w, "indisponible", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, `{"dossier":"X-42"}`)
	}))
	defer rcv.Close()
	f := setup(t, store.SQLite, false)
	ctx := kernel.WithAgent(context.Background(), f.boss)
	if err := f.m.SaveEndpoint(ctx, f.org, Endpoint{Key: "erp", URL: rcv.URL, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error {
		_, err := f.eng.Import(ctx, tx, f.org, []byte(outbound), "yaml")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(outbound, "stamp: OK", "stamp: ok", 1)
	if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error {
		_, err := f.eng.Import(ctx, tx, f.org, []byte(bad), "yaml")
		return err
	}); err == nil || !strings.Contains(err.Error(), "actions[0].tasks[0].config.stamp") {
		t.Errorf("the contributed task's validation: %v", err)
	}
	send := func(id string) {
		t.Helper()
		f.sample.mu.Lock()
		f.sample.docs[id] = Description{Title: id, Answers: map[string]any{"name": "Chez Léa"}}
		f.sample.mu.Unlock()
		if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error {
			_, err := f.eng.Attach(ctx, tx, NewResource{Ref: ref(id), OrgID: f.org, Title: id, Fields: map[string]any{"surface": 12}}, "outbound")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		st, err := f.eng.Run(ctx, f.boss, ref(id), "send", Input{})
		if err != nil || st.State != "sent" || st.Fields["stamp"] != "OK" {
			t.Fatalf("send %s: %+v %v", id, st, err)
		}
	}
	send("C1")
	mu.Lock()
	if len(hits) != 0 {
		t.Errorf("the application was called inside the agent's action")
	}
	mu.Unlock()
	var id int64
	if err := f.s.DB.Read().QueryRowContext(ctx, `SELECT id FROM workflow_deliveries WHERE kind = 'call'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	w := &deliverWorker{e: f.e}
	job := func(attempt int) *river.Job[DeliverArgs] {
		return &river.Job[DeliverArgs]{JobRow: &rivertype.JobRow{Attempt: attempt, MaxAttempts: 3}, Args: DeliverArgs{DeliveryID: id}}
	}
	if err := w.Work(ctx, job(1)); err == nil {
		t.Fatal("a 500 did not make the job retry")
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if err := w.Work(ctx, job(2)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(hits) != 2 || hits[0].key != hits[1].key || string(hits[0].body) != string(hits[1].body) {
		t.Fatalf("attempts: %d, differing keys or documents", len(hits))
	}
	var doc map[string]any
	_ = json.Unmarshal(hits[1].body, &doc)
	if !VerifySignature(secret, hits[1].sig, hits[1].body) || doc["id"] != hits[1].key || doc["action"] != "send" ||
		doc["answers"].(map[string]any)["name"] != "Chez Léa" || doc["fields"].(map[string]any)["stamp"] != "OK" {
		t.Errorf("document %s, signature %q", hits[1].body, hits[1].sig)
	}
	mu.Unlock()
	var status, answer string
	_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT status, last_response FROM workflow_deliveries WHERE id = ?`, id).Scan(&status, &answer)
	if status != "ok" || answer != `{"dossier":"X-42"}` {
		t.Errorf("delivery: %s %q", status, answer)
	}
	hist := func(id string) string {
		evs, _ := f.eng.History(ctx, ref(id), false)
		var out []string
		for _, ev := range evs {
			out = append(out, ev.Kind+":"+ev.Message)
		}
		return strings.Join(out, " | ")
	}
	if h := hist("C1"); !strings.Contains(h, "task:stamped OK") || !strings.Contains(h, "call:ok: HTTP 200") {
		t.Errorf("history of C1: %s", h)
	}
	// To the last attempt: failed, and said so.
	mu.Lock()
	fail = true
	mu.Unlock()
	send("C2")
	_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT id FROM workflow_deliveries WHERE kind = 'call' AND id <> ?`, id).Scan(&id)
	if err := w.Work(ctx, job(3)); err == nil {
		t.Fatal("the last failure was not reported to the job system")
	}
	_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT status FROM workflow_deliveries WHERE id = ?`, id).Scan(&status)
	if h := hist("C2"); status != "failed" || !strings.Contains(h, "call:failed: HTTP 500") {
		t.Errorf("C2: %s, history %s", status, h)
	}
}
