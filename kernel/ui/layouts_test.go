package ui_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/ui"
	"parvis.org/parvis/kernel/web"
)

// A page using every partial, with optional keys left out where they may be.
const allPartials = `{{define "title"}}{{.T "kernel.home.title"}}{{end}}
{{define "main"}}
<h1>{{.T "kernel.home.title"}}</h1>
{{template "breadcrumbs" (dict "V" . "Items" (list (dict "Text" "A" "Href" "/a") (dict "Text" "B")))}}
{{template "back-link" (dict "Href" "/a" "Text" "Back")}}
<form method="post" action="/x" novalidate>
{{template "error-summary" .}}
{{template "csrf" .}}
{{template "input" (dict "F" (.Field "email" "kernel.home.title" "kernel.home.intro") "Type" "email" "Autocomplete" "email" "Width" "20")}}
{{template "input" (dict "F" (.Field "password" "kernel.home.title") "Type" "password")}}
{{template "input" (dict "F" (.Field "plain" "kernel.home.title"))}}
{{template "textarea" (dict "F" (.Field "message" "kernel.home.title" "kernel.home.intro") "Maxlength" 100 "V" .)}}
{{template "textarea" (dict "F" (.Field "note" "kernel.home.title"))}}
{{template "select" (dict "F" (.Field "colour" "kernel.home.title") "Options" (list (dict "Value" "a" "Label" "A") (dict "Value" "b" "Label" "B")))}}
{{template "checkboxes" (dict "F" (.Field "days" "kernel.home.title" "kernel.home.intro") "Options" (list (dict "Value" "mon" "Label" "Mon" "Hint" "h") (dict "Value" "tue" "Label" "Tue")))}}
{{template "radios" (dict "F" (.Field "yes" "kernel.home.title") "Inline" true "Options" (list (dict "Value" "y" "Label" "Yes") (dict "Value" "n" "Label" "No" "Hint" "h")))}}
{{template "date-input" (dict "F" (.Field "birth" "kernel.home.title" "kernel.home.intro") "V" .)}}
{{template "file" (dict "F" (.Field "photo" "kernel.home.title") "Multiple" true)}}
{{template "button" (dict "Text" "Go")}}
{{template "button" (dict "Text" "Delete" "Kind" "warning" "Confirm" "Sure?" "Name" "action" "Value" "delete")}}
{{template "button" (dict "Text" "Start" "Href" "/start")}}
</form>
{{template "notice" (dict "Text" "n")}}
{{template "notice" (dict "Kind" "error" "Title" "T" "Text" "n" "Role" "alert")}}
{{template "panel" (dict "Title" "Sent")}}
{{template "panel" (dict "Title" "Sent" "Text" "Ref" "Ref" "X-1")}}
{{template "tag" (dict "Text" "New")}}
{{template "summary-list" (dict "Rows" (list (dict "Key" "K" "Value" "V" "Href" "/k" "Action" "Change") (dict "Key" "K2" "Value" "V2")))}}
{{template "summary-list" (dict "Title" "Card" "Rows" (list (dict "Key" "K3" "Value" "V3")))}}
{{template "table" (dict "Caption" "C" "Head" (list "a" "b") "Rows" (list (list "r1" 1) (list "r2" 2)) "Numeric" (list 1))}}
{{template "table" (dict "Caption" "Empty" "Head" (list "a"))}}
{{template "pagination" (dict "V" . "Next" "?p=2" "Pages" (list (dict "Number" 1 "Href" "?p=1" "Current" true) (dict "Number" 0) (dict "Number" 9 "Href" "?p=9")))}}
{{template "pagination" (dict "V" .)}}
{{template "details" (dict "Summary" "S" "Text" "T")}}
{{end}}`

func views(t *testing.T, chrome any) *web.Views {
	t.Helper()
	b := i18n.New()
	if err := b.Load("kernel", ui.Locales()); err != nil {
		t.Fatal(err)
	}
	a := web.NewAssets()
	if err := a.Add("kernel", ui.Static()); err != nil {
		t.Fatal(err)
	}
	v := web.NewViews(b, a, slog.New(slog.DiscardHandler), time.UTC, ui.Layouts())
	v.Lang = func(r *http.Request) string {
		if l := i18n.Supported(r.URL.Query().Get("lang")); l != "" {
			return l
		}
		return i18n.Default
	}
	v.CSRF = func(*http.Request) string { return "token" }
	if chrome != nil {
		v.Chrome = func(*http.Request) any { return chrome }
	}
	if err := v.AddPages("kernel", ui.Pages()); err != nil {
		t.Fatal(err)
	}
	if err := v.AddPages("test", fstest.MapFS{"all.html": {Data: []byte(allPartials)}}); err != nil {
		t.Fatal(err)
	}
	return v
}

var (
	idAttr      = regexp.MustCompile(`\sid="([^"]+)"`)
	describedBy = regexp.MustCompile(`aria-describedby="([^"]+)"`)
	labelFor    = regexp.MustCompile(`<label[^>]*\sfor="([^"]+)"`)
	summaryLink = regexp.MustCompile(`<a href="#([^"]+)">`)
	blockedCSP  = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|\sstyle=|\son[a-z]+=|<style`)
)

// checkPage asserts what every page must hold: its language, a skip link to main, unique
// ids, and no reference (label, hint, error, summary link) to an id that does not exist.
func checkPage(t *testing.T, body, lang string) {
	t.Helper()
	for _, want := range []string{`<html lang="` + lang + `">`, `<a class="pv-skip" href="#main">`, `<main id="main"`, "</html>"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	ids := map[string]bool{}
	for _, m := range idAttr.FindAllStringSubmatch(body, -1) {
		if ids[m[1]] {
			t.Errorf("id %q is used twice", m[1])
		}
		ids[m[1]] = true
	}
	for _, m := range describedBy.FindAllStringSubmatch(body, -1) {
		for _, id := range strings.Fields(m[1]) {
			if !ids[id] {
				t.Errorf("aria-describedby names %q, which is not on the page", id)
			}
		}
	}
	for _, m := range labelFor.FindAllStringSubmatch(body, -1) {
		if !ids[m[1]] {
			t.Errorf("a label is for %q, which is not on the page", m[1])
		}
	}
	for _, m := range summaryLink.FindAllStringSubmatch(body, -1) {
		if !ids[m[1]] {
			t.Errorf("a link goes to #%s, which is not on the page", m[1])
		}
	}
	if m := blockedCSP.FindString(body); m != "" {
		t.Errorf("page has %q, which the CSP blocks", m)
	}
}

func render(t *testing.T, v *web.Views, target string, pg web.Page) string {
	t.Helper()
	w := httptest.NewRecorder()
	v.Render(w, httptest.NewRequest("GET", target, nil), pg)
	if w.Code != pg.Status && !(pg.Status == 0 && w.Code == 200) {
		t.Fatalf("status %d:\n%s", w.Code, w.Body.String())
	}
	return w.Body.String()
}

func TestLayoutsWithAndWithoutAnAgent(t *testing.T) {
	agent := &kernel.Agent{ID: 3, OrgID: 1, Name: "Camille Martin"}
	form := web.NewForm(url.Values{"email": {"camille@"}, "password": {"secret"}, "days": {"tue"}, "yes": {"n"},
		"birth-day": {"31"}, "birth-month": {"2"}, "birth-year": {"2020"}, "message": {"hello"}, "colour": {"b"}})
	form.Fail("email", "kernel.error.required")
	form.Fail("birth", "kernel.error.too_long", "max", 3)
	form.Fail("days", "kernel.error.required")
	for _, c := range []struct {
		name, layout string
		chrome       any
		wants, bans  []string
	}{
		{"public, visitor", "public", &server.Chrome{SiteName: "Ville d'Essai"}, []string{`<body class="pv-public">`, "Ville d&#39;Essai</span>", `href="/compte/connexion"`, `class="pv-footer"`}, []string{"/admin/logout"}},
		{"public, citizen", "public", &server.Chrome{SiteName: "V", Citizen: &kernel.Citizen{ID: 1}}, []string{`href="/compte"`}, []string{"/compte/connexion"}},
		{"back office, agent", "backoffice", &server.Chrome{SiteName: "V", Agent: agent, LogoURL: "/logo.png", ThemeCSS: "/theme.css?o=1&v=abc",
			Menu: []server.MenuLink{{Title: "kernel.admin_home.title", Path: "/admin/"}, {Title: "kernel.home.title", Path: "/admin/x", Current: true}}},
			[]string{`<body class="pv-bo">`, `action="/admin/logout"`, `<input type="hidden" name="csrf" value="token">`, "Camille Martin",
				`<img class="pv-brand__logo" src="/logo.png" alt="">`, `<link rel="stylesheet" href="/theme.css?o=1&amp;v=abc">`,
				`<a class="pv-side-nav__link" href="/admin/x" aria-current="page">`, `<summary class="pv-menu__toggle">`}, nil},
		{"back office, no agent", "backoffice", &server.Chrome{SiteName: "V"}, []string{`<body class="pv-bo">`}, []string{"/admin/logout", "pv-side-nav"}},
		{"bare", "bare", &server.Chrome{SiteName: "V"}, []string{`<body class="pv-bare">`}, []string{"pv-navbar"}},
		{"no chrome at all", "public", nil, []string{`<body class="pv-public">`}, []string{"theme.css"}},
	} {
		for _, lang := range []string{"fr", "en"} {
			t.Run(c.name+"/"+lang, func(t *testing.T) {
				v := views(t, c.chrome)
				body := render(t, v, "/page?lang="+lang, web.Page{Name: "test/all.html", Layout: c.layout, Status: 400, Form: form, Title: "kernel.home.title"})
				checkPage(t, body, lang)
				for _, w := range c.wants {
					if !strings.Contains(body, w) {
						t.Errorf("page lacks %q", w)
					}
				}
				for _, b := range c.bans {
					if strings.Contains(body, b) {
						t.Errorf("page has %q", b)
					}
				}
				other := map[string]string{"fr": "en", "en": "fr"}[lang]
				for _, w := range []string{
					`<a href="/page?lang=` + other + `" hreflang="` + other + `"`,
					`<a href="#f-email">`, `<a href="#f-birth">`, `<a href="#f-days">`,
					`id="f-birth" name="birth-day"`, `name="birth-month" type="text" inputmode="numeric" value="2"`,
					`aria-describedby="f-email-hint f-email-error"`, `value="camille@"`, `name="password" type="password" value=""`,
					`value="tue" checked`, `value="n" checked`, `<option value="b" selected>`,
					`data-confirm="Sure?"`, `<a class="pv-button" href="/start">`, `<a href="?p=1" aria-current="page"`,
					`<span aria-current="page">B</span>`, `<th scope="row">r1</th><td class="pv-table__num">1</td>`,
				} {
					if !strings.Contains(body, w) {
						t.Errorf("page lacks %q", w)
					}
				}
				if strings.Contains(body, "secret") {
					t.Error("a password was echoed back")
				}
			})
		}
	}
}

// The kernel's own pages render in each layout, without a form.
func TestKernelPages(t *testing.T) {
	v := views(t, &server.Chrome{SiteName: "V", Agent: &kernel.Agent{Name: "A"}})
	for _, pg := range []web.Page{
		{Name: "kernel/home.html"},
		{Name: "kernel/admin_home.html", Layout: "backoffice"},
		{Name: "kernel/error.html", Layout: "bare", Status: 404, Title: "kernel.error.not_found", Data: struct{ Message, Back string }{"m", "/"}},
	} {
		body := render(t, v, "/", pg)
		checkPage(t, body, "fr")
		if strings.Contains(body, "Erreur :") {
			t.Errorf("%s: error prefix in the title of a page without errors", pg.Name)
		}
	}
}

// TestExecutePartial: a module's partial runs alone, with the kernel's field partials and
// escaping; pages' blocks, unknown partials and unknown modules are refused.
func TestExecutePartial(t *testing.T) {
	v := views(t, nil)
	mod := fstest.MapFS{
		"page.html":          {Data: []byte(`{{define "title"}}T{{end}}{{define "main"}}M{{end}}`)},
		"partials/card.html": {Data: []byte(`{{define "card"}}<div class="card">{{.Text}}{{template "details" (dict "Summary" .Text "Text" "x")}}</div>{{end}}`)},
	}
	if err := v.AddPages("cards", mod); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := v.ExecutePartial(&b, "cards", "card", map[string]any{"Text": `<script>alert(1)</script>`}); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.HasPrefix(got, `<div class="card">&lt;script&gt;`) || strings.Contains(got, "<script>") || !strings.Contains(got, "<details") {
		t.Errorf("partial rendered as %q", got)
	}
	for _, tc := range []struct{ module, name string }{{"cards", "nope"}, {"cards", "page.html:main"}, {"nobody", "card"}} {
		if err := v.ExecutePartial(&b, tc.module, tc.name, nil); err == nil {
			t.Errorf("ExecutePartial(%s, %s): no error", tc.module, tc.name)
		}
	}
}
