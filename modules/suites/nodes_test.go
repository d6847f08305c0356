package suites_test

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

// TestNodesStartTogether is the upgrade step of docs/deploy.md: two `parvis serve` started
// at the same moment on one empty PostgreSQL database both become ready, every migration
// (each module's goose migrations and River's) is applied exactly once, and what is done
// through one node is seen through the other.
func TestNodesStartTogether(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the parvis binary")
	}
	if os.Getenv("PARVIS_TEST_POSTGRES") == "" {
		t.Skip("PARVIS_TEST_POSTGRES not set")
	}
	bin := parvisBinary(t)
	dsn := storetest.URL(t, store.Postgres)
	dir := t.TempDir()
	env := func(data string) []string {
		return []string{"PARVIS_DATABASE=" + dsn, "PARVIS_DATA=" + data,
			"PARVIS_SECRET_KEY=" + strings.Repeat("n0d3s", 8), "PARVIS_LOG_LEVEL=warn"}
	}

	// Both processes are launched before either is waited for, so they migrate together.
	nodes := []*node{launchNode(t, bin, env(filepath.Join(dir, "a"))), launchNode(t, bin, env(filepath.Join(dir, "b")))}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { errs[i] = n.ready() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v\n%s", i, err, nodes[i].log)
		}
	}

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Goose: one row per applied version in each module's table (a race would record a
	// version twice, or make a node fail on a table the other created).
	tables := queryStrings(t, db, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name LIKE 'parvis_migrations_%' ORDER BY table_name`)
	if len(tables) < 5 {
		t.Fatalf("goose tables: %v", tables)
	}
	for _, tbl := range tables {
		var rows, versions int
		if err := db.QueryRow(fmt.Sprintf(`SELECT count(*), count(DISTINCT version_id) FROM %s WHERE version_id > 0`, tbl)).
			Scan(&rows, &versions); err != nil {
			t.Fatal(err)
		}
		if rows == 0 || rows != versions {
			t.Errorf("%s: %d rows for %d versions", tbl, rows, versions)
		}
	}
	// River: versions 1…N of its main line, each once, and nothing pending for either node.
	var rows, versions, highest int
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT version), coalesce(max(version), 0) FROM river_migration WHERE line = 'main'`).
		Scan(&rows, &versions, &highest); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || rows != versions || versions != highest {
		t.Errorf("river_migration: %d rows, %d versions, highest %d", rows, versions, highest)
	}
	if out := mustRun(t, bin, env(filepath.Join(dir, "c")), "migrate"); strings.Contains(out, "applied") {
		t.Errorf("migrations left after both nodes started:\n%s", out)
	}

	// A change through one node, seen through the other: an administrator created on the
	// shared database sets a password on node A, signs in on node B, and B's session is
	// valid on A.
	out := mustRun(t, bin, env(filepath.Join(dir, "c")), "admin", "create", "chef@commune.fr")
	setup := regexp.MustCompile(`/admin/setup/[A-Za-z0-9_-]+`).FindString(out)
	if setup == "" {
		t.Fatalf("admin create printed no setup link:\n%s", out)
	}
	c := newWebClient(t)
	a, b := nodes[0].url, nodes[1].url
	pw := "une phrase de passe assez longue"
	if st, body := c.post(a, setup, url.Values{"email": {"chef@commune.fr"}, "name": {"Chef"}, "password": {pw}, "confirm": {pw}}); st != http.StatusSeeOther {
		t.Fatalf("setup on node A: %d\n%.500s", st, body)
	}
	if st, body := c.post(b, "/admin/login", url.Values{"email": {"chef@commune.fr"}, "password": {pw}}); st != http.StatusSeeOther {
		t.Fatalf("login on node B with the password set on node A: %d\n%.500s", st, body)
	}
	if st, body := c.get(a, "/admin/"); st != http.StatusOK || !strings.Contains(body, "Chef") {
		t.Fatalf("node A with the session opened on node B: %d\n%.500s", st, body)
	}
}

// launchNode starts `parvis serve` without waiting for it (startNode waits).
func launchNode(t *testing.T, bin string, env []string) *node {
	t.Helper()
	addr := freePort(t)
	log := &strings.Builder{}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), append(env, "PARVIS_LISTEN="+addr, "PARVIS_DEMO=false")...)
	cmd.Stdout, cmd.Stderr = log, log // one writer: exec then writes from one goroutine
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	return &node{cmd: cmd, url: "http://" + addr, log: log, exited: exited}
}

// ready waits until the node answers /readyz with 200, or says why not.
func (n *node) ready() error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(n.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-n.exited:
			return fmt.Errorf("exited before being ready: %v", n.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// webClient is a browser-like client for the nodes: one cookie jar (cookies do not depend
// on the port, so a session opened on one node is sent to the other), CSRF token picked
// from the page, redirects not followed.
type webClient struct {
	t *testing.T
	c *http.Client
}

func newWebClient(t *testing.T) *webClient {
	jar, _ := cookiejar.New(nil)
	return &webClient{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (w *webClient) get(base, path string) (int, string) {
	w.t.Helper()
	return w.do(http.MethodGet, base, path, nil)
}

// post fetches the form first, for its CSRF token.
func (w *webClient) post(base, path string, form url.Values) (int, string) {
	w.t.Helper()
	_, page := w.get(base, path)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		w.t.Fatalf("no CSRF token on %s%s:\n%.500s", base, path, page)
	}
	form.Set("csrf", m[1])
	return w.do(http.MethodPost, base, path, form)
}

func (w *webClient) do(method, base, path string, form url.Values) (int, string) {
	w.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		w.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := w.c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
