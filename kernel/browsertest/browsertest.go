// Package browsertest drives Debian's headless Chromium from tests with chromedp, so the
// pages Parvis serves are checked the way a person meets them: real layout, real forms,
// real cookies, and axe-core for accessibility.
//
// A test that needs the browser calls New; when Chromium is not installed the test is
// skipped with a one-line reason, unless PARVIS_TEST_REQUIRE_ALL=1 (set by CI), which
// turns every such skip into a failure so that CI cannot go green by testing nothing.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// RequireAllEnv names the variable that makes missing test dependencies (Chromium,
// PostgreSQL) fail the test instead of skipping it.
const RequireAllEnv = "PARVIS_TEST_REQUIRE_ALL"

// ChromiumEnv names the variable giving the Chromium binary; /usr/bin/chromium otherwise.
const ChromiumEnv = "PARVIS_TEST_CHROMIUM"

// ArtefactsEnv names a folder where screenshots are kept after the test (one sub-folder
// per test); without it they go to the test's temporary folder.
const ArtefactsEnv = "PARVIS_TEST_ARTEFACTS"

// Timeout bounds one browser step, so a page that never loads fails the test instead of
// hanging the suite; it is generous because CI runs under -race on two cores.
const Timeout = 60 * time.Second

// Phone and Desktop are the viewports pages are checked at.
var (
	Phone   = Viewport{Width: 375, Height: 812, Mobile: true}
	Desktop = Viewport{Width: 1280, Height: 900}
)

// Viewport is a window size in CSS pixels.
type Viewport struct {
	Width, Height int64
	Mobile        bool
}

// SkipOrFail skips the test with reason, or fails it when PARVIS_TEST_REQUIRE_ALL=1.
// Other test helpers (storetest for PostgreSQL) follow the same rule.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if RequireAll() {
		t.Fatalf("%s (%s=1: required dependencies must be present)", reason, RequireAllEnv)
		return
	}
	t.Skip(reason)
}

// RequireAll reports whether missing test dependencies must fail the tests.
func RequireAll() bool {
	v := os.Getenv(RequireAllEnv)
	return v != "" && v != "0" && v != "false"
}

// ChromiumPath finds the Chromium binary: $PARVIS_TEST_CHROMIUM, /usr/bin/chromium, or
// chromium / chromium-browser on the PATH.
func ChromiumPath() (string, error) {
	if p := os.Getenv(ChromiumEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", ChromiumEnv, p, err)
		}
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("chromium not found (apt-get install chromium, or set " + ChromiumEnv + ")")
}

// Browser is one headless Chromium with one tab, owned by a test and closed with it.
type Browser struct {
	T testing.TB
	// Base is prepended to paths starting with "/" in Go.
	Base string
	ctx  context.Context
}

// New starts Chromium for t (skipping or failing as SkipOrFail says when it is absent).
// Each Browser is its own process with its own profile, so cookies never leak between
// tests.
func New(t testing.TB) *Browser {
	t.Helper()
	path, err := ChromiumPath()
	if err != nil {
		SkipOrFail(t, "browser test: %v", err)
	}
	// Created before the browser's cleanup is registered, so it is removed after Chromium exits.
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		// The machine has no network beyond loopback: stop Chromium from trying.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(int(Desktop.Width), int(Desktop.Height)),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run binds Chromium's life to its context: it must carry no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browser test: start %s: %v", path, err)
	}
	b := &Browser{T: t, ctx: ctx}
	// Registered after the browser's cleanup, so it runs first, while the tab is still open.
	t.Cleanup(func() {
		if t.Failed() {
			b.shot("failure")
		}
	})
	return b
}

// Context is the chromedp context of the tab, for actions the helpers do not cover.
func (b *Browser) Context() context.Context { return b.ctx }

// Run runs chromedp actions on the tab, failing the test on error.
func (b *Browser) Run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.T.Fatalf("browser: %s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression in the page and decodes its value.
func Eval[T any](b *Browser, js string) T {
	b.T.Helper()
	return eval[T](b, "evaluate "+js, js)
}

func eval[T any](b *Browser, what, js string) T {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.T.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// URL resolves path against Base.
func (b *Browser) URL(path string) string {
	if strings.HasPrefix(path, "/") {
		return strings.TrimRight(b.Base, "/") + path
	}
	return path
}

// Go loads path (or an absolute URL), waits for the page to load and returns the HTTP
// status of the document (after redirects).
func (b *Browser) Go(path string) int {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, Timeout)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.NavigateResponse(b.URL(path)))
	if err != nil {
		b.T.Fatalf("browser: go to %s: %v", path, err)
	}
	if res == nil {
		return 0
	}
	return int(res.Status)
}

// Fill types value into the text field or textarea matched by the CSS selector, replacing
// what it held.
func (b *Browser) Fill(sel, value string) {
	b.T.Helper()
	clear := fmt.Sprintf("document.querySelector(%q).value = ''", sel)
	b.Run("fill "+sel,
		chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](clear),
		chromedp.SendKeys(chromedp.CSS(sel), value))
}

// Select chooses the option with this value in the <select> matched by sel.
func (b *Browser) Select(sel, value string) {
	b.T.Helper()
	b.Run("select "+sel, chromedp.SetValue(chromedp.CSS(sel), value))
}

// Click clicks the element matched by sel, without waiting for any navigation.
func (b *Browser) Click(sel string) {
	b.T.Helper()
	b.Run("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// Submit clicks the link or button matched by sel and waits for the page it leads to
// to load (a form post answered by a redirect included).
func (b *Browser) Submit(sel string) {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, Timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))); err != nil {
		b.T.Fatalf("browser: click %s and wait for the next page: %v", sel, err)
	}
}

// SubmitForm clicks the submit button of the form holding the field matched by fieldSel,
// as a person does after filling it in, and waits for the next page to load.
func (b *Browser) SubmitForm(fieldSel string) {
	b.T.Helper()
	button := chromedp.JSPath(fmt.Sprintf(`document.querySelector(%q).form.querySelector("button[type=submit], input[type=submit], button:not([type])")`, fieldSel))
	ctx, cancel := context.WithTimeout(b.ctx, Timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(button))); err != nil {
		b.T.Fatalf("browser: submit the form of %s: %v", fieldSel, err)
	}
}

// Text is the visible text of the first element matched by sel (waiting for it).
func (b *Browser) Text(sel string) string {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, Timeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.T.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// Has reports whether an element matches sel now (no waiting).
func (b *Browser) Has(sel string) bool {
	b.T.Helper()
	return eval[bool](b, "look for "+sel, fmt.Sprintf("document.querySelector(%q) !== null", sel))
}

// Count is the number of elements matching sel now.
func (b *Browser) Count(sel string) int {
	b.T.Helper()
	return eval[int](b, "count "+sel, fmt.Sprintf("document.querySelectorAll(%q).length", sel))
}

// Path is the path (with query) of the page shown.
func (b *Browser) Path() string {
	b.T.Helper()
	return eval[string](b, "location", "location.pathname + location.search")
}

// Title is the document title.
func (b *Browser) Title() string {
	b.T.Helper()
	return eval[string](b, "title", "document.title")
}

// HTML is the serialized document.
func (b *Browser) HTML() string {
	b.T.Helper()
	return eval[string](b, "html", "document.documentElement.outerHTML")
}

// Viewport resizes the window; pages re-lay out at once.
func (b *Browser) Viewport(v Viewport) {
	b.T.Helper()
	var opts []chromedp.EmulateViewportOption
	if v.Mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulatePortrait)
	}
	b.Run(fmt.Sprintf("viewport %dx%d", v.Width, v.Height), chromedp.EmulateViewport(v.Width, v.Height, opts...))
}

// Screenshot saves a full-page PNG named name and returns its path: under
// $PARVIS_TEST_ARTEFACTS/<test>/ when set, else in the test's temporary folder.
func (b *Browser) Screenshot(name string) string {
	b.T.Helper()
	path, err := b.screenshot(name)
	if err != nil {
		b.T.Fatalf("browser: screenshot %s: %v", name, err)
	}
	return path
}

// shot is Screenshot for cleanups: it only logs.
func (b *Browser) shot(name string) {
	if path, err := b.screenshot(name); err != nil {
		b.T.Logf("browser: screenshot %s: %v", name, err)
	} else {
		b.T.Logf("browser: screenshot of the page at failure: %s", path)
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (b *Browser) screenshot(name string) (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, Timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "", err
	}
	dir := b.T.TempDir()
	if root := os.Getenv(ArtefactsEnv); root != "" {
		dir = filepath.Join(root, unsafeName.ReplaceAllString(b.T.Name(), "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
	}
	path := filepath.Join(dir, unsafeName.ReplaceAllString(name, "_")+".png")
	return path, os.WriteFile(path, png, 0o644)
}
