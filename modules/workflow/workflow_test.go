package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	_ "parvis.org/parvis/kernel/builtin"
	"parvis.org/parvis/kernel/citizen"
	"parvis.org/parvis/kernel/errs"
	_ "parvis.org/parvis/kernel/jobs"
	_ "parvis.org/parvis/kernel/mail"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

// A sample resource type, owned by a test module: "wftest.request", described from memory.
func init() { kernel.Register(&sampleModule{}) }

type sampleModule struct {
	mu   sync.Mutex
	docs map[string]Description
}

func (*sampleModule) Info() kernel.Info {
	return kernel.Info{ID: "wftest", Version: "1", Title: "wftest", New: func() kernel.Module { return &sampleModule{docs: map[string]Description{}} }}
}

func (s *sampleModule) Declare() kernel.Parts {
	return kernel.Parts{Extensions: []kernel.Extension{{Point: PointResourceType,
		Value: ResourceType{Name: "wftest.request", Title: "wftest", Provider: s}},
		{Point: kernel.PointWorkflowTask, Value: TaskType(stampTask{})}}}
}

// stampTask is a task type another module contributes: it stamps a field with its setting.
type stampTask struct{}

func (stampTask) Name() string  { return "wftest_stamp" }
func (stampTask) Title() string { return "wftest.stamp" }
func (stampTask) Fields() []ConfigField {
	return []ConfigField{{Name: "stamp", Label: "wftest.stamp", Kind: "text", Required: true}}
}
func (stampTask) Validate(_ *Definition, cfg map[string]any) []Problem {
	if s := cfgString(cfg, "stamp"); s != "" && strings.ToUpper(s) != s {
		return []Problem{{Path: "config.stamp", Code: "stamp", Message: "capitals only"}}
	}
	return nil
}
func (stampTask) Run(_ context.Context, tc *TaskContext) (Result, error) {
	tc.Status.Fields["stamp"] = tc.ConfigString("stamp")
	return Result{Message: "stamped " + tc.ConfigString("stamp"), Public: true}, nil
}

func (s *sampleModule) Describe(_ context.Context, id string) (Description, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.docs[id]
	if !ok {
		return d, errs.New(errs.NotFound, "wftest.not_found")
	}
	return d, nil
}

func (s *sampleModule) CorrectionURL(ref Ref, tok string) string {
	return "/demandes/" + ref.ID + "/corriger/" + tok
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const terrace = `
key: terrace
title: Terrasse
states:
  - {key: received, title: Reçue, public_label: Demande reçue, initial: true}
  - {key: review, title: Instruction, public_label: En cours d'instruction}
  - {key: correction, title: Correction, public_label: En attente de vos corrections}
  - {key: accepted, title: Acceptée, public_label: Autorisation accordée, final: true}
  - {key: refused, title: Refusée, public_label: Demande refusée, final: true}
actions:
  - key: take
    title: Prendre en charge
    from: [received]
    to: review
    tasks:
      - {type: assign, config: {actor: true}}
      - {type: comment, config: {text: pris en charge}}
  - key: ask
    title: Demander une correction
    from: [review]
    to: correction
    tasks:
      - {type: correct, config: {fields: [surface], return_state: review, template: fix}}
  - key: accept
    title: Accepter
    from: [review]
    to: accepted
    permission: workflow.decide
    tasks:
      - {type: pdf, config: {template: permit, mail_template: permit_mail}}
      - {type: label, config: {add: [ok]}}
  - key: refuse
    title: Refuser
    kind: mass
    from: [review, received]
    to: refused
    tasks:
      - {type: mail, config: {template: refused}}
  - key: silence
    title: Silence vaut accord
    kind: auto
    trigger: delay
    delay: 60d
    from: [review]
    to: accepted
    tasks:
      - {type: comment, config: {text: accord tacite}}
      - {type: call, config: {endpoint: erp}}
templates:
  fix: {subject: "Corrigez votre demande {{.Reference}}", body: "Suivez ce lien : {{.Link}}"}
  permit: {subject: "Autorisation de terrasse", body: "Café « {{.Answers.name}} » : {{.Fields.surface}} m², accordée. Œuvre ½ €"}
  permit_mail: {subject: "Votre autorisation", body: "Bonjour, voici l'autorisation pour {{.Answers.name}}."}
  refused: {subject: "Demande refusée", body: "Nous regrettons : {{.Answers.name}} <b>non</b>."}
routing:
  rules:
    - {when: {field: postcode, op: prefix, value: "7501"}, unit: UNIT_A}
  default_unit: UNIT_B
`

type fixture struct {
	s            *servertest.Server
	m            *Module
	e            *engine
	eng          Engine
	sample       *sampleModule
	clock        *testClock
	org          int64
	unitA, unitB int64
	agentA       *kernel.Agent // acts in unit A
	agentB       *kernel.Agent // acts in unit B
	boss         *kernel.Agent // decides everywhere
}

func setup(t *testing.T, d store.Dialect, start bool) *fixture {
	t.Helper()
	clk := &testClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	s := servertest.New(t, d, servertest.Options{Clock: clk, Start: start})
	f := &fixture{s: s, clock: clk}
	for _, in := range s.Modules {
		switch m := in.Module.(type) {
		case *Module:
			f.m = m
		case *sampleModule:
			f.sample = m
		}
	}
	if f.m == nil || f.sample == nil {
		t.Fatal("workflow or sample module not built")
	}
	f.e, f.eng = f.m.e, f.m.Engine()
	f.org = s.DefaultOrg()
	f.unitA = s.NewUnit(f.org, 0, "Mairie du 11e")
	f.unitB = s.NewUnit(f.org, 0, "Lyon")
	unitAgent := func(email string, unit int64) *kernel.Agent {
		return s.NewAgentWith(auth.NewAgent{OrgID: f.org, Email: email, Name: email, UnitIDs: []int64{unit}, Grants: []auth.Grant{
			{Perm: PermAct, Scope: auth.ScopeUnit, UnitID: unit}, {Perm: PermInbox, Scope: auth.ScopeUnit, UnitID: unit}}})
	}
	f.agentA = unitAgent("a@ville.test", f.unitA)
	f.agentB = unitAgent("b@ville.test", f.unitB)
	f.boss = s.NewAgent(f.org, "boss@ville.test", PermAct, PermDecide, PermInbox, PermManage)
	doc := strings.ReplaceAll(strings.ReplaceAll(terrace, "UNIT_A", itoa(f.unitA)), "UNIT_B", itoa(f.unitB))
	ctx := kernel.WithAgent(context.Background(), f.boss)
	if err := s.DB.InTx(ctx, func(tx *store.Tx) error {
		_, err := f.eng.Import(ctx, tx, f.org, []byte(doc), "yaml")
		return err
	}); err != nil {
		t.Fatalf("import: %v", err)
	}
	return f
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func (f *fixture) attach(t *testing.T, id, postcode string) Status {
	t.Helper()
	f.sample.mu.Lock()
	f.sample.docs[id] = Description{Title: "Terrasse " + id, Answers: map[string]any{"name": "Chez Léa"},
		CitizenEmail: "lea@example.org", PublicURL: "/demandes/" + id}
	f.sample.mu.Unlock()
	var st Status
	err := f.s.DB.InTx(context.Background(), func(tx *store.Tx) error {
		var err error
		st, err = f.eng.Attach(context.Background(), tx, NewResource{Ref: Ref{"wftest.request", id}, OrgID: f.org,
			Title: "Terrasse " + id, CitizenEmail: "lea@example.org", Fields: map[string]any{"postcode": postcode, "surface": 12}}, "terrace")
		return err
	})
	if err != nil {
		t.Fatalf("attach %s: %v", id, err)
	}
	return st
}

func ref(id string) Ref { return Ref{"wftest.request", id} }

// TestWalk: a sample resource walks the workflow; routing, permissions by unit and by
// permission, tasks (assignment, PDF, mail, labels), history public and internal.
func TestWalk(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d, false)
			ctx := context.Background()
			r1 := f.attach(t, "R1", "75011")
			r2 := f.attach(t, "R2", "69001")
			if r1.UnitID != f.unitA || r2.UnitID != f.unitB {
				t.Fatalf("routing: R1 → %d (want %d), R2 → %d (want default %d)", r1.UnitID, f.unitA, r2.UnitID, f.unitB)
			}
			if r1.State != "received" || r1.PublicLabel != "Demande reçue" {
				t.Fatalf("initial state: %+v", r1)
			}
			cases := []struct {
				name   string
				actor  *kernel.Agent
				id     string
				action string
				code   errs.Code
				state  string
			}{
				{"wrong unit refused", f.agentA, "R2", "take", errs.Forbidden, ""},
				{"other unit refused", f.agentB, "R1", "take", errs.Forbidden, ""},
				{"own unit", f.agentA, "R1", "take", "", "review"},
				{"not from this state", f.agentA, "R1", "take", errs.Conflict, ""},
				{"automatic by hand", f.boss, "R1", "silence", errs.Conflict, ""},
				{"unknown action", f.boss, "R1", "fly", errs.NotFound, ""},
				{"decide permission needed", f.agentA, "R1", "accept", errs.Forbidden, ""},
				{"no actor", nil, "R1", "accept", errs.Forbidden, ""},
				{"decider", f.boss, "R1", "accept", "", "accepted"},
			}
			for _, c := range cases {
				st, err := f.eng.Run(ctx, c.actor, ref(c.id), c.action, Input{Comment: "note " + c.name})
				if errs.CodeOf(err) != c.code || (c.code == "" && err != nil) {
					t.Fatalf("%s: err = %v, want code %q", c.name, err, c.code)
				}
				if c.state != "" && st.State != c.state {
					t.Fatalf("%s: state %s, want %s", c.name, st.State, c.state)
				}
			}
			st, _ := f.eng.State(ctx, ref("R1"))
			if st.AgentID != f.agentA.ID || len(st.Labels) != 1 || st.Labels[0] != "ok" || !st.Final {
				t.Errorf("after accept: agent %d labels %v final %v", st.AgentID, st.Labels, st.Final)
			}
			// Actions offered follow the same rules.
			f.attach(t, "R5", "75012")
			acts, err := f.eng.AvailableActions(ctx, f.agentA, ref("R5"))
			if err != nil || len(acts) != 2 || acts[0].Key != "take" || acts[1].Key != "refuse" {
				t.Errorf("available to A on R5: %v %v", acts, err)
			}
			if acts, _ := f.eng.AvailableActions(ctx, f.agentB, ref("R5")); len(acts) != 0 {
				t.Errorf("available to B on R5: %v", acts)
			}
			// History: internal has comments and tasks with actors; public has neither.
			all, _ := f.eng.History(ctx, ref("R1"), false)
			pub, _ := f.eng.History(ctx, ref("R1"), true)
			var kinds []string
			for _, ev := range all {
				kinds = append(kinds, ev.Kind)
			}
			if !strings.Contains(strings.Join(kinds, ","), "attach,comment,task,task,transition") {
				t.Errorf("internal history kinds: %v", kinds)
			}
			for _, ev := range pub {
				if ev.Kind == "comment" || ev.ActorName != "" {
					t.Errorf("public history leaks %+v", ev)
				}
			}
			if last := pub[len(pub)-1]; last.Kind != "transition" || last.PublicLabel != "Autorisation accordée" {
				t.Errorf("last public event: %+v", last)
			}
			// The PDF is attached, mailed, and carries the accented text.
			files, err := f.eng.Files(ctx, ref("R1"))
			if err != nil || len(files) != 1 || files[0].Name != "permit-R1.pdf" {
				t.Fatalf("files: %v %v", files, err)
			}
			pdf, err := f.eng.File(ctx, ref("R1"), files[0].ID)
			if err != nil || !strings.HasPrefix(string(pdf.Data), "%PDF-") {
				t.Fatalf("pdf: %v", err)
			}
			txt := pdfText(t, pdf.Data)
			for _, want := range []string{"Autorisation de terrasse", "Café « Chez Léa » : 12 m², accordée. Œuvre ½ €"} {
				if !strings.Contains(txt, want) {
					t.Errorf("pdf text lacks %q:\n%s", want, txt)
				}
			}
			var n int
			_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM mail_messages m JOIN mail_attachments a ON a.mail_id = m.id
 WHERE a.name = 'permit-R1.pdf' AND m.subject = 'Votre autorisation'`).Scan(&n)
			if n != 1 {
				t.Errorf("mail with the PDF: %d", n)
			}
			// The HTML of a mail escapes answers; mass refusal on R5 and R2 as agent A: R2 is refused.
			f.sample.mu.Lock()
			f.sample.docs["R5"] = Description{Answers: map[string]any{"name": "<i>Léa</i>"}, CitizenEmail: "lea@example.org"}
			f.sample.mu.Unlock()
			res := f.m.RunMany(ctx, f.agentA, []Ref{ref("R5"), ref("R2")}, "refuse", Input{})
			if res[0].Err != nil || errs.CodeOf(res[1].Err) != errs.Forbidden {
				t.Errorf("mass: %v / %v", res[0].Err, res[1].Err)
			}
			var html string
			_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT html_body FROM mail_messages WHERE subject = 'Demande refusée'`).Scan(&html)
			if !strings.Contains(html, "&lt;i&gt;Léa&lt;/i&gt;") || strings.Contains(html, "<i>Léa</i>") {
				t.Errorf("refusal mail html: %s", html)
			}
		})
	}
}

func pdfText(t *testing.T, b []byte) string {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext (poppler-utils) is needed to check PDF text")
	}
	p := filepath.Join(t.TempDir(), "f.pdf")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-enc", "UTF-8", p, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

// TestCorrection: the citizen's capability link lets them change only the chosen fields,
// once, and the request returns to the chosen state.
func TestCorrection(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d, false)
			ctx := context.Background()
			f.attach(t, "C1", "75011")
			for _, a := range []string{"take", "ask"} {
				if _, err := f.eng.Run(ctx, f.agentA, ref("C1"), a, Input{}); err != nil {
					t.Fatalf("%s: %v", a, err)
				}
			}
			var body string
			if err := f.s.DB.Read().QueryRowContext(ctx, `SELECT text_body FROM mail_messages WHERE subject = 'Corrigez votre demande C1'`).Scan(&body); err != nil {
				t.Fatalf("correction mail: %v", err)
			}
			m := regexp.MustCompile(`/demandes/C1/corriger/([0-9a-f]{32})`).FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("no link in %q", body)
			}
			tok := m[1]
			c, err := f.eng.Correction(ctx, tok)
			if err != nil || c.Ref.ID != "C1" || len(c.Fields) != 1 || c.Fields[0] != "surface" {
				t.Fatalf("correction: %+v %v", c, err)
			}
			wrong := tok[:31] + "0"
			if tok[31] == '0' {
				wrong = tok[:31] + "1"
			}
			if _, err := f.eng.Correction(ctx, wrong); errs.CodeOf(err) != errs.NotFound {
				t.Errorf("wrong token: %v", err)
			}
			resubmit := func(fields map[string]any) (Status, error) {
				var st Status
				err := f.s.DB.InTx(ctx, func(tx *store.Tx) error {
					var err error
					st, err = f.eng.Resubmit(ctx, tx, tok, fields)
					return err
				})
				return st, err
			}
			if _, err := resubmit(map[string]any{"postcode": "00000"}); errs.CodeOf(err) != errs.Invalid {
				t.Errorf("resubmit of a field not asked: %v", err)
			}
			st, err := resubmit(map[string]any{"surface": 20})
			if err != nil || st.State != "review" || text(st.Fields["surface"]) != "20" {
				t.Fatalf("resubmit: %+v %v", st, err)
			}
			if _, err := resubmit(map[string]any{"surface": 30}); errs.CodeOf(err) != errs.NotFound {
				t.Errorf("second resubmit: %v", err)
			}
		})
	}
}

// TestDelayOnce: "silence means acceptance" fires once, at the due time of the injected
// clock, however many times (and on however many workers) its job runs.
func TestDelayOnce(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d, false)
			ctx := context.Background()
			if err := f.m.SaveEndpoint(ctx, f.org, Endpoint{Key: "erp", URL: "http://127.0.0.1:9/none", Secret: "0123456789abcdef"}); err != nil {
				t.Fatal(err)
			}
			f.attach(t, "D1", "75011")
			if _, err := f.eng.Run(ctx, f.agentA, ref("D1"), "take", Input{}); err != nil {
				t.Fatal(err)
			}
			var timerID int64
			var jobs int
			if err := f.s.DB.Read().QueryRowContext(ctx, `SELECT id FROM workflow_timers`).Scan(&timerID); err != nil {
				t.Fatalf("timer armed: %v", err)
			}
			_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE kind = 'workflow.timer'`).Scan(&jobs)
			if jobs != 1 {
				t.Fatalf("timer jobs: %d", jobs)
			}
			w := &timerWorker{e: f.e}
			job := &river.Job[TimerArgs]{Args: TimerArgs{TimerID: timerID}}
			// Too early (59 days): the job snoozes and nothing happens.
			f.clock.Add(59 * 24 * time.Hour)
			var snooze *river.JobSnoozeError
			if err := w.Work(ctx, job); !errors.As(err, &snooze) {
				t.Fatalf("early run: %v, want a snooze", err)
			}
			if st, _ := f.eng.State(ctx, ref("D1")); st.State != "review" {
				t.Fatalf("early: %s", st.State)
			}
			f.clock.Add(2 * 24 * time.Hour)
			var wg sync.WaitGroup
			errc := make(chan error, 4)
			for range 4 { // a retried job and other nodes
				wg.Add(1)
				go func() { defer wg.Done(); errc <- w.Work(ctx, job) }()
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				if err != nil {
					t.Errorf("work: %v", err)
				}
			}
			if n, err := f.e.RunDueTimers(ctx); err != nil || n != 0 {
				t.Errorf("due timers left: %d %v", n, err)
			}
			st, _ := f.eng.State(ctx, ref("D1"))
			if st.State != "accepted" {
				t.Fatalf("after the delay: %s", st.State)
			}
			hist, _ := f.eng.History(ctx, ref("D1"), false)
			silent, calls := 0, 0
			for _, ev := range hist {
				if ev.Kind == "transition" && ev.Action == "silence" {
					silent++
				}
			}
			_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM workflow_deliveries WHERE kind = 'call'`).Scan(&calls)
			if silent != 1 || calls != 1 {
				t.Errorf("silence ran %d times, %d calls queued; want 1 and 1", silent, calls)
			}
			// A timer armed in a state the resource has left does nothing.
			f.attach(t, "D2", "75011")
			_, _ = f.eng.Run(ctx, f.agentA, ref("D2"), "take", Input{})
			_, _ = f.eng.Run(ctx, f.agentA, ref("D2"), "refuse", Input{})
			f.clock.Add(61 * 24 * time.Hour)
			if _, err := f.e.RunDueTimers(ctx); err != nil {
				t.Fatal(err)
			}
			if st, _ := f.eng.State(ctx, ref("D2")); st.State != "refused" {
				t.Errorf("stale timer moved D2 to %s", st.State)
			}
		})
	}
}

// TestWebhooks: the receiver sees each event at least once, always with the same
// idempotency key and a valid signature, including after failures.
func TestWebhooks(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			type hit struct {
				event, key string
				valid      bool
			}
			var (
				mu     sync.Mutex
				hits   []hit
				failed = map[string]int{}
			)
			const secret = "s3cr3t-s3cr3t-s3cr3t"
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				var doc struct {
					ID string `json:"id"`
				}
				_ = json.Unmarshal(b, &doc)
				key := r.Header.Get("Idempotency-Key")
				mu.Lock()
				defer mu.Unlock()
				hits = append(hits, hit{r.Header.Get("Parvis-Event"), key, VerifySignature(secret, r.Header.Get("Parvis-Signature"), b) && doc.ID == key})
				if failed[key] < 1 { // every event fails once first
					failed[key]++
					http.Error(w, "busy", http.StatusServiceUnavailable)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer rcv.Close()
			f := setup(t, d, false)
			ctx := context.Background()
			if err := f.m.SaveEndpoint(ctx, f.org, Endpoint{Key: "hook", URL: rcv.URL, Secret: secret,
				Events: []string{"wftest.request.submitted", "wftest.request.state_changed"}}); err != nil {
				t.Fatal(err)
			}
			f.attach(t, "W1", "75011")
			if _, err := f.eng.Run(ctx, f.agentA, ref("W1"), "take", Input{}); err != nil {
				t.Fatal(err)
			}
			rows, err := f.s.DB.Read().QueryContext(ctx, `SELECT id FROM workflow_deliveries ORDER BY id`)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for rows.Next() {
				var id int64
				_ = rows.Scan(&id)
				ids = append(ids, id)
			}
			rows.Close()
			if len(ids) != 2 {
				t.Fatalf("deliveries: %d, want 2", len(ids))
			}
			w := &deliverWorker{e: f.e}
			for _, id := range ids {
				job := &river.Job[DeliverArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: 12}, Args: DeliverArgs{DeliveryID: id}}
				if err := w.Work(ctx, job); err == nil {
					t.Fatalf("first attempt of %d: want an error (503) so that River retries", id)
				}
				if err := w.Work(ctx, job); err != nil {
					t.Fatalf("retry of %d: %v", id, err)
				}
				if err := w.Work(ctx, job); err != nil { // a duplicate run sends nothing more
					t.Fatalf("third run of %d: %v", id, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(hits) != 4 {
				t.Fatalf("receiver saw %d requests, want 4: %+v", len(hits), hits)
			}
			for i := 0; i < 4; i += 2 {
				if hits[i].key != hits[i+1].key || hits[i].key == "" || !hits[i].valid || !hits[i+1].valid {
					t.Errorf("attempts %d,%d: %+v %+v", i, i+1, hits[i], hits[i+1])
				}
			}
			if hits[0].event != "wftest.request.submitted" || hits[2].event != "wftest.request.state_changed" || hits[0].key == hits[2].key {
				t.Errorf("events: %+v", hits)
			}
		})
	}
}

// TestWebhookThroughRiver: with the job system running, a committed event reaches the
// receiver without anyone calling the worker.
func TestWebhookThroughRiver(t *testing.T) {
	got := make(chan string, 4)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Parvis-Event")
	}))
	defer rcv.Close()
	f := setup(t, store.SQLite, true)
	if err := f.m.SaveEndpoint(context.Background(), f.org, Endpoint{Key: "hook", URL: rcv.URL, Secret: "0123456789abcdef0", Events: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	f.attach(t, "W2", "75011")
	select {
	case ev := <-got:
		if ev != "wftest.request.submitted" {
			t.Errorf("event %q", ev)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the webhook job never ran")
	}
}

func TestDefinitions(t *testing.T) {
	v := validator{types: map[string]TaskType{}}
	for _, tt := range builtinTasks() {
		v.types[tt.Name()] = tt
	}
	doc := strings.ReplaceAll(strings.ReplaceAll(terrace, "UNIT_A", "3"), "UNIT_B", "4")
	d, err := ParseDefinition([]byte(doc), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(d); err != nil {
		t.Fatalf("valid definition refused: %v", err)
	}
	// Round trip through both formats keeps everything.
	for _, format := range []string{"json", "yaml"} {
		b, err := d.Marshal(format)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := ParseDefinition(b, format)
		if err != nil {
			t.Fatalf("%s: %v\n%s", format, err, b)
		}
		b1, _ := json.Marshal(d)
		b2, _ := json.Marshal(d2)
		if string(b1) != string(b2) {
			t.Errorf("%s round trip differs:\n%s\n%s", format, b1, b2)
		}
	}
	if time.Duration(d.ActionByKey("silence").Delay) != 60*24*time.Hour {
		t.Errorf("delay: %v", d.ActionByKey("silence").Delay)
	}
	bad := []struct {
		name, doc string
		paths     []string
	}{
		{"no initial", `{"key":"k","title":"T","states":[{"key":"a","title":"A","public_label":"A"}],"actions":[]}`, []string{"states"}},
		{"two initial", `{"key":"k","title":"T","states":[{"key":"a","title":"A","public_label":"A","initial":true},{"key":"b","title":"B","public_label":"B","initial":true}]}`, []string{"states[1].initial"}},
		{"unknown target", `{"key":"k","title":"T","states":[{"key":"a","title":"A","public_label":"A","initial":true}],"actions":[{"key":"go","title":"Go","from":["a","zz"],"to":"nowhere"}]}`, []string{"actions[0].from[1]", "actions[0].to"}},
		{"bad task", `{"key":"k","title":"T","states":[{"key":"a","title":"A","public_label":"A","initial":true},{"key":"b","title":"B","public_label":"B"}],"actions":[{"key":"go","title":"Go","from":["a"],"to":"b","tasks":[{"type":"teleport"},{"type":"mail","config":{"template":"nope"}},{"type":"mail"}]}]}`,
			[]string{"actions[0].tasks[0].type", "actions[0].tasks[1].config.template", "actions[0].tasks[2].config.template"}},
		{"auto without delay", `{"key":"k","title":"T","states":[{"key":"a","title":"A","public_label":"A","initial":true},{"key":"b","title":"B","public_label":"B"}],"actions":[{"key":"go","title":"Go","from":["a"],"to":"b","kind":"auto","trigger":"delay"}]}`, []string{"actions[0].delay"}},
		{"unknown field", `{"key":"k","title":"T","states":[],"colour":"red"}`, []string{"colour"}},
		{"wrong type", `{"key":"k","title":"T","states":{"a":1}}`, []string{"states"}},
		{"bad yaml", "key: [", []string{""}},
		{"bad condition", `{"key":"k","title":"T","states":[{"key":"a","title":"A","public_label":"A","initial":true}],"routing":{"rules":[{"when":{"field":"x","op":"like"},"unit":0}]}}`, []string{"routing.rules[0].when.op", "routing.rules[0].unit"}},
	}
	for _, c := range bad {
		d, err := ParseDefinition([]byte(c.doc), "")
		if err == nil {
			err = v.Validate(d)
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || errs.CodeOf(err) != errs.Invalid {
			t.Errorf("%s: %v, want a ValidationError", c.name, err)
			continue
		}
		var paths []string
		for _, p := range ve.Problems {
			paths = append(paths, p.Path)
		}
		for _, want := range c.paths {
			found := false
			for _, p := range paths {
				found = found || p == want
			}
			if !found {
				t.Errorf("%s: problems %v lack path %q", c.name, ve.Problems, want)
			}
		}
	}
}

func TestConditions(t *testing.T) {
	fields := map[string]any{"postcode": "75011", "surface": 12.0, "tags": []any{"a", "b"}, "empty": ""}
	cases := []struct {
		c    Condition
		want bool
	}{
		{Condition{Field: "postcode", Op: "eq", Value: "75011"}, true},
		{Condition{Field: "postcode", Op: "ne", Value: "75011"}, false},
		{Condition{Field: "postcode", Op: "in", Values: []any{"69001", "75011"}}, true},
		{Condition{Field: "postcode", Op: "prefix", Value: "75"}, true},
		{Condition{Field: "surface", Op: "gt", Value: 10.0}, true},
		{Condition{Field: "surface", Op: "lt", Value: "10"}, false},
		{Condition{Field: "tags", Op: "contains", Value: "b"}, true},
		{Condition{Field: "empty", Op: "empty"}, true},
		{Condition{Field: "missing", Op: "not_empty"}, false},
		{Condition{Any: []*Condition{{Field: "postcode", Op: "eq", Value: "x"}, {Field: "surface", Op: "gt", Value: 1.0}}}, true},
		{Condition{All: []*Condition{{Field: "postcode", Op: "eq", Value: "x"}, {Field: "surface", Op: "gt", Value: 1.0}}}, false},
	}
	for i, c := range cases {
		if got := c.c.Holds(fields); got != c.want {
			t.Errorf("case %d: %+v = %v", i, c.c, got)
		}
	}
}

// TestPages: the back office works end to end over HTTP.
func TestPages(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d, false)
			f.attach(t, "P1", "75011")
			f.attach(t, "P2", "75011")
			boss := f.s.ClientAs(f.boss)
			a := f.s.ClientAs(f.agentA)
			b := f.s.ClientAs(f.agentB)
			steps := []struct {
				c      *servertest.Client
				method string
				path   string
				form   url.Values
				status int
				want   string
			}{
				{boss, "GET", "/admin/workflows", nil, 200, "Terrasse"},
				{boss, "GET", "/admin/workflows/terrace", nil, 200, "<svg"},
				{boss, "GET", "/admin/workflows/terrace?action=accept&task_type=pdf", nil, 200, `name="cfg_template"`},
				{boss, "POST", "/admin/workflows/terrace", url.Values{"op": {"add_state"}, "state_key": {"waiting"}, "state_title": {"Attente"}, "state_label": {"En attente"}}, 303, ""},
				{boss, "POST", "/admin/workflows/terrace", url.Values{"op": {"add_action"}, "action_key": {"go"}, "action_title": {"Go"}, "action_from": {"received"}, "action_to": {"nowhere"}}, 400, "actions[5].to"},
				{boss, "POST", "/admin/workflows/terrace", url.Values{"op": {"add_task"}, "action": {"take"}, "task_type": {"label"}, "cfg_add": {"urgent"}}, 303, ""},
				{boss, "GET", "/admin/workflows/terrace/export?format=yaml", nil, 200, "key: waiting"},
				{boss, "POST", "/admin/workflows", url.Values{"op": {"import"}, "doc": {`{"key":"x","title":"X","states":[]}`}, "format": {"json"}}, 400, "states"},
				{boss, "POST", "/admin/workflows", url.Values{"op": {"create"}, "key": {"bulky"}, "title": {"Encombrants"}, "state": {"Reçue"}}, 303, ""},
				{a, "GET", "/admin/workflows", nil, 403, ""},
				{a, "GET", "/admin/workflow/inbox", nil, 200, "Reçue"},
				{a, "GET", "/admin/workflow/inbox?workflow=terrace&state=received", nil, 200, "Terrasse P1"},
				{b, "GET", "/admin/workflow/inbox?workflow=terrace&state=received", nil, 200, ""},
				{b, "GET", "/admin/workflow/r/wftest.request/P1", nil, 404, ""},
				{a, "GET", "/admin/workflow/r/wftest.request/P1", nil, 200, "Historique"},
				{a, "POST", "/admin/workflow/r/wftest.request/P1", url.Values{"action": {"accept"}}, 409, ""},
				{a, "POST", "/admin/workflow/r/wftest.request/P1", url.Values{"action": {"take"}, "comment": {"je m'en occupe"}}, 303, ""},
				{a, "POST", "/admin/workflow/r/wftest.request/P1", url.Values{"action": {"accept"}}, 403, "droit"},
				{a, "GET", "/admin/workflow/inbox?mine=1", nil, 200, "Instruction"},
				{a, "POST", "/admin/workflow/inbox", url.Values{"workflow": {"terrace"}, "state": {"received"}, "sel": {"wftest.request/P2"}, "action": {"refuse"}}, 303, ""},
				{a, "GET", "/admin/workflow/r/wftest.request/P2", nil, 200, "Demande refusée"},
				{boss, "POST", "/admin/workflow/endpoints", url.Values{"key": {"erp"}, "url": {"ftp://x"}, "secret": {"short"}}, 400, "16"},
			}
			for i, s := range steps {
				var res *servertest.Response
				if s.method == "GET" {
					res = s.c.Get(s.path)
				} else {
					res = s.c.Post(s.path, s.form)
				}
				if res.Status != s.status || !strings.Contains(res.Body, s.want) {
					t.Fatalf("step %d %s %s: %d (want %d, %q)\n%s", i, s.method, s.path, res.Status, s.status, s.want, res.Body)
				}
			}
			// P1 keeps the version it started in; a new request starts in the edited one.
			if st, _ := f.eng.State(context.Background(), ref("P1")); st.State != "review" || st.Version != 1 || len(st.Labels) != 0 {
				t.Errorf("P1 after the page: %+v", st)
			}
			if st := f.attach(t, "P3", "75011"); st.Version != 3 || st.def.ActionByKey("take").Tasks[2].Type != "label" {
				t.Errorf("P3 runs version %d", st.Version)
			}
			var n int
			_ = f.s.DB.Read().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM audit_entries WHERE action = 'workflow.save'`).Scan(&n)
			if n < 3 {
				t.Errorf("audited definition saves: %d", n)
			}
		})
	}
}

// TestResubmitFlat: a corrected value made of parts is stored as one field per part, as on
// Attach, never as a nested map; a nil part or value removes its field.
func TestResubmitFlat(t *testing.T) {
	fields := map[string]any{"adresse_street": "1 rue X", "adresse_postcode": "75011", "adresse_town": "Paris",
		"lieu_lat": 48.1, "lieu_lng": 2.1, "lieu_address": "ici", "nombre": 3.0, "adresse_bis": "garde"}
	setFlat(fields, "adresse", map[string]any{"street": "2 rue Y", "postcode": "75015", "town": "Paris"})
	setFlat(fields, "lieu", map[string]any{"lat": nil, "lng": nil, "address": "là"})
	setFlat(fields, "nombre", nil)
	want := map[string]any{"adresse_street": "2 rue Y", "adresse_postcode": "75015", "adresse_town": "Paris",
		"lieu_address": "là", "adresse_bis": "garde"}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("fields: %v\nwant %v", fields, want)
	}
}

// TestCitizenAccountDeleted: when a citizen deletes their account, the requests the engine
// tracks for it lose the link to the account (nobody else's do); the module contributes
// this through the kernel's citizen-data extension point.
func TestCitizenAccountDeleted(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d, false)
			ctx := context.Background()
			for id, owner := range map[string]int64{"C1": 4242, "C2": 4242, "C3": 7} {
				if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error {
					_, err := f.eng.Attach(ctx, tx, NewResource{Ref: ref(id), OrgID: f.org, Title: id, CitizenID: owner,
						CitizenEmail: "lea@example.org", Fields: map[string]any{"postcode": "75011"}}, "terrace")
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}
			var provider citizen.DataProvider
			for _, e := range f.m.Declare().Extensions {
				if p, ok := e.Value.(citizen.DataProvider); ok && e.Point == kernel.PointCitizenData {
					provider = p
				}
			}
			if provider == nil {
				t.Fatal("the module contributes no citizen.DataProvider")
			}
			if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error { return provider.Delete(ctx, tx, 4242) }); err != nil {
				t.Fatal(err)
			}
			count := func(q string, args ...any) int {
				var n int
				if err := f.s.DB.Read().QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if n := count(`SELECT COUNT(*) FROM workflow_resources WHERE citizen_id = 4242`); n != 0 {
				t.Errorf("%d requests still linked to the deleted account", n)
			}
			if n := count(`SELECT COUNT(*) FROM workflow_resources WHERE citizen_id = 7`); n != 1 {
				t.Errorf("another citizen's request: %d linked, want 1", n)
			}
			if n := count(`SELECT COUNT(*) FROM workflow_resources`); n != 3 {
				t.Errorf("%d requests left, want 3 (the requests stay)", n)
			}
		})
	}
}
