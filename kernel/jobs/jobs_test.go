package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/jobs"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

// touchArgs is the test job: it reports its key to the probe, or fails while told to.
type touchArgs struct {
	Key string `json:"key"`
}

func (touchArgs) Kind() string { return "test.touch" }

type probe struct {
	mu   sync.Mutex
	runs map[string]int
	fail map[string]bool
	ran  chan string
}

func newProbe() *probe {
	return &probe{runs: map[string]int{}, fail: map[string]bool{}, ran: make(chan string, 100)}
}

func (p *probe) setFail(key string, v bool) { p.mu.Lock(); p.fail[key] = v; p.mu.Unlock() }
func (p *probe) count(key string) int       { p.mu.Lock(); defer p.mu.Unlock(); return p.runs[key] }

type touchWorker struct {
	river.WorkerDefaults[touchArgs]
	p *probe
}

func (w *touchWorker) Work(ctx context.Context, job *river.Job[touchArgs]) error {
	w.p.mu.Lock()
	failing := w.p.fail[job.Args.Key]
	if !failing {
		w.p.runs[job.Args.Key]++
	}
	w.p.mu.Unlock()
	if failing {
		return errors.New("touch " + job.Args.Key + " refused")
	}
	w.p.ran <- job.Args.Key
	return nil
}

// testMod adds the worker, a fake Authorizer and a middleware that signs in the agent named
// by the X-Test-Agent header ("org:perm,perm" or "super").
type testMod struct{ p *probe }

func (t *testMod) Info() kernel.Info {
	return kernel.Info{ID: "test.jobs", New: func() kernel.Module { return t }}
}

func (t *testMod) Provision(ctx context.Context, env *kernel.Env) error {
	river.AddWorker(env.Workers, &touchWorker{p: t.p})
	kernel.Provide[kernel.Authorizer](env, fakeAuth{})
	return nil
}

func (t *testMod) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("X-Test-Agent"); h != "" {
			a := &kernel.Agent{ID: 1, Name: "Test", Email: "t@example.org"}
			if h == "super" {
				a.Superadmin, a.OrgID = true, 1
			} else {
				org, perms, _ := strings.Cut(h, ":")
				a.OrgID, _ = strconv.ParseInt(org, 10, 64)
				a.SessionID = perms // the fake Authorizer reads the permissions from here
			}
			r = r.WithContext(kernel.WithAgent(r.Context(), a))
		}
		next.ServeHTTP(w, r)
	})
}

type fakeAuth struct{}

func (fakeAuth) Can(ctx context.Context, a *kernel.Agent, perm string, res *kernel.Resource) bool {
	if a.Superadmin {
		return true
	}
	for _, p := range strings.Split(a.SessionID, ",") {
		if p == perm {
			return true
		}
	}
	return false
}
func (fakeAuth) Scope(ctx context.Context, a *kernel.Agent, perm string) (kernel.Scope, error) {
	return kernel.Scope{All: fakeAuth{}.Can(ctx, a, perm, nil)}, nil
}
func (fakeAuth) UnitsOf(ctx context.Context, a *kernel.Agent) ([]int64, error) { return nil, nil }

type env struct {
	s    *server.Server
	jobs *jobs.Module
	p    *probe
	url  string
}

// fastRetry retries after 20 ms, so tests see a retry without River's real backoff.
type fastRetry struct{}

func (fastRetry) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(20 * time.Millisecond)
}

func start(t *testing.T, d store.Dialect) *env {
	t.Helper()
	cfg, _, err := config.Load([]string{"PARVIS_DATABASE=" + storetest.URL(t, d), "PARVIS_DATA=" + t.TempDir()}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p := newProbe()
	jm := &jobs.Module{RetryPolicy: fastRetry{}, PollInterval: 50 * time.Millisecond}
	info := jm.Info()
	info.New = func() kernel.Module { return jm }
	tm := &testMod{p: p}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("PARVIS_TEST_VERBOSE") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx := context.Background()
	s, err := server.Build(ctx, cfg, log, server.Options{Modules: []kernel.Info{info, tm.Info()}})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	ts := httptest.NewServer(s.Handler)
	t.Cleanup(func() {
		ts.Close()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = s.Close(cctx)
	})
	return &env{s: s, jobs: jm, p: p, url: ts.URL}
}

func (e *env) enqueue(t *testing.T, key string, commit bool, opts *river.InsertOpts) {
	t.Helper()
	errRollback := errors.New("rollback")
	err := e.s.DB.InTx(context.Background(), func(tx *store.Tx) error {
		if err := e.jobs.Enqueue(context.Background(), tx, touchArgs{Key: key}, opts); err != nil {
			return err
		}
		if !commit {
			return errRollback
		}
		return nil
	})
	if commit && err != nil || !commit && !errors.Is(err, errRollback) {
		t.Fatalf("enqueue %s: %v", key, err)
	}
}

func (e *env) waitRun(t *testing.T, key string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case k := <-e.p.ran:
			if k == key {
				return
			}
		case <-deadline:
			t.Fatalf("job %s never ran", key)
		}
	}
}

// rowsFor counts the stored jobs carrying key (through River: SQLite stores args as JSONB).
func rowsFor(t *testing.T, e *env, key string) int {
	t.Helper()
	res, err := e.jobs.Client().JobList(context.Background(), river.NewJobListParams().Kinds("test.touch").First(1000))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, j := range res.Jobs {
		if strings.Contains(string(j.EncodedArgs), `"`+key+`"`) {
			n++
		}
	}
	return n
}

func TestEnqueueInTransaction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := start(t, db.Dialect)
		e.enqueue(t, "rolled-back", false, nil)
		e.enqueue(t, "committed", true, nil)
		e.waitRun(t, "committed")
		if n := rowsFor(t, e, "rolled-back"); n != 0 {
			t.Errorf("rolled-back job: %d rows, want none", n)
		}
		if n := rowsFor(t, e, "committed"); n != 1 {
			t.Errorf("committed job: %d rows, want 1", n)
		}
		// Give the rolled-back job every chance to appear: a later committed job has run.
		e.enqueue(t, "after", true, nil)
		e.waitRun(t, "after")
		if c := e.p.count("rolled-back"); c != 0 {
			t.Errorf("rolled-back job ran %d times", c)
		}
		if c := e.p.count("committed"); c != 1 {
			t.Errorf("committed job ran %d times, want 1", c)
		}
		pending, err := e.jobs.Pending(context.Background())
		if err != nil || pending != 0 {
			t.Errorf("Pending = %d, %v; want 0", pending, err)
		}
	})
}

func TestEnqueueRefusesUnknownKindAndNilTx(t *testing.T) {
	e := start(t, store.SQLite)
	err := e.s.DB.InTx(context.Background(), func(tx *store.Tx) error {
		return e.jobs.Enqueue(context.Background(), tx, unknownArgs{}, nil)
	})
	if err == nil {
		t.Error("enqueueing a kind no worker handles succeeded")
	}
	if err := e.jobs.Enqueue(context.Background(), nil, touchArgs{Key: "x"}, nil); err == nil {
		t.Error("enqueue without a transaction succeeded")
	}
}

type unknownArgs struct{}

func (unknownArgs) Kind() string { return "test.unknown" }

func TestRetryWithBackoffThenSuccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := start(t, db.Dialect)
		e.p.setFail("flaky", true)
		e.enqueue(t, "flaky", true, nil)
		// Wait until River recorded at least two failed attempts, then let it succeed.
		waitFor(t, func() bool {
			j := job(t, e, "flaky")
			return j != nil && len(j.Errors) >= 2
		})
		e.p.setFail("flaky", false)
		e.waitRun(t, "flaky")
		j := job(t, e, "flaky")
		if j.Attempt < 3 || !strings.Contains(j.Errors[0].Error, "touch flaky refused") {
			t.Errorf("attempt %d, errors %+v", j.Attempt, j.Errors)
		}
	})
}

func job(t *testing.T, e *env, key string) *rivertype.JobRow {
	t.Helper()
	res, err := e.jobs.Client().JobList(context.Background(), river.NewJobListParams().Kinds("test.touch").First(1000))
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range res.Jobs {
		if strings.Contains(string(j.EncodedArgs), `"`+key+`"`) {
			return j
		}
	}
	return nil
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never met")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is a browser-like client: cookie jar, CSRF token from the last page, no redirects.
type client struct {
	t     *testing.T
	base  string
	agent string
	c     *http.Client
	csrf  string
}

func (e *env) client(t *testing.T, agent string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: e.url, agent: agent, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) do(method, path string, form url.Values) (int, string, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Origin", c.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if c.agent != "" {
		req.Header.Set("X-Test-Agent", c.agent)
	}
	res, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if m := csrfRe.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return res.StatusCode, string(b), res.Header.Get("Location")
}

func (c *client) post(path string) (int, string, string) {
	return c.do("POST", path, url.Values{"csrf": {c.csrf}})
}

func TestJobsPage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := start(t, db.Dialect)
		e.p.setFail("doomed", true)
		// One attempt only: the job is discarded at once and shows as failed.
		e.enqueue(t, "doomed", true, &river.InsertOpts{MaxAttempts: 1, Metadata: jobs.OrgMetadata(7)})
		e.enqueue(t, "other-org", true, &river.InsertOpts{Metadata: jobs.OrgMetadata(8), ScheduledAt: time.Now().Add(time.Hour)})
		waitFor(t, func() bool { j := job(t, e, "doomed"); return j != nil && j.State == rivertype.JobStateDiscarded })
		id := strconv.FormatInt(job(t, e, "doomed").ID, 10)
		otherID := strconv.FormatInt(job(t, e, "other-org").ID, 10)

		admin := e.client(t, "7:kernel.jobs.manage")
		tests := []struct {
			name, agent, path string
			status            int
			has, hasNot       []string
		}{
			{"anonymous is sent to login", "", "/admin/jobs", http.StatusSeeOther, nil, nil},
			{"agent without permission", "7:", "/admin/jobs", http.StatusForbidden, nil, []string{"test.touch"}},
			{"failed jobs by default", "7:kernel.jobs.manage", "/admin/jobs", http.StatusOK,
				[]string{"test.touch", "touch doomed refused", "1 / 1", `action="/admin/jobs/` + id + `/retry"`, `name="csrf"`}, nil},
			{"other organisation's job hidden", "7:kernel.jobs.manage", "/admin/jobs?state=scheduled", http.StatusOK,
				[]string{"(0)"}, []string{"/admin/jobs/" + otherID}},
			{"superadmin sees every organisation", "super", "/admin/jobs?state=scheduled", http.StatusOK,
				[]string{"test.touch"}, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, body, _ := e.client(t, tc.agent).do("GET", tc.path, nil)
				if status != tc.status {
					t.Fatalf("status %d, want %d\n%s", status, tc.status, body)
				}
				for _, s := range tc.has {
					if !strings.Contains(body, s) {
						t.Errorf("page lacks %q", s)
					}
				}
				for _, s := range tc.hasNot {
					if strings.Contains(body, s) {
						t.Errorf("page shows %q", s)
					}
				}
			})
		}

		// Retry: without CSRF refused; another organisation's job is not found; ours runs.
		admin.do("GET", "/admin/jobs", nil)
		if status, _, _ := admin.do("POST", "/admin/jobs/"+id+"/retry", url.Values{}); status != http.StatusForbidden {
			t.Errorf("retry without CSRF: %d, want 403", status)
		}
		if status, _, _ := admin.post("/admin/jobs/" + otherID + "/retry"); status != http.StatusNotFound {
			t.Errorf("retry of another organisation's job: %d, want 404", status)
		}
		if status, _, _ := admin.post("/admin/jobs/nope/retry"); status != http.StatusNotFound {
			t.Errorf("retry of a malformed id: %d, want 404", status)
		}
		e.p.setFail("doomed", false)
		status, _, loc := admin.post("/admin/jobs/" + id + "/retry")
		if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/jobs") {
			t.Fatalf("retry: %d %q", status, loc)
		}
		e.waitRun(t, "doomed")
		status, body, _ := admin.do("GET", loc, nil)
		if status != http.StatusOK || !strings.Contains(body, e.s.I18n.T("fr", "kernel.jobs.retried")) {
			t.Errorf("after retry: %d, no confirmation", status)
		}
	})
}

// TestAbandonedJobRescued: a job left running by a node that died (attempted RescueAfter
// ago and never finished) is taken up again and runs.
func TestAbandonedJobRescued(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) { abandonedJobRescued(t, d) })
	}
}

func abandonedJobRescued(t *testing.T, d store.Dialect) {
	e := start(t, d)
	e.enqueue(t, "orphan", true, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	// As the dead node left it: running, attempted long ago.
	res, err := e.s.DB.Write().ExecContext(context.Background(), `UPDATE river_job SET state = 'running', attempt = 1,
		attempted_at = ? WHERE kind = 'test.touch'`, time.Now().Add(-jobs.RescueAfter-time.Minute).UTC())
	if err != nil {
		t.Fatalf("making the job look abandoned: %v", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("making the job look abandoned: %d rows", n)
	}
	e.waitRun(t, "orphan")
}
