package browsertest_test

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"parvis.org/parvis/kernel/browsertest"
)

// The same policy Parvis sends: no inline script, nothing from elsewhere.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; frame-ancestors 'none'"

const good = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Good</title></head>
<body><main><h1>Sign in</h1>
<form method="post" action="/hello">
<label for="name">Your name</label>
<input id="name" name="name" type="text" autocomplete="name" value="prefilled">
<label for="lang">Language</label>
<select id="lang" name="lang"><option value="fr">Français</option><option value="en">English</option></select>
<button type="submit">Send</button>
</form>
<script>document.body.dataset.inline = "ran"</script>
</main></body></html>`

const bad = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bad</title></head>
<body><main><h1>Bad</h1>
<img src="/pixel.png">
<input name="nolabel" type="text">
</main></body></html>`

func site(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", csp)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, body)
		}
	}
	mux.HandleFunc("GET /good", page(good))
	mux.HandleFunc("GET /bad", page(bad))
	mux.HandleFunc("POST /hello", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "who", Value: url.QueryEscape(r.FormValue("lang") + ":" + r.FormValue("name")), Path: "/"})
		http.Redirect(w, r, "/greet", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /greet", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("who")
		if err != nil {
			http.Error(w, "no cookie", http.StatusBadRequest)
			return
		}
		v, _ := url.QueryUnescape(c.Value)
		page(`<!doctype html><html lang="en"><head><title>Hi</title></head><body><main><h1 id="hi">Hello `+html.EscapeString(v)+`</h1></main></body></html>`)(w, r)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func TestAxeUnderStrictCSP(t *testing.T) {
	b := browsertest.New(t)
	b.Base = site(t).URL

	if got := b.Go("/good"); got != http.StatusOK {
		t.Fatalf("status %d", got)
	}
	// The page's own inline script must have been blocked: the CSP is in force, so axe
	// running below proves injection through DevTools is not subject to it.
	if b.Has("body[data-inline]") {
		t.Fatal("inline script ran: the test page's CSP is not applied, the check below proves nothing")
	}
	vs, err := browsertest.Axe(b.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Blocking() {
			t.Errorf("good page has a blocking violation: %s", v)
		}
	}
	b.Axe()

	b.Go("/bad")
	vs, err = browsertest.Axe(b.Context())
	if err != nil {
		t.Fatal(err)
	}
	var blocking []string
	for _, v := range vs {
		if v.Blocking() {
			blocking = append(blocking, v.ID)
			if len(v.Nodes) == 0 || len(v.Nodes[0].Target) == 0 {
				t.Errorf("violation %s names no element", v.ID)
			}
		}
	}
	for _, want := range []string{"image-alt", "label"} {
		if !slices.Contains(blocking, want) {
			t.Errorf("axe did not report %s on the bad page; blocking: %v", want, blocking)
		}
	}
}

func TestFormsCookiesViewportScreenshot(t *testing.T) {
	b := browsertest.New(t)
	b.Base = site(t).URL
	b.Go("/good")
	b.Fill("#name", "Ana Lúcia")
	b.Select("#lang", "en")
	b.Submit("button[type=submit]")
	if p := b.Path(); p != "/greet" {
		t.Fatalf("after submit at %s, want /greet", p)
	}
	b.Go("/good")
	b.Fill("#name", "Ana Lúcia")
	b.Select("#lang", "en")
	b.SubmitForm("#name")
	if p := b.Path(); p != "/greet" {
		t.Fatalf("after submit at %s, want /greet", p)
	}
	if got := b.Text("#hi"); got != "Hello en:Ana Lúcia" {
		t.Errorf("greeting %q", got)
	}

	tests := []struct {
		name string
		v    browsertest.Viewport
	}{
		{"phone", browsertest.Phone},
		{"desktop", browsertest.Desktop},
	}
	for _, tc := range tests {
		b.Viewport(tc.v)
		b.Go("/good") // it has a meta viewport, which a phone honours
		if w := browsertest.Eval[int64](b, "window.innerWidth"); w != tc.v.Width {
			t.Errorf("%s: innerWidth %d, want %d", tc.name, w, tc.v.Width)
		}
		path := b.Screenshot(tc.name)
		png, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Errorf("%s: %s is not a PNG", tc.name, path)
		}
	}
}

// recorder stands in for testing.TB to see whether SkipOrFail skips or fails.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Skip(args ...any)             { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }

func TestSkipOrFail(t *testing.T) {
	tests := []struct {
		env      string
		wantFail bool
	}{
		{"", false},
		{"0", false},
		{"false", false},
		{"1", true},
		{"true", true},
	}
	for _, tc := range tests {
		t.Run("REQUIRE_ALL="+tc.env, func(t *testing.T) {
			t.Setenv(browsertest.RequireAllEnv, tc.env)
			r := &recorder{TB: t}
			browsertest.SkipOrFail(r, "chromium not found")
			if tc.wantFail {
				if r.failed == "" || r.skipped != "" {
					t.Fatalf("want a failure, got skipped=%q failed=%q", r.skipped, r.failed)
				}
				if !strings.Contains(r.failed, "chromium not found") {
					t.Errorf("failure %q does not give the reason", r.failed)
				}
			} else if r.skipped != "chromium not found" || r.failed != "" {
				t.Fatalf("want a skip with the reason, got skipped=%q failed=%q", r.skipped, r.failed)
			}
		})
	}
}
