package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

// fake is a configurable module for lifecycle tests.
type fake struct {
	id        string
	parts     kernel.Parts
	failProv  bool
	failStart bool
	events    *[]string
	mu        *sync.Mutex
}

func (f *fake) Info() kernel.Info {
	return kernel.Info{ID: f.id, New: func() kernel.Module { return f }}
}
func (f *fake) log(ev string) {
	f.mu.Lock()
	*f.events = append(*f.events, f.id+":"+ev)
	f.mu.Unlock()
}
func (f *fake) Provision(ctx context.Context, env *kernel.Env) error {
	f.log("provision")
	if f.failProv {
		return errors.New("provision boom")
	}
	return nil
}
func (f *fake) Declare() kernel.Parts { return f.parts }
func (f *fake) Start(ctx context.Context) error {
	if f.failStart {
		return errors.New("start boom")
	}
	f.log("start")
	return nil
}
func (f *fake) Stop(ctx context.Context) error { f.log("stop"); return nil }

type rec struct {
	mu     sync.Mutex
	events []string
}

func (r *rec) mod(id string, p kernel.Parts) *fake {
	return &fake{id: id, parts: p, events: &r.events, mu: &r.mu}
}

func build(t *testing.T, d store.Dialect, mods ...kernel.Module) (*server.Server, error) {
	t.Helper()
	cfg, _, err := config.Load([]string{"PARVIS_DATABASE=" + storetest.URL(t, d), "PARVIS_DATA=" + t.TempDir()}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	infos := make([]kernel.Info, len(mods))
	for i, m := range mods {
		infos[i] = m.Info()
	}
	s, err := server.Build(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{Modules: infos})
	if err == nil {
		t.Cleanup(func() { s.Close(context.Background()) })
	}
	return s, err
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })

func TestDeclarationConflictsNameBothSides(t *testing.T) {
	t.Parallel()
	perm := kernel.Permission{Name: "things.edit"}
	cases := []struct {
		name string
		a, b kernel.Parts
		want []string
	}{
		{"duplicate permission",
			kernel.Parts{Permissions: []kernel.Permission{perm}},
			kernel.Parts{Permissions: []kernel.Permission{perm}},
			[]string{`"things.edit"`, "alpha", "beta"}},
		{"duplicate route",
			kernel.Parts{Routes: []kernel.Route{{Method: "GET", Pattern: "/things", Handler: ok}}},
			kernel.Parts{Routes: []kernel.Route{{Method: "GET", Pattern: "/things", Handler: ok}}},
			[]string{"GET /things", "alpha", "beta"}},
		{"conflicting patterns",
			kernel.Parts{Routes: []kernel.Route{{Method: "GET", Pattern: "/things/{id}", Handler: ok}}},
			kernel.Parts{Routes: []kernel.Route{{Method: "GET", Pattern: "/things/{name}", Handler: ok}}},
			[]string{"/things/{name}", "alpha", "beta"}},
		{"back-office route without permission",
			kernel.Parts{},
			kernel.Parts{Routes: []kernel.Route{{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/things", Handler: ok}}},
			[]string{"beta", "declares no permission"}},
		{"back-office route with undeclared permission",
			kernel.Parts{},
			kernel.Parts{Routes: []kernel.Route{{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/things", Perm: "nobody.declared", Handler: ok}}},
			[]string{"beta", "undeclared permission"}},
		{"back-office route outside /admin/",
			kernel.Parts{Permissions: []kernel.Permission{perm}},
			kernel.Parts{Routes: []kernel.Route{{Area: kernel.BackOffice, Method: "GET", Pattern: "/things", Perm: "things.edit", Handler: ok}}},
			[]string{"beta", "/admin/"}},
		{"malformed permission",
			kernel.Parts{Permissions: []kernel.Permission{{Name: "Bad Name"}}}, kernel.Parts{},
			[]string{"alpha", "malformed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &rec{}
			_, err := build(t, store.SQLite, r.mod("alpha", c.a), r.mod("beta", c.b))
			if err == nil {
				t.Fatal("build succeeded, want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestDuplicateModuleID(t *testing.T) {
	r := &rec{}
	_, err := build(t, store.SQLite, r.mod("alpha", kernel.Parts{}), r.mod("alpha", kernel.Parts{}))
	if err == nil || !strings.Contains(err.Error(), `"alpha"`) {
		t.Fatalf("want duplicate ID error, got %v", err)
	}
}

func TestLifecycleOrderAndRollback(t *testing.T) {
	t.Parallel()
	r := &rec{}
	a, b, c := r.mod("a1", kernel.Parts{}), r.mod("b2", kernel.Parts{}), r.mod("c3", kernel.Parts{})
	c.failStart = true
	s, err := build(t, store.SQLite, a, b, c)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "c3") {
		t.Fatalf("want start error naming c3, got %v", err)
	}
	want := "a1:provision b2:provision c3:provision a1:start b2:start b2:stop a1:stop"
	if got := strings.Join(r.events, " "); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
}

func TestProvisionFailureNamesModule(t *testing.T) {
	r := &rec{}
	m := r.mod("broken", kernel.Parts{})
	m.failProv = true
	_, err := build(t, store.SQLite, m)
	if err == nil || !strings.Contains(err.Error(), "module broken: provision") {
		t.Fatalf("got %v", err)
	}
}

func TestMigrationsRoutesAndDenyByDefault(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, d *store.DB) {
		r := &rec{}
		parts := kernel.Parts{
			Migrations:  os.DirFS("testdata/mig"),
			Permissions: []kernel.Permission{{Name: "fake.view"}},
			Routes: []kernel.Route{
				{Area: kernel.Public, Method: "GET", Pattern: "/fake", Handler: ok},
				{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/fake", Perm: "fake.view", Handler: ok},
				{Area: kernel.API, Method: "GET", Pattern: "/api/fake", Perm: "fake.view", Handler: ok},
			},
		}
		s, err := build(t, d.Dialect, r.mod("fake", parts))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB.Write().ExecContext(context.Background(), "INSERT INTO fake_items (name) VALUES (?)", "x"); err != nil {
			t.Fatalf("migration not applied: %v", err)
		}
		if n, err := s.Pending(context.Background()); err != nil || n != 0 {
			t.Fatalf("pending %d %v", n, err)
		}
		ts := httptest.NewServer(s.Handler)
		defer ts.Close()
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for path, want := range map[string]int{"/fake": 200, "/admin/fake": 303, "/api/fake": 401, "/healthz": 200, "/readyz": 200, "/nowhere": 404} {
			res, err := noRedirect.Get(ts.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != want {
				t.Errorf("GET %s = %d, want %d", path, res.StatusCode, want)
			}
		}
		// A POST without CSRF token is refused before any handler runs.
		res, err := http.Post(ts.URL+"/fake", "application/x-www-form-urlencoded", strings.NewReader("a=b"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("POST without CSRF = %d, want 403", res.StatusCode)
		}
	})
}

func TestGracefulShutdownFinishesRequestsInFlight(t *testing.T) {
	r := &rec{}
	entered, release := make(chan struct{}), make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.Write([]byte("finished"))
	})
	s, err := build(t, store.SQLite, r.mod("slow", kernel.Parts{Routes: []kernel.Route{{Method: "GET", Pattern: "/slow", Handler: slow}}}))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	got := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- string(b)
	}()
	<-entered
	cancel() // shutdown begins with the request in flight
	close(release)
	if body := <-got; body != "finished" {
		t.Fatalf("request in flight got %q", body)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestSecurityHeaders(t *testing.T) {
	s, err := build(t, store.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	h := rec.Header()
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	for _, k := range []string{"Referrer-Policy", "X-Content-Type-Options", "X-Request-Id"} {
		if h.Get(k) == "" {
			t.Errorf("missing %s", k)
		}
	}
	if h.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent over plain HTTP")
	}
}
