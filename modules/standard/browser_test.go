package standard_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/browsertest"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	_ "parvis.org/parvis/modules/standard"
)

// These tests drive the standard distribution in headless Chromium: the pages a person
// meets first, checked by axe-core (WCAG 2.0/2.1 A and AA; serious or critical
// violations fail) at phone and desktop widths, and the back-office flows done through
// the real forms.

var viewports = []struct {
	name string
	v    browsertest.Viewport
}{
	{"phone", browsertest.Phone},
	{"desktop", browsertest.Desktop},
}

// checkPage loads path at every viewport, expects it to end at wantPath with status 200,
// runs axe and keeps a screenshot.
func checkPage(t *testing.T, b *browsertest.Browser, name, path, wantPath string) {
	t.Helper()
	for _, vp := range viewports {
		b.Viewport(vp.v)
		if status := b.Go(path); status != http.StatusOK {
			t.Fatalf("%s (%s): GET %s answered %d", name, vp.name, path, status)
		}
		if got := b.Path(); got != wantPath {
			t.Fatalf("%s (%s): GET %s ended at %s, want %s", name, vp.name, path, got, wantPath)
		}
		b.Axe()
		b.Screenshot(name + "-" + vp.name)
	}
}

func TestBrowserPublicAndLoginPages(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	b := browsertest.New(t)
	b.Base = s.URL

	tests := []struct{ name, path, wantPath string }{
		{"public-home", "/", "/"},
		{"login", "/admin/login", "/admin/login"},
		// An anonymous visitor asking for the back office lands on the login page.
		{"back-office-anonymous", "/admin/", "/admin/login?next=%2Fadmin%2F"},
	}
	for _, tc := range tests {
		checkPage(t, b, tc.name, tc.path, tc.wantPath)
	}
}

// TestBrowserFirstLogin is the newcomer's path: the first administrator's one-time setup
// link, choosing a password, signing in, and the back-office home.
func TestBrowserFirstLogin(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	b := browsertest.New(t)
	b.Base = s.URL

	const email, password = "maire@example.org", "un mot de passe bien long"
	link := adminSetupLink(t, s, email)
	setUpAccount(t, b, link, "Camille Martin", password)
	// The link is single-use.
	if status := b.Go(link); status == http.StatusOK {
		t.Errorf("setup link still answers 200 after use")
	}

	login(t, b, email, "wrong password, long enough")
	if got := b.Path(); !strings.HasPrefix(got, "/admin/login") {
		t.Fatalf("a wrong password led to %s", got)
	}
	if !b.Has(".pv-error-summary") {
		t.Errorf("a wrong password shows no error summary")
	}
	b.Axe() // the login page with its error summary

	login(t, b, email, password)
	if got := b.Path(); got != "/admin/" {
		t.Fatalf("after login at %s, want /admin/", got)
	}
	checkPage(t, b, "back-office-home", "/admin/", "/admin/")

	// Two-step verification turned on: the recovery codes page, then the settings page with
	// its two forms, both accessible.
	if status := b.Go("/admin/account/totp"); status != http.StatusOK {
		t.Fatalf("two-step verification page: %d", status)
	}
	b.Axe()
	code, err := totp.GenerateCode(b.Text("#totp-secret"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.Fill("#f-code", code)
	b.SubmitForm("#f-code")
	if n := b.Count("main li code"); n != 10 {
		t.Fatalf("%d recovery codes shown, want 10", n)
	}
	b.Axe()
	b.Go("/admin/account/totp")
	b.Axe()
}

// TestBrowserAgentWithRole: an administrator creates a unit, a role granting one
// permission and an agent holding that role in that unit, all through the forms; the agent
// sets up its account from the link shown once, signs in, and reaches what the role
// grants and nothing else.
func TestBrowserAgentWithRole(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	admin := browsertest.New(t)
	admin.Base = s.URL
	const adminEmail, password = "maire@example.org", "un mot de passe bien long"
	setUpAccount(t, admin, adminSetupLink(t, s, adminEmail), "Camille Martin", password)
	login(t, admin, adminEmail, password)

	// A unit.
	checkPage(t, admin, "unit-new", "/admin/units/new", "/admin/units/new")
	admin.Fill(`input[name="name"]`, "Mairie du 1er")
	admin.SubmitForm(`input[name="name"]`)
	if got := admin.Path(); !strings.HasPrefix(got, "/admin/units") || !strings.Contains(admin.Text("main"), "Mairie du 1er") {
		t.Fatalf("after creating the unit at %s, and the list does not show it", got)
	}
	admin.Axe()

	// A role granting only the management of users, on every resource.
	checkPage(t, admin, "role-new", "/admin/roles/new", "/admin/roles/new")
	admin.Fill(`input[name="name"]`, "Gestion des comptes")
	admin.Click(`input[name="perms"][value="kernel.users.manage"]`)
	admin.SubmitForm(`input[name="name"]`)
	if got := admin.Path(); !strings.HasPrefix(got, "/admin/roles") || !strings.Contains(admin.Text("main"), "Gestion des comptes") {
		t.Fatalf("after creating the role at %s, and the list does not show it", got)
	}
	admin.Axe()

	// An agent with that role, in that unit.
	checkPage(t, admin, "user-new", "/admin/users/new", "/admin/users/new")
	const agentEmail = "agent@example.org"
	admin.Fill(`input[name="email"]`, agentEmail)
	admin.Fill(`input[name="name"]`, "Dominique Agent")
	admin.Click(checkboxLabelled(t, admin, "roles", "Gestion des comptes"))
	admin.Click(checkboxLabelled(t, admin, "units", "Mairie du 1er"))
	admin.SubmitForm(`input[name="email"]`)
	link := setupPath.FindString(admin.Text("main"))
	if link == "" {
		t.Fatalf("no setup link shown after creating the agent (at %s)", admin.Path())
	}
	admin.Axe()

	// The agent, in a browser of its own.
	agent := browsertest.New(t)
	agent.Base = s.URL
	setUpAccount(t, agent, link, "Dominique Agent", password)
	login(t, agent, agentEmail, password)
	if got := agent.Path(); got != "/admin/" {
		t.Fatalf("the agent's login led to %s", got)
	}
	agent.Axe()
	// The menu offers what the role grants, and only that.
	if !agent.Has(`nav a[href="/admin/users"]`) {
		t.Errorf("the agent's menu lacks the users page its role grants")
	}
	for _, p := range []string{"/admin/roles", "/admin/units"} {
		if agent.Has(`nav a[href="` + p + `"]`) {
			t.Errorf("the agent's menu offers %s, which its role does not grant", p)
		}
	}
	tests := []struct {
		path   string
		status int
	}{
		{"/admin/users", http.StatusOK},
		{"/admin/roles", http.StatusForbidden},
		{"/admin/units", http.StatusForbidden},
		{"/admin/roles/new", http.StatusForbidden},
	}
	for _, tc := range tests {
		if got := agent.Go(tc.path); got != tc.status {
			t.Errorf("agent GET %s: %d, want %d", tc.path, got, tc.status)
		}
		agent.Axe()
	}
}

// setUpAccount opens a one-time setup link, checks the page and chooses a password.
func setUpAccount(t *testing.T, b *browsertest.Browser, link, name, password string) {
	t.Helper()
	checkPage(t, b, "setup", link, link)
	b.Fill(`input[name="name"]`, name)
	b.Fill(`input[name="password"]`, password)
	b.Fill(`input[name="confirm"]`, password)
	b.SubmitForm(`input[name="password"]`)
	if got := b.Path(); !strings.HasPrefix(got, "/admin/login") {
		t.Fatalf("after setup at %s, want the login page", got)
	}
}

// checkboxLabelled returns a selector for the checkbox of group name whose label says text.
func checkboxLabelled(t *testing.T, b *browsertest.Browser, name, text string) string {
	t.Helper()
	v := browsertest.Eval[string](b, fmt.Sprintf(
		`([...document.querySelectorAll('input[name=%q]')].find(i => i.labels[0] && i.labels[0].textContent.includes(%q)) || {value: ""}).value`, name, text))
	if v == "" {
		t.Fatalf("no %s checkbox labelled %q", name, text)
	}
	return fmt.Sprintf(`input[name=%q][value=%q]`, name, v)
}

// login fills in and sends the login form.
func login(t *testing.T, b *browsertest.Browser, email, password string) {
	t.Helper()
	b.Go("/admin/login")
	b.Fill(`input[name="email"]`, email)
	b.Fill(`input[name="password"]`, password)
	b.SubmitForm(`input[name="password"]`)
}

var setupPath = regexp.MustCompile(`/admin/setup/[A-Za-z0-9_-]+`)

// adminSetupLink creates an administrator with `parvis admin create EMAIL`, run through the
// module command as the CLI does, and returns the path of its one-time setup link.
func adminSetupLink(t *testing.T, s *servertest.Server, email string) string {
	t.Helper()
	for _, in := range s.Modules {
		c, ok := in.Module.(kernel.Commander)
		if !ok {
			continue
		}
		for _, cmd := range c.Commands() {
			if cmd.Name != "admin create" {
				continue
			}
			var out bytes.Buffer
			if err := cmd.Run(context.Background(), []string{email}, &out); err != nil {
				t.Fatalf("admin create %s: %v", email, err)
			}
			link := setupPath.FindString(out.String())
			if link == "" {
				t.Fatalf("admin create printed no setup link: %q", out.String())
			}
			return link
		}
	}
	t.Fatal("no module provides the command `admin create`")
	return ""
}
