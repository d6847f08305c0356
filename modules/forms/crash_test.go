package forms

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
	"parvis.org/parvis/modules/workflow"
)

const (
	crashDSN   = "PARVIS_FORMS_CRASH_DATABASE"
	crashToken = "PARVIS_FORMS_CRASH_TOKEN"
	crashForm  = `
key: crash
title: Demande
settings: {email_question: email}
steps:
  - key: s
    title: Vous
    sections:
      - key: s1
        questions:
          - {key: nom, type: text, label: Nom, required: true}
          - {key: email, type: email, label: Courriel, required: true}
`
	crashWorkers = 4
)

// crashSubmit posts one response over HTTP with its idempotency key and returns the status
// and reference.
func crashSubmit(base, token, key string) (int, string, error) {
	body := fmt.Sprintf(`{"answers":{"nom":"Personne %s","email":"%s@example.org"}}`, key, key)
	req, _ := http.NewRequest("POST", base+"/api/forms/crash/responses", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	_, rest, _ := strings.Cut(string(b), `"reference":"`)
	ref, _, _ := strings.Cut(rest, `"`)
	return res.StatusCode, ref, nil
}

// TestCrashChild is the child of TestCrashBurst: workers submit responses over HTTP in a
// burst, each printing "C key ref" only once the server confirmed it; every fifth one is sent
// twice, as a client that lost the first answer retries. It loops until killed.
func TestCrashChild(t *testing.T) {
	dsn := os.Getenv(crashDSN)
	if dsn == "" {
		t.Skip("child process of TestCrashBurst")
	}
	s := servertest.NewNode(t, dsn, servertest.Options{})
	token := os.Getenv(crashToken)
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	var wg sync.WaitGroup
	for w := range crashWorkers {
		wg.Go(func() {
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%d-%06d", w, i)
				st, ref, err := crashSubmit(s.URL, token, key)
				if err != nil || st != http.StatusCreated {
					say("E %s %d %v", key, st, err)
					os.Exit(3)
				}
				if i%5 == 0 {
					st2, ref2, err := crashSubmit(s.URL, token, key)
					if err != nil || st2 != http.StatusOK || ref2 != ref {
						say("E %s retry %d %s (first %s) %v", key, st2, ref2, ref, err)
						os.Exit(3)
					}
				}
				say("C %s %s", key, ref)
			}
		})
	}
	wg.Wait()
}

// TestCrashBurst SIGKILLs a process in the middle of a burst of submissions, then checks on
// the reopened database that every confirmed submission is stored exactly once with its
// workflow resource, its receipt job (then one receipt mail) and its webhook event, that
// nothing is duplicated, and that retrying any key (confirmed or in flight at the kill)
// gives one response per key.
func TestCrashBurst(t *testing.T) {
	if os.Getenv(crashDSN) != "" {
		t.Skip("in the child")
	}
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			dsn := servertest.SharedURL(t, d)
			s := servertest.NewNode(t, dsn, servertest.Options{})
			m := moduleOf(t, s)
			ctx := context.Background()
			org := s.DefaultOrg()
			admin := s.NewOrgAdmin(org, "admin@ville.test")
			actx := kernel.WithAgent(ctx, admin)
			if err := s.DB.InTx(actx, func(tx *store.Tx) error { _, err := m.SaveForm(actx, tx, org, mustDef(t, crashForm)); return err }); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Publish(actx, org, "crash"); err != nil {
				t.Fatal(err)
			}
			// A webhook subscriber, so each submission also queues its event. The child does
			// not run the job queue: the events wait in the database, and the node started
			// after the kill delivers them.
			rx := newHookReceiver(t)
			for _, in := range s.Modules {
				if wm, ok := in.Module.(*workflow.Module); ok {
					if err := wm.SaveEndpoint(ctx, org, workflow.Endpoint{Key: "hook", URL: rx.srv.URL, Secret: "0123456789abcdef",
						Events: []string{"forms.response.submitted"}}); err != nil {
						t.Fatal(err)
					}
				}
			}
			token := s.APIToken(s.NewAgent(org, "app@ville.test", PermSubmit), PermSubmit)

			confirmed := crashRun(t, dsn, token, 40)

			// Reopen: a fresh process state on the same database, running the job queue.
			s2 := servertest.NewNode(t, dsn, servertest.Options{Start: true})
			m2 := moduleOf(t, s2)
			q := s2.DB.Read()
			count := func(query string, args ...any) int {
				t.Helper()
				var n int
				if err := q.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
					t.Fatalf("%s: %v", query, err)
				}
				return n
			}
			for key, ref := range confirmed {
				if n := count(`SELECT COUNT(*) FROM forms_responses WHERE ref = ? AND submit_key = ?`, ref, "k:"+hashToken("crash\x00"+key)); n != 1 {
					t.Errorf("confirmed %s (%s): %d responses", key, ref, n)
				}
				if _, err := m2.wf.State(ctx, workflow.Ref{Type: ResourceType, ID: ref}); err != nil {
					t.Errorf("confirmed %s: no workflow resource: %v", ref, err)
				}
			}
			// Every stored response (the confirmed and those committed just before the kill)
			// has one receipt job (whose run mails one receipt, even run twice) and one webhook
			// event, and each key one response.
			stored := count(`SELECT COUNT(*) FROM forms_responses`)
			if n := count(`SELECT COUNT(DISTINCT submit_key) FROM forms_responses`); n != stored {
				t.Errorf("%d responses for %d keys", stored, n)
			}
			jobsFor := map[int64]int{}
			for _, id := range queuedReceipts(t, s2) {
				jobsFor[id]++
			}
			if n := count(`SELECT COUNT(*) FROM forms_responses`); len(jobsFor) != n {
				t.Errorf("receipt jobs for %d responses, %d stored", len(jobsFor), n)
			}
			for id, n := range jobsFor {
				if n != 1 || count(`SELECT COUNT(*) FROM forms_responses WHERE id = ?`, id) != 1 {
					t.Errorf("response %d: %d receipt jobs", id, n)
				}
			}
			workReceipts(t, s2, m2)
			workReceipts(t, s2, m2)
			if n := count(`SELECT COUNT(*) FROM forms_responses r WHERE (SELECT COUNT(*) FROM mail_attachments a WHERE a.name = 'recu-' || r.ref || '.pdf') <> 1`); n != 0 {
				t.Errorf("%d responses without exactly one receipt", n)
			}
			if n := count(`SELECT COUNT(*) FROM mail_attachments WHERE name LIKE 'recu-%'`); n != stored {
				t.Errorf("%d receipts for %d responses", n, stored)
			}
			if n := count(`SELECT COUNT(*) FROM workflow_deliveries WHERE event = 'forms.response.submitted'`); n != stored {
				t.Errorf("%d webhook events for %d responses", n, stored)
			}
			if n := count(`SELECT COUNT(DISTINCT idem_key) FROM workflow_deliveries WHERE event = 'forms.response.submitted'`); n != stored {
				t.Errorf("%d idempotency keys for %d responses", n, stored)
			}
			// The clients retry: confirmed keys get their response back, the keys in flight at
			// the kill get one (the first commit's, or a new one), never two.
			retry := map[string]string{}
			for key := range confirmed {
				retry[key] = confirmed[key]
			}
			last := map[int]int{}
			for key := range confirmed {
				w, i := keyParts(key)
				last[w] = max(last[w], i+1)
			}
			for w := range crashWorkers {
				retry[fmt.Sprintf("w%d-%06d", w, last[w])] = ""
			}
			for key, want := range retry {
				st, ref, err := crashSubmit(s2.URL, token, key)
				if err != nil || (want != "" && (st != http.StatusOK || ref != want)) || (want == "" && st != http.StatusOK && st != http.StatusCreated) {
					t.Errorf("retry %s: %d %s (want %q) %v", key, st, ref, want, err)
				}
				if n := count(`SELECT COUNT(*) FROM forms_responses WHERE submit_key = ?`, "k:"+hashToken("crash\x00"+key)); n != 1 {
					t.Errorf("after retrying %s: %d responses", key, n)
				}
			}
			// The receiver sees every stored event at least once, always with the key stored
			// with it (a refused first attempt comes again with the same key), and no other.
			rows, err := q.QueryContext(ctx, `SELECT idem_key FROM workflow_deliveries WHERE event = 'forms.response.submitted'`)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := scanStrings(rows)
			if err != nil {
				t.Fatal(err)
			}
			rx.waitFor(t, keys)
			t.Logf("%s: %d confirmed before SIGKILL, %d stored, %d events delivered (%d requests)", d, len(confirmed), stored, len(keys), rx.total())
		})
	}
}

func keyParts(key string) (w, i int) {
	a, b, _ := strings.Cut(strings.TrimPrefix(key, "w"), "-")
	w, _ = strconv.Atoi(a)
	i, _ = strconv.Atoi(b)
	return w, i
}

func moduleOf(t *testing.T, s *servertest.Server) *Module {
	t.Helper()
	for _, in := range s.Modules {
		if m, ok := in.Module.(*Module); ok {
			return m
		}
	}
	t.Fatal("forms module not built")
	return nil
}

// crashRun re-executes the test binary as the child, SIGKILLs it once n submissions are
// confirmed, and returns every confirmed key with its reference.
func crashRun(t *testing.T, dsn, token string, n int) map[string]string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDSN+"="+dsn, crashToken+"="+token)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	confirmed := map[string]string{}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "C":
			key, ref, _ := strings.Cut(rest, " ")
			if _, dup := confirmed[key]; dup {
				t.Errorf("key %s confirmed twice", key)
			}
			confirmed[key] = ref
		case "E":
			t.Errorf("child failed: %s", rest)
		}
		if len(confirmed) >= n && !killed {
			// Lines already written are still read: those were confirmed too.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed: %v", err)
	}
	return confirmed
}

// hookReceiver is a webhook receiver that refuses the first attempt of every third event.
type hookReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen map[string]int  // idempotency key → requests
	ok   map[string]bool // keys accepted
	bad  []string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rx := &hookReceiver{seen: map[string]int{}, ok: map[string]bool{}}
	rx.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var doc struct {
			ID    string `json:"id"`
			Event string `json:"event"`
		}
		_ = json.Unmarshal(b, &doc)
		key := r.Header.Get("Idempotency-Key")
		rx.mu.Lock()
		defer rx.mu.Unlock()
		if key == "" || doc.ID != key || doc.Event != "forms.response.submitted" ||
			!workflow.VerifySignature("0123456789abcdef", r.Header.Get("Parvis-Signature"), b) {
			rx.bad = append(rx.bad, string(b))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rx.seen[key]++
		if rx.seen[key] == 1 && len(rx.seen)%3 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rx.ok[key] = true
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rx.srv.Close)
	return rx
}

func (rx *hookReceiver) total() int {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	n := 0
	for _, c := range rx.seen {
		n += c
	}
	return n
}

// waitFor waits until every key has been delivered (and accepted), then checks that no
// other key came.
func (rx *hookReceiver) waitFor(t *testing.T, keys []string) {
	t.Helper()
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		rx.mu.Lock()
		missing := 0
		for k := range want {
			if !rx.ok[k] { // a key refused first is done once it came again
				missing++
			}
		}
		retried := 0
		for _, n := range rx.seen {
			if n > 1 {
				retried++
			}
		}
		var unknown []string
		for k := range rx.seen {
			if !want[k] {
				unknown = append(unknown, k)
			}
		}
		bad := rx.bad
		rx.mu.Unlock()
		if len(bad) > 0 || len(unknown) > 0 {
			t.Fatalf("receiver: %d malformed requests (%v), %d keys of no stored event", len(bad), bad, len(unknown))
		}
		if missing == 0 && (len(keys) < 3 || retried > 0) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhooks: %d of %d events never delivered, %d retried", missing, len(keys), retried)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
