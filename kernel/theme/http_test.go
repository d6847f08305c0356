package theme_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"parvis.org/parvis/kernel/audit"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
	_ "parvis.org/parvis/kernel/theme"
)

// These tests run the real identity and audit parts: agents are made by kernel.auth and
// signed in with a real session, and changes land in kernel.audit's hash chain.

// agent makes an agent of org holding perms and returns a client signed in as them.
func agent(t *testing.T, s *servertest.Server, org int64, email string, perms ...string) *servertest.Client {
	t.Helper()
	a := s.NewAgentWith(auth.NewAgent{OrgID: org, Email: email, Name: "Camille " + strings.Split(email, "@")[0], Password: servertest.Password, Perms: perms})
	return s.ClientAs(a)
}

func auditLog(t *testing.T, s *servertest.Server) *audit.Log {
	t.Helper()
	for _, in := range s.Modules {
		if m, ok := in.Module.(*audit.Module); ok {
			return m.Log()
		}
	}
	t.Fatal("kernel.audit is not compiled in")
	return nil
}

// auditRows lists the theme changes recorded, oldest first: "org actor id before after".
func auditRows(t *testing.T, s *servertest.Server) []string {
	t.Helper()
	p, err := auditLog(t, s).List(context.Background(), audit.Filter{AllOrgs: true, Action: "kernel.theme.update", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(p.Entries) - 1; i >= 0; i-- {
		e := p.Entries[i]
		str := func(s *string) string {
			if s == nil {
				return "-"
			}
			return *s
		}
		out = append(out, strings.Join([]string{strconv.FormatInt(e.OrgID, 10), e.Actor, e.ResourceType + "/" + e.ResourceID, str(e.Before), str(e.After)}, " "))
	}
	return out
}

var themeLink = regexp.MustCompile(`<link rel="stylesheet" href="(/theme\.css\?o=(\d+)&amp;v=([0-9a-f]+))">`)

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

func TestThemeChangeReachesThemeCSS(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			s := servertest.New(t, d, servertest.Options{})
			anon := s.Client()

			css := anon.Get("/theme.css")
			if css.Status != 200 || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") {
				t.Fatalf("GET /theme.css = %d %s", css.Status, css.Header.Get("Content-Type"))
			}
			mustContain(t, "default theme.css", css.Body, "--pv-primary: #0b5c68;")
			etag := css.Header.Get("ETag")
			if etag == "" || css.Header.Get("Cache-Control") != "no-cache" {
				t.Fatalf("ETag %q, Cache-Control %q", etag, css.Header.Get("Cache-Control"))
			}
			req, _ := http.NewRequest("GET", s.URL+"/theme.css", nil)
			req.Header.Set("If-None-Match", etag)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusNotModified {
				t.Fatalf("conditional GET = %d, want 304", res.StatusCode)
			}
			home := anon.Get("/")
			m := themeLink.FindStringSubmatch(home.Body)
			if m == nil || m[2] != "1" {
				t.Fatalf("home page links no theme stylesheet of organisation 1:\n%s", home.Body)
			}
			oldLink := strings.ReplaceAll(m[1], "&amp;", "&")

			if org := s.DefaultOrg(); org != 1 {
				t.Fatalf("default organisation %d: public pages wear organisation 1's theme", org)
			}
			admin := agent(t, s, 1, "editor@example.org", "kernel.theme.edit")
			form := admin.Get("/admin/theme")
			if form.Status != 200 {
				t.Fatalf("GET /admin/theme = %d", form.Status)
			}
			mustContain(t, "theme form", form.Body, `value="Parvis"`, `value="#0b5c68"`, `href="/theme.css?preview=0b5c68"`, "7.65:1")
			r := admin.Post("/admin/theme", url.Values{"name": {"Mairie de Saint-Aubin"}, "logo_url": {"/logo.png"}, "primary": {"#5A2D82"}})
			if r.Status != http.StatusSeeOther || r.Location != "/admin/theme?saved=1" {
				t.Fatalf("POST /admin/theme = %d → %q\n%s", r.Status, r.Location, r.Body)
			}
			mustContain(t, "saved page", admin.Get(r.Location).Body, "role=\"status\"", `value="#5a2d82"`)

			css2 := anon.Get("/theme.css")
			mustContain(t, "new theme.css", css2.Body, "--pv-primary: #5a2d82;")
			if css2.Header.Get("ETag") == etag {
				t.Error("the ETag did not change with the theme")
			}
			home2 := anon.Get("/")
			mustContain(t, "home page", home2.Body, "<title>", "Mairie de Saint-Aubin</title>", `<span class="pv-brand__name">Mairie de Saint-Aubin</span>`, `<img class="pv-brand__logo" src="/logo.png" alt="">`)
			m2 := themeLink.FindStringSubmatch(home2.Body)
			if m2 == nil || m2[3] == m[3] {
				t.Fatalf("the stylesheet URL did not change: %v then %v", m, m2)
			}
			versioned := anon.Get(strings.ReplaceAll(m2[1], "&amp;", "&"))
			if versioned.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || !strings.Contains(versioned.Body, "#5a2d82") {
				t.Errorf("versioned stylesheet: %q\n%s", versioned.Header.Get("Cache-Control"), versioned.Body)
			}
			if stale := anon.Get(oldLink); stale.Header.Get("Cache-Control") != "no-cache" {
				t.Errorf("an outdated version is cached for good: %q", stale.Header.Get("Cache-Control"))
			}

			// Another organisation's change stays with it.
			org2 := s.NewOrg("Commune voisine")
			other := agent(t, s, org2, "voisin@example.org", "kernel.theme.edit")
			if r := other.Post("/admin/theme", url.Values{"name": {"Commune voisine"}, "primary": {"#004d00"}}); r.Status != http.StatusSeeOther {
				t.Fatalf("org 2 POST = %d", r.Status)
			}
			mustContain(t, "org 1 stylesheet", anon.Get("/theme.css").Body, "#5a2d82")
			o2 := strconv.FormatInt(org2, 10)
			mustContain(t, "org 2 stylesheet", anon.Get("/theme.css?o="+o2).Body, "#004d00")
			mustContain(t, "org 2 back office", other.Get("/admin/theme").Body, `value="Commune voisine"`, "theme.css?o="+o2+"&amp;v=")
			mustContain(t, "org 1 back office", admin.Get("/admin/theme").Body, `value="Mairie de Saint-Aubin"`)

			got := auditRows(t, s)
			if len(got) != 2 ||
				got[0] != `1 editor@example.org theme/1 - {"logo_url":"/logo.png","name":"Mairie de Saint-Aubin","primary":"#5a2d82"}` ||
				got[1] != o2+` voisin@example.org theme/`+o2+` - {"name":"Commune voisine","primary":"#004d00"}` {
				t.Fatalf("audit entries:\n%s", strings.Join(got, "\n"))
			}
			if r := admin.Post("/admin/theme", url.Values{"name": {"Saint-Aubin"}, "primary": {"#5a2d82"}}); r.Status != http.StatusSeeOther {
				t.Fatalf("second POST = %d", r.Status)
			}
			if got := auditRows(t, s); len(got) != 3 || got[2] != `1 editor@example.org theme/1 {"logo_url":"/logo.png","name":"Mairie de Saint-Aubin","primary":"#5a2d82"} {"name":"Saint-Aubin","primary":"#5a2d82"}` {
				t.Fatalf("audit of an update lacks before and after:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

func TestBadInputShowsErrorsAndKeepsAnswers(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	c := agent(t, s, s.DefaultOrg(), "editor@example.org", "kernel.theme.edit")
	for _, tc := range []struct {
		name    string
		form    url.Values
		field   string
		message string
	}{
		{"grey too light", url.Values{"name": {"Ma ville"}, "logo_url": {"https://example.org/logo.svg"}, "primary": {"#777777"}},
			"primary", "Cette couleur n&#39;a qu&#39;un contraste de 4.47:1 avec le blanc"},
		{"not a colour", url.Values{"name": {"Ma ville"}, "logo_url": {"https://example.org/logo.svg"}, "primary": {"bleu"}},
			"primary", "Saisissez la couleur au format #rrggbb"},
		{"no name", url.Values{"name": {"  "}, "logo_url": {"https://example.org/logo.svg"}, "primary": {"#000000"}},
			"name", "Ce champ est obligatoire"},
		{"http logo", url.Values{"name": {"Ma ville"}, "logo_url": {"http://example.org/logo.svg"}, "primary": {"#000000"}},
			"logo_url", "Saisissez une adresse en https://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Post("/admin/theme", tc.form)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", r.Status)
			}
			mustContain(t, "page", r.Body, `class="pv-error-summary"`, `<a href="#f-`+tc.field+`">`, tc.message,
				`id="f-`+tc.field+`-error"`, `aria-invalid="true"`, "<title>Erreur :")
			for k, v := range tc.form {
				if k != "csrf" && strings.TrimSpace(v[0]) != "" {
					mustContain(t, "kept answers", r.Body, `name="`+k+`" type="`)
					mustContain(t, "kept answers", r.Body, `value="`+v[0]+`"`)
				}
			}
		})
	}
	mustContain(t, "stylesheet after refusals", c.Get("/theme.css").Body, "#0b5c68")
	if got := auditRows(t, s); len(got) != 0 {
		t.Fatalf("refused changes were audited: %v", got)
	}
	// The English message names the ratio too.
	r := c.Post("/admin/theme?lang=en", url.Values{"name": {"Town"}, "primary": {"#777777"}})
	mustContain(t, "English page", r.Body, "This colour only has a contrast of 4.47:1 with white")
}

func TestPreviewDoesNotSave(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	c := agent(t, s, s.DefaultOrg(), "editor@example.org", "kernel.theme.edit")
	r := c.Post("/admin/theme", url.Values{"name": {"Essai"}, "primary": {"#003366"}, "action": {"preview"}})
	if r.Status != 200 {
		t.Fatalf("preview = %d", r.Status)
	}
	mustContain(t, "preview", r.Body, `href="/theme.css?preview=003366"`, `value="Essai"`, "pv-notice--info")
	pcss := c.Get("/theme.css?preview=003366")
	mustContain(t, "preview stylesheet", pcss.Body, ".pv-theme-preview{", "--pv-primary: #003366;")
	if bad := c.Get("/theme.css?preview=777777"); bad.Status != 400 {
		t.Errorf("preview of a failing colour = %d, want 400", bad.Status)
	}
	if bad := c.Get("/theme.css?o=abc"); bad.Status != 400 {
		t.Errorf("bad organisation = %d, want 400", bad.Status)
	}
	mustContain(t, "stylesheet after preview", c.Get("/theme.css").Body, "#0b5c68")
}

// The audit entry is written in the change's transaction: when it cannot be written, the
// change is not saved either.
func TestAuditFailureRollsBackTheChange(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			s := servertest.New(t, d, servertest.Options{})
			c := agent(t, s, s.DefaultOrg(), "editor@example.org", "kernel.theme.edit")
			// Break the audit chain's table so that Record fails inside the transaction.
			if _, err := s.DB.Write().ExecContext(context.Background(), "ALTER TABLE audit_entries RENAME TO audit_entries_away"); err != nil {
				t.Fatal(err)
			}
			r := c.Post("/admin/theme", url.Values{"name": {"Jamais"}, "primary": {"#003366"}})
			if r.Status != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500", r.Status)
			}
			var n int
			if err := s.DB.Read().QueryRowContext(context.Background(), "SELECT COUNT(*) FROM kernel_theme").Scan(&n); err != nil || n != 0 {
				t.Fatalf("theme rows after a failed audit: %d, %v", n, err)
			}
			mustContain(t, "stylesheet", c.Get("/theme.css").Body, "#0b5c68")
		})
	}
}

func TestPermissions(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	anon := s.Client()
	if r := anon.Get("/admin/theme"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/admin/login") {
		t.Errorf("anonymous GET /admin/theme = %d %s", r.Status, r.Location)
	}
	if r := anon.Get("/admin/design"); r.Status != http.StatusSeeOther {
		t.Errorf("anonymous GET /admin/design = %d", r.Status)
	}
	plain := agent(t, s, s.DefaultOrg(), "plain@example.org")
	if r := plain.Get("/admin/theme"); r.Status != http.StatusForbidden {
		t.Errorf("agent without the permission: GET /admin/theme = %d", r.Status)
	}
	if r := plain.Post("/admin/theme", url.Values{"name": {"X"}, "primary": {"#000000"}}); r.Status != http.StatusForbidden {
		t.Errorf("agent without the permission: POST /admin/theme = %d", r.Status)
	}
	if r := plain.Get("/admin/design"); r.Status != 200 {
		t.Errorf("any agent: GET /admin/design = %d", r.Status)
	}
	if _, ok := s.Perms["kernel.theme.edit"]; !ok {
		t.Error("permission kernel.theme.edit not declared")
	}
}

// csp finds what a CSP without 'unsafe-inline' would block.
var csp = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|\sstyle=|\son[a-z]+=|<style`)

func TestLayoutsWithAndWithoutAnAgent(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	anon := s.Client()
	home := anon.Get("/")
	mustContain(t, "public home", home.Body, `<html lang="fr">`, `<a class="pv-skip" href="#main">Aller au contenu</a>`,
		`<main id="main"`, `<header class="pv-header">`, `<footer class="pv-footer">`, `aria-label="Menu principal"`,
		`href="/compte/connexion"`, `<summary class="pv-menu__toggle">Menu</summary>`, `href="/?lang=en" hreflang="en" lang="en">English</a>`,
		`<span class="pv-lang__current" aria-current="true" lang="fr">Français</span>`, `<a class="pv-nav__link" href="/" aria-current="page">Accueil</a>`)
	if strings.Contains(home.Body, "/admin/logout") {
		t.Error("the public page offers an agent's logout to a visitor")
	}
	en := anon.Get("/?lang=en")
	mustContain(t, "English home", en.Body, `<html lang="en">`, "Skip to content", `href="/?lang=fr" hreflang="fr" lang="fr">Français</a>`)
	if c := en.Header.Get("Set-Cookie"); !strings.Contains(c, "parvis_lang=en") || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") {
		t.Errorf("language cookie: %q", c)
	}
	mustContain(t, "next page after choosing English", anon.Get("/").Body, `<html lang="en">`)
	mustContain(t, "other parameters kept", anon.Get("/nowhere?page=2").Body, `href="/nowhere?lang=fr&amp;page=2"`)

	plain := agent(t, s, s.DefaultOrg(), "plain@example.org")
	for _, layout := range []string{"", "?layout=public", "?layout=bare", "?errors=0"} {
		r := plain.Get("/admin/design" + layout)
		if r.Status != 200 {
			t.Fatalf("GET /admin/design%s = %d", layout, r.Status)
		}
		if m := csp.FindString(r.Body); m != "" {
			t.Errorf("/admin/design%s has %q, which the CSP blocks", layout, m)
		}
		mustContain(t, "style guide "+layout, r.Body, `<html lang="fr">`, "pv-skip", `<h1>Guide de style</h1>`,
			"pv-breadcrumbs", `aria-current="page">Guide de style</span>`, "pv-button--warning", `data-confirm="Supprimer définitivement cette demande ?"`,
			"pv-notice--warning", "pv-panel", "pv-tag--green", "pv-summary-list", `Modifier<span class="pv-visually-hidden"> Nom et prénom</span>`,
			"<caption class=\"pv-table__caption\">", `<th scope="row">PRV-2026-04812</th>`, `class="pv-table__num">31</td>`,
			`aria-label="Pagination"`, `href="?page=2" aria-current="page"`, "pv-card-list", "pv-back-link", "pv-details",
			`name="birth-day"`, `name="birth-month"`, `name="birth-year"`, `autocomplete="bday-year"`, `id="f-birth"`,
			`type="file"`, `accept="image/jpeg,image/png"`, `data-maxlength="200"`, "Vous pouvez saisir jusqu&#39;à 200 caractères.",
			`class="pv-radios pv-radios--inline"`, `<option value="11" selected>11e</option>`)
		switch layout {
		case "":
			mustContain(t, "back office", r.Body, `<body class="pv-bo">`, `action="/admin/logout"`, "Camille plain",
				`<a class="pv-side-nav__link" href="/admin/design" aria-current="page">Guide de style</a>`)
			if strings.Contains(r.Body, `href="/admin/theme"`) {
				t.Error("the menu offers the theme editor to an agent without kernel.theme.edit")
			}
		case "?layout=public":
			mustContain(t, "public layout", r.Body, `<body class="pv-public">`)
		case "?layout=bare":
			mustContain(t, "bare layout", r.Body, `<body class="pv-bare">`)
		}
		if layout == "?errors=0" {
			if strings.Contains(r.Body, "pv-error-summary") {
				t.Error("errors=0 still shows the error summary")
			}
		} else {
			mustContain(t, "errors", r.Body, `class="pv-error-summary"`, `<a href="#f-email">`, `<a href="#f-birth">`, `<a href="#f-topic">`,
				`aria-describedby="f-email-hint f-email-error"`, `value="camille.martin@"`, `value="13"`, "<title>Erreur :")
		}
	}
	editor := agent(t, s, s.DefaultOrg(), "editor@example.org", "kernel.theme.edit")
	r := editor.Get("/admin/theme")
	mustContain(t, "editor menu", r.Body, `<a class="pv-side-nav__link" href="/admin/theme" aria-current="page">Apparence</a>`)
	if m := csp.FindString(r.Body); m != "" {
		t.Errorf("/admin/theme has %q, which the CSP blocks", m)
	}
}

// TestOnChange: subscribers hear of a saved change (with its organisation), once it is
// committed, and never of a preview or a refused change.
func TestOnChange(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	var th interface {
		OnChange(func(context.Context, int64) error)
	}
	for _, in := range s.Modules {
		if m, ok := in.Module.(interface {
			OnChange(func(context.Context, int64) error)
		}); ok && in.Info.ID == "kernel.theme" {
			th = m
		}
	}
	if th == nil {
		t.Fatal("theme module not built")
	}
	var heard []int64
	th.OnChange(func(_ context.Context, org int64) error { heard = append(heard, org); return nil })
	org := s.DefaultOrg()
	c := agent(t, s, org, "editor@example.org", "kernel.theme.edit")
	tests := []struct {
		name string
		form url.Values
		want int // subscribers called so far
	}{
		{"preview", url.Values{"name": {"Essai"}, "primary": {"#003366"}, "action": {"preview"}}, 0},
		{"refused colour", url.Values{"name": {"Essai"}, "primary": {"#ffff00"}}, 0},
		{"saved", url.Values{"name": {"Essai"}, "primary": {"#003366"}}, 1},
	}
	for _, tc := range tests {
		c.Post("/admin/theme", tc.form)
		if len(heard) != tc.want {
			t.Fatalf("after %s: subscribers called %d times, want %d", tc.name, len(heard), tc.want)
		}
	}
	if heard[0] != org {
		t.Errorf("subscriber told of org %d, want %d", heard[0], org)
	}
}
