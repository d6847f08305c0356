package suites_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

// TestDeployGuide runs the steps of docs/deploy.md with the real binary: serve a town
// installed from the demo suite, back it up, wipe it, restore it and find everything there
// (SQLite with `parvis backup`, PostgreSQL with pg_dump/pg_restore); and on PostgreSQL, two
// nodes started together on one database (migrations and the suite applied once), both
// serving, a change made through one visible on the other.
func TestDeployGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the parvis binary")
	}
	bin := parvisBinary(t)
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dsn := storetest.URL(t, d)
			dir := t.TempDir()
			secret := strings.Repeat("s3cr3t", 8)
			env := func(data string) []string {
				return []string{"PARVIS_DATABASE=" + strings.Replace(dsn, "<data>", data, 1), "PARVIS_DATA=" + data,
					"PARVIS_SECRET_KEY=" + secret, "PARVIS_LOG_LEVEL=warn"}
			}
			data := filepath.Join(dir, "data")
			if d == store.SQLite {
				dsn = "sqlite:<data>/parvis.db"
			}

			// 1. A town from the demo suite.
			n1 := startNode(t, bin, env(data), "--suite", "demo")
			home := n1.get(t, "/")
			if !strings.Contains(home, "Belleville-sur-Loire") {
				t.Fatalf("home page of the demo town:\n%.500s", home)
			}
			// 2. Back up while it runs.
			backup := filepath.Join(dir, "backup")
			if d == store.SQLite {
				mustRun(t, bin, env(data), "backup", backup+".db")
			} else {
				base, schema := splitSchema(t, dsn)
				mustExec(t, "pg_dump", "--format=custom", "--schema="+schema, "--file="+backup+".dump", base)
			}
			n1.stop(t)
			// 3. Wipe.
			if err := os.RemoveAll(data); err != nil {
				t.Fatal(err)
			}
			if d == store.Postgres {
				base, schema := splitSchema(t, dsn)
				db, err := sql.Open("pgx", base)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
					t.Fatal(err)
				}
				db.Close()
			}
			// 4. Restore.
			if err := os.MkdirAll(data, 0o750); err != nil {
				t.Fatal(err)
			}
			if d == store.SQLite {
				copyFile(t, backup+".db", filepath.Join(data, "parvis.db"))
			} else {
				base, _ := splitSchema(t, dsn)
				mustExec(t, "pg_restore", "--no-owner", "--dbname="+base, backup+".dump")
			}
			// 5. Everything there: the same home page, and the suite finds nothing to do.
			n2 := startNode(t, bin, env(data))
			if got := n2.get(t, "/"); !strings.Contains(got, "Belleville-sur-Loire") {
				t.Fatalf("home page after restore:\n%.500s", got)
			}
			out := mustRun(t, bin, env(data), "suite", "apply", "demo", "--dry-run")
			if !strings.Contains(out, "0 to create, 0 to update") {
				t.Fatalf("after restore the suite would change things:\n%s", out)
			}
			if d == store.SQLite {
				n2.stop(t)
				return
			}
			// 6. A second node on the same database, started with the same suite: it serves,
			// and a change made on the database through one process shows on both nodes.
			n3 := startNode(t, bin, env(filepath.Join(dir, "data3")), "--suite", "demo")
			for _, n := range []*node{n2, n3} {
				if got := n.get(t, "/mairie-11/"); !strings.Contains(got, "Mairie du 11e") {
					t.Fatalf("node %s: district site missing", n.url)
				}
			}
			change := filepath.Join(dir, "change.yaml")
			if err := os.WriteFile(change, []byte("format: 1\nname: change\nversion: 1.0.0\ntitle: Change\nrequires: [portal]\n"+
				"news:\n  - {key: alerte, site: mairie-11, slug: alerte-travaux, title: Travaux rue Oberkampf}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			mustRun(t, bin, env(filepath.Join(dir, "data4")), "suite", "apply", change)
			for _, n := range []*node{n2, n3} {
				n.waitFor(t, "/mairie-11/actualites", "Travaux rue Oberkampf")
			}
			n2.stop(t)
			n3.stop(t)
		})
	}
}

// parvisBinary is the standard distribution, built once per test run (or PARVIS_TEST_BINARY).
func parvisBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("PARVIS_TEST_BINARY"); b != "" {
		return b
	}
	bin := filepath.Join(t.TempDir(), "parvis")
	cmd := exec.Command("go", "build", "-o", bin, "parvis.org/parvis/cmd/parvis")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type node struct {
	cmd    *exec.Cmd
	url    string
	log    *strings.Builder
	exited chan struct{} // closed when the process ends (launchNode only)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startNode(t *testing.T, bin string, env []string, args ...string) *node {
	t.Helper()
	addr := freePort(t)
	log := &strings.Builder{}
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), append(env, "PARVIS_LISTEN="+addr, "PARVIS_DEMO=false")...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, url: "http://" + addr, log: log}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(n.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n
			}
		}
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("node on %s not ready: %v\n%s", addr, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *node) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(n.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s%s: %d\n%.300s", n.url, path, resp.StatusCode, b)
	}
	return string(b)
}

// waitFor polls until the page shows want: other nodes hear of changes by NOTIFY.
func (n *node) waitFor(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(n.get(t, path), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s%s never showed %q", n.url, path, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop ends the node as systemd does (SIGTERM: requests in flight finish).
func (n *node) stop(t *testing.T) {
	t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("node %s stopped with %v\n%s", n.url, err, n.log)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s did not stop", n.url)
	}
}

func mustRun(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("parvis %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mustExec(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// splitSchema separates the test database URL from the schema storetest made (the guide's
// commands take a whole database; tests share one and isolate by schema).
func splitSchema(t *testing.T, dsn string) (string, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	u.RawQuery = ""
	if schema == "" {
		t.Fatal(fmt.Sprintf("no schema in %s", dsn))
	}
	return u.String(), schema
}
