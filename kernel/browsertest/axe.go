package browsertest

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// axeSource is axe-core 4.14.1 (npm axe-core, MPL-2.0; licence beside it in axe/).
//
//go:embed axe/axe.min.js
var axeSource string

// AxeTags are the rule sets run: WCAG 2.0 and 2.1, levels A and AA (RGAA 4 follows them).
var AxeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}

// Violation is one failed axe rule with the elements that fail it.
type Violation struct {
	ID      string `json:"id"`
	Impact  string `json:"impact"`
	Help    string `json:"help"`
	HelpURL string `json:"helpUrl"`
	Nodes   []struct {
		// Target is a CSS selector path; nested arrays for frames and shadow roots.
		Target  json.RawMessage `json:"target"`
		HTML    string          `json:"html"`
		Summary string          `json:"summary"`
	} `json:"nodes"`
}

// Blocking reports whether the violation must fail a test: impact serious or critical.
func (v Violation) Blocking() bool { return v.Impact == "serious" || v.Impact == "critical" }

func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s — %s", v.ID, v.Impact, v.Help, v.HelpURL)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n    at %s: %s", n.Target, strings.ReplaceAll(n.Summary, "\n", " / "))
	}
	return b.String()
}

// Axe runs axe-core on the page loaded in the chromedp context ctx and returns every
// violation of AxeTags, whatever its impact.
//
// The script is evaluated through the DevTools protocol (Runtime.evaluate), which the
// page's Content-Security-Policy does not govern, so pages keep their strict CSP
// (no inline or foreign scripts) while being checked.
func Axe(ctx context.Context) ([]Violation, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.axe === "object"`))
	if err != nil {
		return nil, fmt.Errorf("axe: %w", err)
	}
	if !loaded {
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](axeSource)); err != nil {
			return nil, fmt.Errorf("axe: inject axe-core: %w", err)
		}
	}
	tags, _ := json.Marshal(AxeTags)
	js := `axe.run(document, {runOnly: {type: "tag", values: ` + string(tags) + `}, resultTypes: ["violations"]})
		.then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
			nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary}))})))`
	vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]Violation](js, chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, fmt.Errorf("axe: run: %w", err)
	}
	return vs, nil
}

// RunAxe runs axe-core on the page loaded in ctx and fails t on every serious or critical
// violation, printing each rule with the elements at fault; lesser ones are only logged.
func RunAxe(t testing.TB, ctx context.Context) {
	t.Helper()
	vs, err := Axe(ctx)
	if err != nil {
		t.Fatalf("%v", err)
	}
	url, _ := chromedp.Run(ctx, chromedp.Location())
	for _, v := range vs {
		if v.Blocking() {
			t.Errorf("accessibility violation on %s: %s", url, v)
		} else {
			t.Logf("accessibility warning on %s: %s", url, v)
		}
	}
}

// Axe runs RunAxe on the page shown.
func (b *Browser) Axe() {
	b.T.Helper()
	RunAxe(b.T, b.ctx)
}
