// Package servertest starts a whole Parvis (every registered module) on a fresh database
// behind an httptest server, and gives tests a browser-like client: a cookie jar, CSRF
// tokens picked from forms, redirects not followed so tests can assert them.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

// Server is a running test instance.
type Server struct {
	*server.Server
	URL string
	T   testing.TB
	ts  *httptest.Server
}

// Options for New.
type Options struct {
	Clock kernel.Clock
	// Env adds PARVIS_* settings (e.g. PARVIS_SMTP).
	Env []string
	// Start runs the modules' background work (jobs); off by default for speed.
	Start bool
	// Modules builds only these modules (a binary without some module); nil: every
	// registered one.
	Modules []kernel.Info
}

// New starts Parvis on a fresh database of dialect d (skipping PostgreSQL when not set).
func New(t testing.TB, d store.Dialect, opt Options) *Server {
	t.Helper()
	dsn := storetest.URL(t, d)
	env := append([]string{"PARVIS_DATABASE=" + dsn, "PARVIS_DATA=" + t.TempDir(), "PARVIS_DEMO=false"}, opt.Env...)
	cfg, _, err := config.Load(env, nil, io.Discard)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	level := slog.LevelWarn
	if os.Getenv("PARVIS_TEST_VERBOSE") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	ctx := context.Background()
	s, err := server.Build(ctx, cfg, log, server.Options{Clock: opt.Clock, Modules: opt.Modules})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if opt.Start {
		if err := s.Start(ctx); err != nil {
			t.Fatalf("start: %v", err)
		}
	}
	ts := httptest.NewServer(s.Handler)
	cfg.BaseURL = ts.URL
	t.Cleanup(func() {
		ts.Close()
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(cctx)
	})
	return &Server{Server: s, URL: ts.URL, T: t, ts: ts}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Client is a browser-like client.
type Client struct {
	*http.Client
	s    *Server
	csrf string
}

// Client returns a new client with an empty cookie jar.
func (s *Server) Client() *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{s: s, Client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Response is a read response.
type Response struct {
	Status   int
	Body     string
	Header   http.Header
	Location string
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// Get fetches path and remembers the page's CSRF token.
func (c *Client) Get(path string) *Response {
	c.s.T.Helper()
	return c.Do(http.MethodGet, path, nil, "")
}

// Post posts form values to path with the CSRF token of the last page fetched (fetching
// path first if no token is known yet).
func (c *Client) Post(path string, form url.Values) *Response {
	c.s.T.Helper()
	if c.csrf == "" {
		c.Get(path)
	}
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", c.csrf)
	}
	return c.Do(http.MethodPost, path, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
}

// Do sends a request with the same-origin headers a browser sends.
func (c *Client) Do(method, path string, body io.Reader, ctype string) *Response {
	c.s.T.Helper()
	req, err := http.NewRequest(method, c.s.URL+path, body)
	if err != nil {
		c.s.T.Fatalf("%s %s: %v", method, path, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", c.s.URL)
	res, err := c.Client.Do(req)
	if err != nil {
		c.s.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := &Response{Status: res.StatusCode, Body: string(b), Header: res.Header, Location: res.Header.Get("Location")}
	if m := csrfRe.FindStringSubmatch(r.Body); m != nil {
		c.csrf = m[1]
	}
	return r
}
