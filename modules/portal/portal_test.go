package portal

import (
	"bytes"
	"compress/gzip"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
	_ "parvis.org/parvis/modules/example" // contributes a catalogue entry
	"parvis.org/parvis/modules/portal/portlet"
)

// plainTransport does not ask for gzip behind the test's back.
var plainTransport = &http.Transport{DisableCompression: true}

// clock is a test clock moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newClock() *clock { return &clock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)} }

func portalOf(t testing.TB, s *servertest.Server) *Module {
	t.Helper()
	for _, in := range s.Modules {
		if m, ok := in.Module.(*Module); ok {
			return m
		}
	}
	t.Fatal("portal module not built")
	return nil
}

// fixture is a city at the root and a district under /mairie-11, each with a published
// home page.
type fixture struct {
	s              *servertest.Server
	m              *Module
	city, district *Site
	clock          *clock
}

func newFixture(t *testing.T, s *servertest.Server, c *clock) *fixture {
	t.Helper()
	m := portalOf(t, s)
	ctx := context.Background()
	org := s.DefaultOrg()
	city, err := m.CreateSite(ctx, SiteInput{OrgID: org, Name: "Ville de Testville"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	district, err := m.CreateSite(ctx, SiteInput{OrgID: org, Name: "Mairie du 11e", Prefix: "/mairie-11"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{s: s, m: m, city: city, district: district, clock: c}
}

func (f *fixture) home(t *testing.T, s *Site) *Page {
	t.Helper()
	pages, err := listPages(context.Background(), f.m.db.Read(), s.ID)
	if err != nil || len(pages) == 0 {
		t.Fatalf("home of %s: %v", s.Name, err)
	}
	return pages[0]
}

func text(body string) []Placement {
	return []Placement{{Zone: "main", Type: "richtext", Config: portlet.Config{"body": body}}}
}

// publish saves a draft with a rich-text body and publishes it.
func (f *fixture) publish(t *testing.T, p *Page, title, body string) {
	t.Helper()
	ctx := context.Background()
	content := append(text(body), Placement{Zone: "aside", Type: "news", Config: portlet.Config{"limit": "5"}})
	if _, err := f.m.SaveDraft(ctx, p.ID, DraftInput{Title: title, Layout: "two", Visibility: Public, InMenu: true, Content: content}); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Publish(ctx, p.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s *servertest.Server, path string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := plainTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	var r io.Reader = res.Body
	if res.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	b, _ := io.ReadAll(r)
	return string(b)
}

// TestCacheFollowsEveryChange: a page is served from the cache until something it shows
// changes — its content, the theme, the menu, a shared news item, a scheduled publication —
// and the next anonymous request after each change shows the change.
func TestCacheFollowsEveryChange(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			c := newClock()
			s := servertest.New(t, d, servertest.Options{Clock: c})
			f := newFixture(t, s, c)
			ctx := context.Background()
			home := f.home(t, f.district)
			f.publish(t, home, "Accueil du 11e", "Bienvenue version un")
			_, err := f.m.SaveDraft(ctx, home.ID, DraftInput{Title: "Accueil du 11e", Layout: "two", Visibility: Public, InMenu: true,
				Content: append(text("Bienvenue version un"), Placement{Zone: "aside", Type: "news", Config: portlet.Config{"limit": "5"}})})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.m.Publish(ctx, home.ID, nil, nil); err != nil {
				t.Fatal(err)
			}

			// fetch returns the page and whether it came from the cache.
			fetch := func() (string, string) {
				res := get(t, s, "/mairie-11/")
				if res.StatusCode != 200 {
					t.Fatalf("GET /mairie-11/ = %d", res.StatusCode)
				}
				return body(t, res), res.Header.Get("X-Parvis-Cache")
			}
			b, src := fetch()
			if src != "miss" || !strings.Contains(b, "Bienvenue version un") {
				t.Fatalf("first request: cache %q, body lacks content", src)
			}
			if _, src := fetch(); src != "hit" {
				t.Fatalf("second request: cache %q, want hit", src)
			}

			changes := []struct {
				name   string
				change func(t *testing.T)
				want   string
			}{
				{"draft saved, not published: still the old page", func(t *testing.T) {
					if _, err := f.m.SaveDraft(ctx, home.ID, DraftInput{Title: "Accueil du 11e", Layout: "two", Visibility: Public, InMenu: true, Content: text("Brouillon secret")}); err != nil {
						t.Fatal(err)
					}
				}, "Bienvenue version un"},
				{"publish", func(t *testing.T) {
					f.publish(t, home, "Accueil du 11e", "Bienvenue version deux")
				}, "Bienvenue version deux"},
				{"theme", func(t *testing.T) {
					if err := f.m.UpdateTheme(ctx, f.district.ID, Theme{Primary: "#0f766e", Footer: "Pied de page du onzième"}); err != nil {
						t.Fatal(err)
					}
				}, "Pied de page du onzième"},
				{"organisation theme (kernel.theme)", func(t *testing.T) {
					admin := s.ClientAs(s.NewOrgAdmin(f.district.OrgID, "theme-"+string(d)+"@ville.fr"))
					res := admin.Post("/admin/theme", urlValues("name", "Ville de Testville", "primary", "#7b2d26"))
					if res.Status != http.StatusSeeOther {
						t.Fatalf("theme update: %d %s", res.Status, res.Body)
					}
				}, "#7b2d26"}, // replaced below by the stylesheet URL of the new look
				{"menu", func(t *testing.T) {
					if _, err := f.m.AddMenuLink(ctx, MenuLink{SiteID: f.district.ID, Menu: "main", Title: "Budget participatif", URL: "https://budget.example.org"}); err != nil {
						t.Fatal(err)
					}
				}, "Budget participatif"},
				{"news shared from the city", func(t *testing.T) {
					if _, err := f.m.SaveNews(ctx, f.city.ID, 0, NewsInput{Slug: "canicule", Title: "Plan canicule municipal", Published: true,
						SharedWith: []int64{f.district.ID}}); err != nil {
						t.Fatal(err)
					}
				}, "Plan canicule municipal"},
				{"shared news edited on the city site", func(t *testing.T) {
					n, err := newsBySlug(ctx, f.m.db.Read(), f.city.ID, "canicule", c.Now())
					if err != nil {
						t.Fatal(err)
					}
					if _, err := f.m.SaveNews(ctx, f.city.ID, n.ID, NewsInput{Slug: "canicule", Title: "Plan canicule renforcé", Published: true,
						PublishedAt: n.PublishedAt, SharedWith: []int64{f.district.ID}}); err != nil {
						t.Fatal(err)
					}
				}, "Plan canicule renforcé"},
				{"scheduled publication comes due", func(t *testing.T) {
					if _, err := f.m.SaveDraft(ctx, home.ID, DraftInput{Title: "Accueil du 11e", Layout: "two", Visibility: Public, InMenu: true, Content: text("Annonce programmée")}); err != nil {
						t.Fatal(err)
					}
					at := c.Now().Add(2 * time.Hour)
					if err := f.m.Publish(ctx, home.ID, &at, nil); err != nil {
						t.Fatal(err)
					}
					if b, _ := fetch(); strings.Contains(b, "Annonce programmée") {
						t.Fatal("scheduled content shown before its time")
					}
					if _, src := fetch(); src != "hit" {
						t.Fatalf("before the due time the page should be cached, got %q", src)
					}
					c.Add(2*time.Hour + time.Second)
				}, "Annonce programmée"},
			}
			for _, ch := range changes {
				ch.change(t)
				if strings.HasPrefix(ch.name, "organisation theme") {
					ch.want = strings.ReplaceAll(f.m.orgStyle(ctx, f.district.OrgID).CSSURL, "&", "&amp;")
					if !strings.Contains(ch.want, "v=") {
						t.Fatalf("no organisation stylesheet: %q", ch.want)
					}
				}
				b, _ := fetch()
				if !strings.Contains(b, ch.want) {
					t.Errorf("after %s: page lacks %q", ch.name, ch.want)
				}
				if _, src := fetch(); src != "hit" {
					t.Errorf("after %s: second request not from the cache (%q)", ch.name, src)
				}
			}
		})
	}
}

// TestCacheProtocol: gzip when accepted, identity otherwise, ETag and 304, HEAD.
func TestCacheProtocol(t *testing.T) {
	c := newClock()
	s := servertest.New(t, store.SQLite, servertest.Options{Clock: c})
	f := newFixture(t, s, c)
	f.publish(t, f.home(t, f.city), "Accueil", strings.Repeat("Bonjour la ville. ", 200))
	get(t, s, "/").Body.Close()

	plain := get(t, s, "/")
	if plain.Header.Get("Content-Encoding") != "" || !strings.Contains(body(t, plain), "Bonjour la ville.") {
		t.Fatal("identity response expected without Accept-Encoding")
	}
	gz := get(t, s, "/", "Accept-Encoding", "gzip, deflate")
	if gz.Header.Get("Content-Encoding") != "gzip" || gz.Header.Get("X-Parvis-Cache") != "hit" {
		t.Fatalf("gzip hit expected, got %q %q", gz.Header.Get("Content-Encoding"), gz.Header.Get("X-Parvis-Cache"))
	}
	if !strings.Contains(body(t, gz), "Bonjour la ville.") {
		t.Fatal("gzip body does not decode to the page")
	}
	if no := get(t, s, "/", "Accept-Encoding", "gzip;q=0"); no.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 must get identity")
	}
	etag := plain.Header.Get("ETag")
	if etag == "" || etag == gz.Header.Get("ETag") {
		t.Fatalf("ETags must exist and differ per encoding: %q %q", etag, gz.Header.Get("ETag"))
	}
	if res := get(t, s, "/", "If-None-Match", etag); res.StatusCode != 304 {
		t.Errorf("If-None-Match = %d, want 304", res.StatusCode)
	}
	f.publish(t, f.home(t, f.city), "Accueil", "Nouveau texte")
	if res := get(t, s, "/", "If-None-Match", etag); res.StatusCode != 200 || !strings.Contains(body(t, res), "Nouveau texte") {
		t.Errorf("after a change the old ETag must not match: %d", res.StatusCode)
	}
}

// TestSignedInNeverCached: a citizen or agent is never served the anonymous cache, and
// what they see is never stored in it.
func TestSignedInNeverCached(t *testing.T) {
	c := newClock()
	s := servertest.New(t, store.SQLite, servertest.Options{Clock: c})
	f := newFixture(t, s, c)
	f.publish(t, f.home(t, f.city), "Accueil", "Texte public")
	for _, who := range []struct {
		name string
		ctx  func(context.Context) context.Context
	}{
		{"citizen", func(ctx context.Context) context.Context {
			return kernel.WithCitizen(ctx, &kernel.Citizen{ID: 7, Email: "a@b.fr"})
		}},
		{"agent", func(ctx context.Context) context.Context {
			return kernel.WithAgent(ctx, &kernel.Agent{ID: 3, OrgID: 1})
		}},
	} {
		// First the signed-in person, on an empty cache, then an anonymous visitor.
		f.m.cache = newPageCache(64 << 20)
		for i := 0; i < 2; i++ {
			req := httptest.NewRequest("GET", "/", nil)
			req.Host = strings.TrimPrefix(s.URL, "http://")
			rec := httptest.NewRecorder()
			f.m.Middleware(http.HandlerFunc(f.m.serve)).ServeHTTP(rec, req.WithContext(who.ctx(req.Context())))
			if rec.Code != 200 || rec.Header().Get("X-Parvis-Cache") != "" || !strings.Contains(rec.Header().Get("Cache-Control"), "no-store") {
				t.Errorf("%s request %d: status %d, cache %q, Cache-Control %q", who.name, i, rec.Code, rec.Header().Get("X-Parvis-Cache"), rec.Header().Get("Cache-Control"))
			}
		}
		if n := f.m.cache.Len(); n != 0 {
			t.Errorf("%s: %d pages stored in the anonymous cache", who.name, n)
		}
		if res := get(t, s, "/"); res.Header.Get("X-Parvis-Cache") != "miss" {
			t.Errorf("anonymous after %s: %q, want miss", who.name, res.Header.Get("X-Parvis-Cache"))
		}
		// And a cached page is not served to a signed-in person.
		req := httptest.NewRequest("GET", "/", nil)
		req.Host = strings.TrimPrefix(s.URL, "http://")
		rec := httptest.NewRecorder()
		f.m.Middleware(http.HandlerFunc(f.m.serve)).ServeHTTP(rec, req.WithContext(who.ctx(req.Context())))
		if rec.Header().Get("X-Parvis-Cache") == "hit" {
			t.Errorf("%s served from the anonymous cache", who.name)
		}
	}
}

// TestSitesAndPaths: prefixes, hosts, unknown hosts and paths, breadcrumbs, news, feed,
// sitemap, robots, legal pages, visibility.
func TestSitesAndPaths(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			c := newClock()
			s := servertest.New(t, d, servertest.Options{Clock: c})
			f := newFixture(t, s, c)
			ctx := context.Background()
			f.publish(t, f.home(t, f.city), "Accueil de la ville", "Ville")
			f.publish(t, f.home(t, f.district), "Accueil du 11e", "Onzième")
			other, err := f.m.CreateSite(ctx, SiteInput{OrgID: f.city.OrgID, Name: "Mairie du 12e", Host: "mairie12.example.org"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.publish(t, f.home(t, other), "Accueil du 12e", "Douzième")
			p, err := f.m.CreatePage(ctx, f.district.ID, f.home(t, f.district).ID, "demarches", "Démarches")
			if err != nil {
				t.Fatal(err)
			}
			f.publish(t, p, "Démarches", "Toutes les démarches")
			child, err := f.m.CreatePage(ctx, f.district.ID, p.ID, "ecoles", "Écoles")
			if err != nil {
				t.Fatal(err)
			}
			f.publish(t, child, "Écoles", "Inscriptions scolaires")
			private, err := f.m.CreatePage(ctx, f.district.ID, p.ID, "mon-dossier", "Mon dossier")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.m.SaveDraft(ctx, private.ID, DraftInput{Title: "Mon dossier", Visibility: Citizens, Content: text("Réservé")}); err != nil {
				t.Fatal(err)
			}
			if err := f.m.Publish(ctx, private.ID, nil, nil); err != nil {
				t.Fatal(err)
			}
			draftOnly, err := f.m.CreatePage(ctx, f.district.ID, p.ID, "brouillon", "Brouillon")
			if err != nil {
				t.Fatal(err)
			}
			_ = draftOnly
			if _, err := f.m.SaveNews(ctx, f.district.ID, 0, NewsInput{Slug: "fete", Title: "Fête du quartier", Summary: "Samedi", Body: "Venez <script>alert(1)</script>**nombreux**", Published: true}); err != nil {
				t.Fatal(err)
			}

			tests := []struct {
				path, host string
				status     int
				want, not  []string
			}{
				{"/", "", 200, []string{"Ville", "Ville de Testville"}, []string{"Onzième"}},
				{"/mairie-11/", "", 200, []string{"Onzième", `href="/mairie-11/demarches"`}, nil},
				{"/mairie-11/demarches/ecoles", "", 200, []string{"Inscriptions scolaires", `aria-current="page">Écoles`, `href="/mairie-11/demarches">Démarches`, `aria-current="true"`}, nil},
				{"/mairie-11/demarches/brouillon", "", 404, []string{"Page introuvable"}, nil},
				{"/mairie-11/nulle-part", "", 404, []string{"Page introuvable"}, []string{"Onzième"}},
				{"/", "mairie12.example.org", 200, []string{"Douzième"}, []string{"Ville de Testville"}},
				{"/", "inconnu.example.org", 404, []string{"Page introuvable"}, []string{"Douzième", "Ville de Testville", "Onzième"}},
				{"/mairie-11/", "mairie12.example.org", 404, nil, []string{"Onzième"}},
				{"/mairie-11/actualites", "", 200, []string{"Fête du quartier", "flux.atom"}, nil},
				{"/mairie-11/actualites/fete", "", 200, []string{"<strong>nombreux</strong>"}, []string{"<script>alert"}},
				{"/mairie-11/actualites/flux.atom", "", 200, []string{"<feed", "Fête du quartier", "/mairie-11/actualites/fete"}, nil},
				{"/mairie-11/accessibilite", "", 200, []string{"Déclaration d&#39;accessibilité", "RGAA"}, nil},
				{"/mairie-11/mentions-legales", "", 200, []string{"Mentions légales", "Mairie du 11e"}, nil},
				{"/sitemap.xml", "", 200, []string{"/mairie-11/demarches/ecoles", "/mairie-11/actualites/fete"}, []string{"mon-dossier", "brouillon", "mairie12"}},
				{"/robots.txt", "", 200, []string{"Sitemap:", "Disallow: /admin/"}, nil},
				{"/exemple", "", 200, []string{"Bonjour"}, nil},
			}
			for _, tc := range tests {
				var res *http.Response
				if tc.host != "" {
					res = get(t, s, tc.path, "Host", tc.host)
				} else {
					res = get(t, s, tc.path)
				}
				b := body(t, res)
				if res.StatusCode != tc.status {
					t.Errorf("%s %s = %d, want %d", tc.host, tc.path, res.StatusCode, tc.status)
				}
				for _, w := range tc.want {
					if !strings.Contains(b, w) {
						t.Errorf("%s %s lacks %q", tc.host, tc.path, w)
					}
				}
				for _, n := range tc.not {
					if strings.Contains(b, n) {
						t.Errorf("%s %s shows %q", tc.host, tc.path, n)
					}
				}
			}
			res := get(t, s, "/mairie-11/demarches/mon-dossier")
			if res.StatusCode != 303 || !strings.HasPrefix(res.Header.Get("Location"), "/compte/connexion") {
				t.Errorf("citizens-only page for a visitor = %d %q, want 303 to sign-in", res.StatusCode, res.Header.Get("Location"))
			}
			res.Body.Close()
		})
	}
}

// TestSearch: accents folded, stems matched, catalogue entries of other modules, snippets
// highlighted and escaped.
func TestSearch(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			c := newClock()
			s := servertest.New(t, d, servertest.Options{Clock: c})
			f := newFixture(t, s, c)
			ctx := context.Background()
			p, err := f.m.CreatePage(ctx, f.district.ID, f.home(t, f.district).ID, "ecoles", "Écoles")
			if err != nil {
				t.Fatal(err)
			}
			f.publish(t, p, "Écoles maternelles", "Les inscriptions dans les écoles publiques <b>ouvrent</b> en mars.")
			hidden, err := f.m.CreatePage(ctx, f.district.ID, f.home(t, f.district).ID, "cache", "Caché")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.m.SaveDraft(ctx, hidden.ID, DraftInput{Title: "Écoles secrètes", Visibility: Public, Content: text("écoles")}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.m.SaveNews(ctx, f.city.ID, 0, NewsInput{Slug: "rentree", Title: "Rentrée scolaire", Summary: "Les écoles rouvrent", Published: true, SharedWith: []int64{f.district.ID}}); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				q         string
				want, not []string
			}{
				{"ECOLE", []string{"Écoles maternelles", "<mark>", "Rentrée scolaire"}, []string{"secrètes", "<b>ouvrent"}},
				{"inscription", []string{"Écoles maternelles"}, nil},
				{"exemple démonstration", []string{"Module d&#39;exemple", `href="/exemple"`}, nil},
				{"zzzz", []string{"0 résultat"}, []string{"<mark>", "portal-results"}},
			} {
				res := get(t, s, "/mairie-11/recherche?q="+strings.ReplaceAll(tc.q, " ", "+"))
				b := body(t, res)
				if res.StatusCode != 200 || res.Header.Get("X-Parvis-Cache") != "" {
					t.Errorf("search %q: %d, cache %q", tc.q, res.StatusCode, res.Header.Get("X-Parvis-Cache"))
				}
				for _, w := range tc.want {
					if !strings.Contains(b, w) {
						t.Errorf("search %q lacks %q", tc.q, w)
					}
				}
				for _, n := range tc.not {
					if strings.Contains(b, n) {
						t.Errorf("search %q shows %q", tc.q, n)
					}
				}
			}
			// The city site does not find the district's page.
			if b := body(t, get(t, s, "/recherche?q=maternelles")); strings.Contains(b, "Écoles maternelles") {
				t.Error("city search found a district page")
			}
		})
	}
}

func code(err error) errs.Code { return errs.CodeOf(err) }

// TestBadInput: each refused with a specific message and nothing changed.
func TestBadInput(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			c := newClock()
			s := servertest.New(t, d, servertest.Options{Clock: c})
			f := newFixture(t, s, c)
			ctx := context.Background()
			home := f.home(t, f.district)
			a, err := f.m.CreatePage(ctx, f.district.ID, home.ID, "a", "A")
			if err != nil {
				t.Fatal(err)
			}
			b, err := f.m.CreatePage(ctx, f.district.ID, a.ID, "b", "B")
			if err != nil {
				t.Fatal(err)
			}
			linked, err := f.m.CreatePage(ctx, f.district.ID, home.ID, "contact", "Contact")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.m.AddMenuLink(ctx, MenuLink{SiteID: f.district.ID, Menu: "footer", Title: "Nous écrire", PageID: linked.ID}); err != nil {
				t.Fatal(err)
			}
			gen := func() int64 {
				st, err := getSite(ctx, f.m.db.Read(), f.district.ID)
				if err != nil {
					t.Fatal(err)
				}
				return st.Generation
			}
			bomb := func() []byte {
				// A PNG header announcing 50000×50000 pixels: refused before decoding.
				var buf bytes.Buffer
				img := image.NewGray(image.Rect(0, 0, 1, 1))
				_ = jpeg.Encode(&buf, img, nil)
				b := buf.Bytes()
				// Patch the SOF0 frame size.
				for i := 0; i+8 < len(b); i++ {
					if b[i] == 0xFF && b[i+1] == 0xC0 {
						b[i+5], b[i+6], b[i+7], b[i+8] = 0xC3, 0x50, 0xC3, 0x50
						break
					}
				}
				return b
			}
			cases := []struct {
				name string
				do   func() error
				code errs.Code
				key  string
			}{
				{"slug collision", func() error { _, err := f.m.CreatePage(ctx, f.district.ID, home.ID, "a", "Autre A"); return err }, errs.Conflict, "portal.error.slug_taken"},
				{"bad slug", func() error { _, err := f.m.CreatePage(ctx, f.district.ID, home.ID, "Été 2027", "Été"); return err }, errs.Invalid, "portal.error.slug"},
				{"reserved slug", func() error { _, err := f.m.CreatePage(ctx, f.district.ID, home.ID, "actualites", "Actus"); return err }, errs.Invalid, "portal.error.reserved"},
				{"move under itself", func() error { return f.m.MovePage(ctx, a.ID, a.ID, 1) }, errs.Invalid, "portal.error.move_under_itself"},
				{"move under its descendant", func() error { return f.m.MovePage(ctx, a.ID, b.ID, 1) }, errs.Invalid, "portal.error.move_under_itself"},
				{"delete with children", func() error { return f.m.DeletePage(ctx, a.ID) }, errs.Conflict, "portal.error.delete_children"},
				{"delete linked from a menu", func() error { return f.m.DeletePage(ctx, linked.ID) }, errs.Conflict, "portal.error.delete_menu"},
				{"script in rich text", func() error {
					_, err := f.m.SaveDraft(ctx, a.ID, DraftInput{Title: "A", Visibility: Public, Content: text(`Bonjour <img src=x onerror="alert(1)">`)})
					return err
				}, errs.Invalid, "portal.error.unsafe_html"},
				{"javascript link", func() error {
					_, err := f.m.SaveDraft(ctx, a.ID, DraftInput{Title: "A", Visibility: Public, Content: text(`[clic](javascript:alert(1))`)})
					return err
				}, errs.Invalid, "portal.error.unsafe_html"},
				{"image without alt", func() error {
					_, err := f.m.SaveDraft(ctx, a.ID, DraftInput{Title: "A", Visibility: Public, Content: []Placement{{Zone: "main", Type: "image", Config: portlet.Config{"media": "1"}}}})
					return err
				}, errs.Invalid, "portal.error.media"},
				{"colour failing contrast", func() error { return f.m.UpdateTheme(ctx, f.district.ID, Theme{Primary: "#ffcc00"}) }, errs.Invalid, "portal.error.contrast"},
				{"malformed colour", func() error { return f.m.UpdateTheme(ctx, f.district.ID, Theme{Primary: "bleu"}) }, errs.Invalid, "portal.error.colour"},
				{"not an image nor a document", func() error {
					_, err := f.m.Upload(ctx, f.district.ID, "Script", []byte("#!/bin/sh\nrm -rf /\n"))
					return err
				}, errs.Invalid, "portal.error.file_type"},
				{"oversized", func() error {
					_, err := f.m.Upload(ctx, f.district.ID, "Énorme", make([]byte, MaxUpload+1))
					return err
				}, errs.Invalid, "portal.error.file_too_large"},
				{"decompression bomb", func() error { _, err := f.m.Upload(ctx, f.district.ID, "Bombe", bomb()); return err }, errs.Invalid, "portal.error.image_too_big"},
				{"site prefix taken", func() error {
					_, err := f.m.CreateSite(ctx, SiteInput{OrgID: f.city.OrgID, Name: "Doublon", Prefix: "/mairie-11"}, 0)
					return err
				}, errs.Conflict, "portal.error.site_taken"},
			}
			for _, tc := range cases {
				before := gen()
				err := tc.do()
				e, ok := errs.As(err)
				if !ok || e.Code != tc.code || e.Key != tc.key {
					t.Errorf("%s: got %v, want %s %s", tc.name, err, tc.code, tc.key)
				}
				if after := gen(); after != before {
					t.Errorf("%s: the site changed (generation %d → %d)", tc.name, before, after)
				}
			}
			// The refusals say what depends on the page.
			err = f.m.DeletePage(ctx, a.ID)
			if e, _ := errs.As(err); e == nil || !strings.Contains(e.Args[1].(string), "B") {
				t.Errorf("delete refusal does not name the sub-page: %v", err)
			}
			err = f.m.DeletePage(ctx, linked.ID)
			if e, _ := errs.As(err); e == nil || !strings.Contains(e.Args[1].(string), "Nous écrire") {
				t.Errorf("delete refusal does not name the menu entry: %v", err)
			}
			if _, err := getPage(ctx, f.m.db.Read(), a.ID); err != nil {
				t.Error("refused deletion removed the page")
			}
			var n int
			if err := f.m.db.Read().QueryRowContext(ctx, "SELECT COUNT(*) FROM portal_media").Scan(&n); err != nil || n != 0 {
				t.Errorf("refused uploads stored %d files (%v)", n, err)
			}
			// A legal move reorders and keeps the tree consistent.
			if err := f.m.MovePage(ctx, b.ID, home.ID, 1); err != nil {
				t.Fatalf("legal move: %v", err)
			}
			if err := f.m.DeletePage(ctx, a.ID); err != nil {
				t.Errorf("delete after its child moved away: %v", err)
			}
			_ = code
		})
	}
}

// TestMediaAndVersions: uploads are re-encoded (EXIF dropped) in responsive widths and
// shown with srcset; history keeps every version and restore makes an old one the draft.
func TestMediaAndVersions(t *testing.T) {
	c := newClock()
	s := servertest.New(t, store.SQLite, servertest.Options{Clock: c})
	f := newFixture(t, s, c)
	ctx := context.Background()
	img := image.NewRGBA(image.Rect(0, 0, 1400, 700))
	for x := 0; x < 1400; x++ {
		img.Set(x, x/2, color.RGBA{200, 10, 10, 255})
	}
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, img, nil)
	// An APP1 Exif segment with a GPS marker, inserted after SOI.
	exif := append([]byte{0xFF, 0xE1, 0x00, 0x16}, []byte("Exif\x00\x00GPSLatitude48.85")...)
	data := append(append(append([]byte{}, buf.Bytes()[:2]...), exif...), buf.Bytes()[2:]...)
	med, err := f.m.Upload(ctx, f.district.ID, "Place", data)
	if err != nil {
		t.Fatal(err)
	}
	if !slicesEqual(med.Variants, []int{320, 640, 1024, 1400}) {
		t.Errorf("variants %v", med.Variants)
	}
	res := get(t, s, f.m.mediaURL(med, 640))
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || bytes.Contains(raw, []byte("GPSLatitude")) || bytes.Contains(raw, []byte("Exif")) {
		t.Errorf("served variant: %d, metadata kept: %v", res.StatusCode, bytes.Contains(raw, []byte("GPS")))
	}
	home := f.home(t, f.district)
	if _, err := f.m.SaveDraft(ctx, home.ID, DraftInput{Title: "Accueil", Visibility: Public, Content: []Placement{
		{Zone: "main", Type: "image", Config: portlet.Config{"media": itoa(med.ID), "alt": "La place"}},
		{Zone: "main", Type: "image", Config: portlet.Config{"media": itoa(med.ID), "decorative": "on", "alt": "ignoré"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Publish(ctx, home.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	b := body(t, get(t, s, "/mairie-11/"))
	for _, w := range []string{`alt="La place"`, `alt=""`, "srcset=", " 320w", " 1400w"} {
		if !strings.Contains(b, w) {
			t.Errorf("home lacks %q", w)
		}
	}
	f.publish(t, home, "Accueil", "Version trois")
	n, err := f.m.Restore(ctx, home.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := listVersions(ctx, f.m.db.Read(), home.ID)
	if n != 4 || len(vs) != 4 {
		t.Errorf("restore made version %d of %d", n, len(vs))
	}
	if b := body(t, get(t, s, "/mairie-11/")); !strings.Contains(b, "Version trois") {
		t.Error("restore changed the live page before publishing")
	}
	if err := f.m.Publish(ctx, home.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if b := body(t, get(t, s, "/mairie-11/")); !strings.Contains(b, `alt="La place"`) {
		t.Error("restored version not live after publish")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func urlValues(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// authAgent is an editor of the sites of one unit.
func authAgent(org int64, email string, unit int64) auth.NewAgent {
	var grants []auth.Grant
	for _, p := range []string{PermPagesEdit, PermNewsEdit, PermMediaManage} {
		grants = append(grants, auth.Grant{Perm: p, Scope: auth.ScopeUnit, ResourceType: "site", UnitID: unit})
	}
	return auth.NewAgent{OrgID: org, Email: email, Password: servertest.Password, Grants: grants, UnitIDs: []int64{unit}}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestTwoNodes: two Parvis servers on one PostgreSQL database; a change made through one
// reaches the other's cache by LISTEN/NOTIFY, for each kind of change.
func TestTwoNodes(t *testing.T) {
	dsn := servertest.SharedURL(t, store.Postgres)
	c := newClock()
	a := servertest.NewNode(t, dsn, servertest.Options{Clock: c, Start: true})
	b := servertest.NewNode(t, dsn, servertest.Options{Clock: c, Start: true})
	f := newFixture(t, a, c)
	mb := portalOf(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	home := f.home(t, f.district)
	f.publish(t, home, "Accueil", "Première version")
	fetchB := func() (string, string) {
		res := get(t, b, "/mairie-11/")
		return body(t, res), res.Header.Get("X-Parvis-Cache")
	}
	// sync waits until node B has heard of the district's current generation.
	sync := func() {
		st, err := getSite(ctx, f.m.db.Read(), f.district.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := mb.WaitGeneration(ctx, f.district.ID, st.Generation); err != nil {
			t.Fatalf("node B never heard of generation %d: %v", st.Generation, err)
		}
	}
	sync()
	if b, _ := fetchB(); !strings.Contains(b, "Première version") {
		t.Fatal("node B does not show the page")
	}
	if _, src := fetchB(); src != "hit" {
		t.Fatalf("node B does not cache: %q", src)
	}
	notified := mb.Notified()
	for _, ch := range []struct {
		name   string
		change func()
		want   string
	}{
		{"publish", func() { f.publish(t, home, "Accueil", "Deuxième version") }, "Deuxième version"},
		{"theme", func() {
			if err := f.m.UpdateTheme(ctx, f.district.ID, Theme{Primary: "#0f766e", Footer: "Pied du onzième"}); err != nil {
				t.Fatal(err)
			}
		}, "Pied du onzième"},
		{"menu", func() {
			if _, err := f.m.AddMenuLink(ctx, MenuLink{SiteID: f.district.ID, Menu: "main", Title: "Lien nouveau", URL: "/mairie-11/"}); err != nil {
				t.Fatal(err)
			}
		}, "Lien nouveau"},
		{"shared news", func() {
			home2 := home
			if _, err := f.m.SaveDraft(ctx, home2.ID, DraftInput{Title: "Accueil", Visibility: Public, Layout: "two", Content: []Placement{{Zone: "main", Type: "news", Config: portlet.Config{"limit": "3"}}}}); err != nil {
				t.Fatal(err)
			}
			if err := f.m.Publish(ctx, home2.ID, nil, nil); err != nil {
				t.Fatal(err)
			}
			sync()
			fetchB()
			if _, err := f.m.SaveNews(ctx, f.city.ID, 0, NewsInput{Slug: "ville", Title: "Nouvelle de la ville", Published: true, SharedWith: []int64{f.district.ID}}); err != nil {
				t.Fatal(err)
			}
		}, "Nouvelle de la ville"},
		{"organisation theme", func() {
			admin := a.ClientAs(a.NewOrgAdmin(f.district.OrgID, "theme@ville.fr"))
			if res := admin.Post("/admin/theme", urlValues("name", "Ville", "primary", "#7b2d26")); res.Status != http.StatusSeeOther {
				t.Fatalf("theme update: %d", res.Status)
			}
			// Node B's theme module may keep the old look for its cache lifetime; the pages
			// it renders meanwhile expire with it.
			sync()
			fetchB()
			c.Add(orgThemeTTL + time.Second)
		}, ""},
	} {
		ch.change()
		if ch.want == "" {
			ch.want = strings.ReplaceAll(f.m.orgStyle(ctx, f.district.OrgID).CSSURL, "&", "&amp;")
		}
		sync()
		if b, _ := fetchB(); !strings.Contains(b, ch.want) {
			t.Errorf("after %s on node A, node B shows the old page", ch.name)
		}
	}
	if mb.Notified() <= notified {
		t.Error("node B received no notification: it learnt of the changes some other way")
	}
}

// TestBackOfficeScoping: district A's editor edits only site A; the page editor's preview
// and publish work; the audit trail records it.
func TestBackOfficeScoping(t *testing.T) {
	c := newClock()
	s := servertest.New(t, store.SQLite, servertest.Options{Clock: c})
	f := newFixture(t, s, c)
	ctx := context.Background()
	org := f.city.OrgID
	unitA := s.NewUnit(org, 0, "Mairie du 11e")
	unitB := s.NewUnit(org, 0, "Mairie du 12e")
	if err := f.m.UpdateSite(ctx, f.district.ID, SiteInput{OrgID: org, UnitID: unitA, Name: f.district.Name, Prefix: f.district.Prefix}); err != nil {
		t.Fatal(err)
	}
	siteB, err := f.m.CreateSite(ctx, SiteInput{OrgID: org, UnitID: unitB, Name: "Mairie du 12e", Prefix: "/mairie-12"}, f.district.ID)
	if err != nil {
		t.Fatal(err)
	}
	editorA := s.NewAgentWith(authAgent(org, "a@mairie11.fr", unitA))
	ca := s.ClientAs(editorA)
	homeA := f.home(t, f.district)
	homeB := f.home(t, siteB)

	res := ca.Get("/admin/portal/")
	if res.Status != 200 || !strings.Contains(res.Body, "Mairie du 11e") || strings.Contains(res.Body, "Mairie du 12e") {
		t.Fatalf("editor A's site list: %d", res.Status)
	}
	for _, path := range []string{itoaPath("/admin/portal/pages/", homeB.ID), itoaPath("/admin/portal/sites/", siteB.ID) + "/pages"} {
		if res := ca.Get(path); res.Status != 404 {
			t.Errorf("editor A GET %s = %d, want 404", path, res.Status)
		}
	}
	if res := ca.Post(itoaPath("/admin/portal/pages/", homeB.ID)+"/publish", nil); res.Status != 404 {
		t.Errorf("editor A publishing site B = %d", res.Status)
	}
	// Editor A builds a page: create, add portlets, preview, publish.
	res = ca.Post(itoaPath("/admin/portal/sites/", f.district.ID)+"/pages", urlValues("parent", itoa(homeA.ID), "title", "Piscines", "slug", "piscines"))
	if res.Status != 303 {
		t.Fatalf("create page: %d %s", res.Status, res.Body)
	}
	pagePath := res.Location
	res = ca.Post(pagePath+"/portlets", urlValues("type", "richtext", "zone", "main", "richtext.body", "Horaires des **piscines** municipales"))
	if res.Status != 303 {
		t.Fatalf("add portlet: %d %s", res.Status, res.Body)
	}
	res = ca.Post(pagePath+"/portlets", urlValues("type", "alert", "zone", "main", "alert.level", "urgent", "alert.title", "Fermeture jeudi"))
	if res.Status != 303 {
		t.Fatalf("add alert: %d", res.Status)
	}
	res = ca.Post(pagePath+"/portlets", urlValues("type", "richtext", "zone", "main", "richtext.body", "<script>alert(1)</script>"))
	if res.Status != 400 || !strings.Contains(res.Body, "code interdit") {
		t.Errorf("unsafe rich text: %d", res.Status)
	}
	if res := get(t, s, "/mairie-11/piscines"); res.StatusCode != 404 {
		t.Errorf("unpublished page visible: %d", res.StatusCode)
	}
	res = ca.Get(pagePath + "/preview")
	if res.Status != 200 || !strings.Contains(res.Body, "<strong>piscines</strong>") || !strings.Contains(res.Body, "Fermeture jeudi") {
		t.Errorf("preview: %d", res.Status)
	}
	if res := ca.Post(pagePath+"/publish", urlValues("action", "publish")); res.Status != 303 {
		t.Fatalf("publish: %d %s", res.Status, res.Body)
	}
	if b := body(t, get(t, s, "/mairie-11/piscines")); !strings.Contains(b, "<strong>piscines</strong>") {
		t.Error("published page not shown")
	}
	// Bad theme colour through the form: 400, message, nothing changed.
	admin := s.NewAgent(org, "admin@ville.fr", PermSitesManage, PermPagesEdit)
	cadm := s.ClientAs(admin)
	res = cadm.Post(itoaPath("/admin/portal/sites/", f.district.ID)+"/theme", urlValues("primary", "#ffff00"))
	if res.Status != 400 || !strings.Contains(res.Body, "contraste") {
		t.Errorf("bad colour: %d", res.Status)
	}
	var audited int
	if err := f.m.db.Read().QueryRowContext(ctx, "SELECT COUNT(*) FROM audit_entries WHERE action LIKE 'portal.%'").Scan(&audited); err != nil {
		t.Logf("audit table not readable here: %v", err)
	} else if audited == 0 {
		t.Error("no portal change audited")
	}
}

func itoaPath(prefix string, id int64) string { return prefix + itoa(id) }

// TestSiteNames: pages of a site carry its name; the back office, and pages on a host that
// no site uses, carry the organisation's (kernel.theme).
func TestSiteNames(t *testing.T) {
	c := newClock()
	s := servertest.New(t, store.SQLite, servertest.Options{Clock: c})
	f := newFixture(t, s, c)
	f.publish(t, f.home(t, f.city), "Accueil", "Bienvenue")
	admin := s.ClientAs(s.NewOrgAdmin(f.city.OrgID, "maire@ville.fr"))
	if res := admin.Post("/admin/theme", urlValues("name", "Commune de Testville", "primary", "#1d4ed8")); res.Status != http.StatusSeeOther {
		t.Fatalf("theme update: %d", res.Status)
	}
	title := func(page string) string {
		_, rest, _ := strings.Cut(page, "<title>")
		t, _, _ := strings.Cut(rest, "</title>")
		return t
	}
	tests := []struct {
		name, path, host string
		signedIn         bool
		want, notWant    string
	}{
		{"back office", "/admin/portal/", "", true, "Commune de Testville", "Ville de Testville"},
		{"back office login", "/admin/login", "", false, "Commune de Testville", "Ville de Testville"},
		{"kernel page on the city site", "/nulle-part", "", false, "Ville de Testville", "Commune"},
		{"kernel page on a district site", "/mairie-11/nulle-part", "", false, "Mairie du 11e", "Commune"},
		{"unknown host", "/nulle-part", "inconnu.example.org", false, "Commune de Testville", "Ville de Testville"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var page string
			if tc.signedIn {
				res := admin.Get(tc.path)
				if res.Status != 200 {
					t.Fatalf("GET %s: %d", tc.path, res.Status)
				}
				page = res.Body
			} else {
				page = body(t, get(t, s, tc.path, "Host", tc.host))
			}
			if got := title(page); !strings.Contains(got, tc.want) || strings.Contains(got, tc.notWant) {
				t.Errorf("title %q: want %q, not %q", got, tc.want, tc.notWant)
			}
		})
	}
}

// TestAbandonedRender: a visitor who leaves while the page renders is not a server error
// (499, nothing cached), and the next visitor gets the page.
func TestAbandonedRender(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	m := portalOf(t, s)
	if err := m.Demo(context.Background()); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("GET", "/mairie-11/", nil).WithContext(gone)
	req.Host = "127.0.0.1"
	rec := httptest.NewRecorder()
	s.Handler.ServeHTTP(rec, req)
	if rec.Code != statusClientClosed {
		t.Fatalf("render with the client gone: status %d, want %d", rec.Code, statusClientClosed)
	}
	if n := m.cache.Len(); n != 0 {
		t.Fatalf("%d pages cached from an abandoned render", n)
	}
	req = httptest.NewRequest("GET", "/mairie-11/", nil)
	req.Host = "127.0.0.1"
	rec = httptest.NewRecorder()
	s.Handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("next visitor: status %d", rec.Code)
	}
}

// TestSitesAsResources: the role editor is offered the organisation's sites, so that a role
// may be granted on one site; the form lists them by name.
func TestSitesAsResources(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	m := portalOf(t, s)
	if err := m.Demo(context.Background()); err != nil {
		t.Fatal(err)
	}
	items, err := siteResources{m}.Resources(context.Background(), s.DefaultOrg())
	if err != nil || len(items) < 3 {
		t.Fatalf("sites as resources: %+v, %v", items, err)
	}
	if items, _ := (siteResources{m}).Resources(context.Background(), s.DefaultOrg()+1000); len(items) != 0 {
		t.Errorf("another organisation's sites: %+v", items)
	}
	page := s.ClientAs(s.NewOrgAdmin(s.DefaultOrg(), "admin@ville.test")).Get("/admin/roles/new")
	if !strings.Contains(page.Body, `value="site:`+items[0].ID+`"`) || !strings.Contains(page.Body, items[0].Title) {
		t.Errorf("the role form does not offer the site %q", items[0].Title)
	}
}
