package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/browsertest"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	_ "parvis.org/parvis/modules/example" // contributes a catalogue entry
	"parvis.org/parvis/modules/portal"
)

// These tests drive the portal in headless Chromium: district editors building and
// publishing a page through the back-office forms, visitors reading it, shared news,
// search, and axe-core (serious or critical violations fail) on the public pages at phone
// and desktop widths and on the main back-office pages.

var viewports = []struct {
	name string
	v    browsertest.Viewport
}{
	{"phone", browsertest.Phone},
	{"desktop", browsertest.Desktop},
}

// check loads path at both widths, expects status want, runs axe and keeps a screenshot.
func check(t *testing.T, b *browsertest.Browser, name, path string, want int) {
	t.Helper()
	for _, vp := range viewports {
		b.Viewport(vp.v)
		if status := b.Go(path); status != want {
			t.Fatalf("%s (%s): GET %s answered %d, want %d", name, vp.name, path, status, want)
		}
		b.Axe()
		b.Screenshot(name + "-" + vp.name)
	}
	b.Viewport(browsertest.Desktop)
}

// signOut forgets every cookie, as a new visitor.
func signOut(b *browsertest.Browser) {
	b.T.Helper()
	b.Run("clear cookies", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{})
		return err
	}))
}

func login(t *testing.T, b *browsertest.Browser, email string) {
	t.Helper()
	signOut(b)
	b.Go("/admin/login")
	b.Fill(`input[name="email"]`, email)
	b.Fill(`input[name="password"]`, servertest.Password)
	b.SubmitForm(`input[name="password"]`)
	if p := b.Path(); strings.HasPrefix(p, "/admin/login") {
		t.Fatalf("login as %s failed: still on %s", email, p)
	}
}

// editor is an agent who edits the sites of one unit only.
func editor(s *servertest.Server, org, unit int64, email string) {
	var grants []auth.Grant
	for _, p := range []string{portal.PermPagesEdit, portal.PermNewsEdit, portal.PermMediaManage} {
		grants = append(grants, auth.Grant{Perm: p, Scope: auth.ScopeUnit, ResourceType: "site", UnitID: unit})
	}
	s.NewAgentWith(auth.NewAgent{OrgID: org, Email: email, Password: servertest.Password, Grants: grants, UnitIDs: []int64{unit}})
}

func portalOf(t *testing.T, s *servertest.Server) *portal.Module {
	t.Helper()
	for _, in := range s.Modules {
		if m, ok := in.Module.(*portal.Module); ok {
			return m
		}
	}
	t.Fatal("portal module not built")
	return nil
}

func TestBrowserPortal(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	m := portalOf(t, s)
	ctx := context.Background()
	if err := m.Demo(ctx); err != nil {
		t.Fatal(err)
	}
	org := s.DefaultOrg()
	unitA, unitB := s.NewUnit(org, 0, "Mairie du 11e"), s.NewUnit(org, 0, "Mairie du 12e")
	sites := map[string]*portal.Site{}
	for _, site := range m.Sites(ctx) {
		sites[site.Prefix] = site
	}
	city, siteA, siteB := sites[""], sites["/mairie-11"], sites["/mairie-12"]
	if city == nil || siteA == nil || siteB == nil {
		t.Fatalf("demo sites missing: %v", sites)
	}
	for _, x := range []struct {
		site *portal.Site
		unit int64
	}{{siteA, unitA}, {siteB, unitB}} {
		in := portal.SiteInput{OrgID: org, UnitID: x.unit, Name: x.site.Name, Prefix: x.site.Prefix, Lang: x.site.Lang, Contact: x.site.Contact, Legal: x.site.Legal}
		if err := m.UpdateSite(ctx, x.site.ID, in); err != nil {
			t.Fatal(err)
		}
	}
	editor(s, org, unitA, "redaction@mairie11.example.org")
	editor(s, org, unitB, "redaction@mairie12.example.org")
	s.NewAgent(org, "communication@ville.example.org", portal.PermPagesEdit, portal.PermNewsEdit, portal.PermMediaManage, portal.PermSitesManage)

	b := browsertest.New(t)
	b.Base = s.URL

	// The city's communication team writes a block shared with district A.
	login(t, b, "communication@ville.example.org")
	blocks := fmt.Sprintf("/admin/portal/sites/%d/blocks", city.ID)
	b.Go(blocks)
	b.Click(`details:has(input[name="type"][value="alert"]) > summary`)
	b.Fill(`[name="alert.block_title"]`, "Alerte ville")
	b.Fill(`[name="alert.title"]`, "Plan grand froid : gymnases ouverts la nuit")
	b.Click(fmt.Sprintf(`input[name="alert.shared"][value="%d"]`, siteA.ID))
	b.SubmitForm(`[name="alert.block_title"]`)
	check(t, b, "admin-blocks", blocks, http.StatusOK)
	blockID := browsertest.Eval[string](b, `document.querySelector("main table tbody td").textContent.trim()`)

	// District A's editor builds a page with several portlets through the forms.
	login(t, b, "redaction@mairie11.example.org")
	check(t, b, "admin-sites", "/admin/portal/", http.StatusOK)
	if body := b.Text("main"); !strings.Contains(body, siteA.Name) || strings.Contains(body, siteB.Name) {
		t.Errorf("editor A's site list shows the wrong sites:\n%s", body)
	}
	check(t, b, "admin-pages", fmt.Sprintf("/admin/portal/sites/%d/pages", siteA.ID), http.StatusOK)
	b.Fill(`input[name="title"]`, "Piscines municipales")
	b.Fill(`input[name="slug"]`, "piscines")
	b.SubmitForm(`input[name="slug"]`)
	editPath := b.Path()
	if !strings.HasPrefix(editPath, "/admin/portal/pages/") {
		t.Fatalf("creating a page led to %s", editPath)
	}
	check(t, b, "admin-page-editor", editPath, http.StatusOK)
	addPortlet := func(typ string, fields map[string]string) {
		t.Helper()
		b.Click(fmt.Sprintf(`details:has(input[name="type"][value=%q]) > summary`, typ))
		var first string
		for name, v := range fields {
			sel := fmt.Sprintf(`[name=%q]`, typ+"."+name)
			b.Fill(sel, v)
			first = sel
		}
		b.SubmitForm(first)
		if p := b.Path(); !strings.HasPrefix(p, editPath) {
			t.Fatalf("adding a %s portlet led to %s:\n%s", typ, p, b.Text("main"))
		}
	}
	addPortlet("richtext", map[string]string{"body": "Horaires des **bassins** nautiques du quartier, tarifs et cours de natation."})
	addPortlet("alert", map[string]string{"title": "Bassin fermé jeudi pour vidange"})
	addPortlet("links", map[string]string{"title": "Liens utiles", "links": "Tarifs | /mairie-11/vie-pratique"})
	addPortlet("shared", map[string]string{"block": blockID})
	// The draft is not online; its preview shows every portlet.
	signOut(b)
	if status := b.Go("/mairie-11/piscines"); status != http.StatusNotFound {
		t.Errorf("unpublished page answered %d to a visitor", status)
	}
	login(t, b, "redaction@mairie11.example.org")
	if status := b.Go(editPath + "/preview"); status != http.StatusOK {
		t.Fatalf("preview: %d", status)
	}
	for _, want := range []string{"bassins", "Bassin fermé jeudi", "Liens utiles"} {
		if !strings.Contains(b.Text("main"), want) {
			t.Errorf("preview lacks %q", want)
		}
	}
	b.Go(editPath)
	b.Submit(`button[name="action"][value="publish"]`)
	check(t, b, "admin-news", fmt.Sprintf("/admin/portal/sites/%d/news", siteA.ID), http.StatusOK)
	check(t, b, "admin-media", fmt.Sprintf("/admin/portal/sites/%d/media", siteA.ID), http.StatusOK)

	// District B's editor can neither open nor publish it.
	login(t, b, "redaction@mairie12.example.org")
	if status := b.Go(editPath); status != http.StatusNotFound {
		t.Errorf("editor B opening district A's page: %d, want 404", status)
	}
	if status := b.Go(fmt.Sprintf("/admin/portal/sites/%d/pages", siteA.ID)); status != http.StatusNotFound {
		t.Errorf("editor B opening district A's tree: %d, want 404", status)
	}

	// The city's communication team publishes a news item shared with both districts.
	login(t, b, "communication@ville.example.org")
	b.Go(fmt.Sprintf("/admin/portal/sites/%d/news", city.ID))
	b.Fill(`input[name="title"]`, "Collecte solidaire de jouets")
	b.Fill(`input[name="slug"]`, "collecte-jouets")
	b.Fill(`textarea[name="summary"]`, "Déposez vos jouets en bon état dans votre mairie d'arrondissement.")
	b.Fill(`textarea[name="body"]`, "Du 1er au 15 décembre, aux heures d'ouverture.")
	b.Click(fmt.Sprintf(`input[name="shared"][value="%d"]`, siteA.ID))
	b.Click(fmt.Sprintf(`input[name="shared"][value="%d"]`, siteB.ID))
	b.SubmitForm(`input[name="slug"]`)
	if p := b.Path(); !strings.Contains(p, "done=") {
		t.Fatalf("saving the news led to %s:\n%s", p, b.Text("main"))
	}

	// A visitor sees the page, the shared news on both districts, and finds the page.
	signOut(b)
	check(t, b, "home", "/mairie-11/", http.StatusOK)
	check(t, b, "content-page", "/mairie-11/piscines", http.StatusOK)
	for _, want := range []string{"bassins", "Bassin fermé jeudi", "Liens utiles", "Plan grand froid"} {
		if !strings.Contains(b.Text("main"), want) {
			t.Errorf("published page lacks %q", want)
		}
	}
	for _, prefix := range []string{"/mairie-11", "/mairie-12"} {
		b.Go(prefix + "/actualites")
		if !strings.Contains(b.Text("main"), "Collecte solidaire de jouets") {
			t.Errorf("shared news missing from %s/actualites", prefix)
		}
	}
	check(t, b, "news-list", "/mairie-11/actualites", http.StatusOK)
	check(t, b, "article", "/mairie-12/actualites/collecte-jouets", http.StatusOK)
	check(t, b, "search", "/mairie-11/recherche?q=piscine", http.StatusOK)
	if b.Count(`.portal-results a[href="/mairie-11/piscines"]`) != 1 {
		t.Errorf("search for 'piscine' does not find the new page:\n%s", b.Text("main"))
	}
	// The search box of the header works without JavaScript-specific help.
	b.Go("/mairie-11/")
	b.Fill("#portal-q", "bassins")
	b.SubmitForm("#portal-q")
	if !strings.Contains(b.Path(), "/mairie-11/recherche?q=bassins") || b.Count(".portal-results li") == 0 {
		t.Errorf("header search: %s", b.Path())
	}
	check(t, b, "not-found", "/mairie-11/nulle-part", http.StatusNotFound)
	check(t, b, "city-home", "/", http.StatusOK)
}
