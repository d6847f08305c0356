package portal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
	"parvis.org/parvis/modules/portal/portlet"
)

// view is what the site template shows.
type view struct {
	Site        *Site
	Base        string // site prefix, "" at the root
	Kind        string // "page", "news", "article", "search", "accessibility", "legal"
	Title       string
	Description string
	SocialImage string
	ThemeCSS    string
	Org         server.SiteStyle // the organisation's look, under the site's own colours
	Main        []menuItem
	Footer      []menuItem
	Crumbs      []menuItem
	Zones       map[string][]template.HTML
	Layout      string
	News        []*News
	Article     *News
	ArticleBody template.HTML
	Legal       template.HTML
	Query       string
	Results     []Result
	Searched    bool
	Preview     bool
	Prev, Next  string
	Path        string
}

type menuItem struct {
	Title    string
	URL      string
	Current  bool // this page
	Ancestor bool // a page above the current one
	External bool
}

// pagePath returns a page's path inside its site: "/" for the home page, "/a/b" below.
func pagePath(pages []*Page, p *Page) string {
	byID := make(map[int64]*Page, len(pages))
	for _, q := range pages {
		byID[q.ID] = q
	}
	var parts []string
	for q := p; q != nil && q.ParentID != 0; q = byID[q.ParentID] {
		parts = append(parts, q.Slug)
	}
	if len(parts) == 0 {
		return "/"
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString("/")
		b.WriteString(parts[i])
	}
	return b.String()
}

func (m *Module) ensureLoaded(ctx context.Context) {
	if m.st.Load().sites == nil {
		m.reload(ctx)
	}
}

// serve answers every public path the other modules did not claim: the pages of the site
// the host and path lead to, or the kernel's 404 page.
func (m *Module) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	m.ensureLoaded(ctx)
	switch r.URL.Path {
	case "/robots.txt":
		m.robots(w, r)
		return
	case "/sitemap.xml":
		m.sitemap(w, r)
		return
	}
	site, rest := m.resolve(r)
	if site == nil {
		if r.URL.Path == "/" && len(m.st.Load().byID) == 0 {
			// A new instance without any site yet (no demo content): the kernel's welcome
			// page rather than a 404 at the front door.
			m.views.Render(w, r, web.Page{Name: "kernel/home.html", Title: "kernel.home.title"})
			return
		}
		m.notFound(w, r)
		return
	}
	if rest == "/" && !strings.HasSuffix(r.URL.Path, "/") {
		http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
		return
	}
	gen := site.Generation
	now := m.now()
	c := newCapture()
	var (
		ok     bool
		maxAge time.Duration
		err    error
	)
	storeIt := true
	switch {
	case rest == "/actualites" || rest == "/actualites/":
		ok, err = m.renderNews(c, r, site, now)
		storeIt = r.URL.RawQuery == ""
	case rest == "/actualites/flux.atom":
		ok, err = m.atom(c, r, site, now)
	case strings.HasPrefix(rest, "/actualites/"):
		ok, err = m.renderArticle(c, r, site, strings.TrimPrefix(rest, "/actualites/"), now)
	case rest == "/recherche":
		ok, err = m.renderSearch(c, r, site, now)
		storeIt = false
	case rest == "/accessibilite" || rest == "/mentions-legales":
		ok, err = m.renderStatic(c, r, site, strings.TrimPrefix(rest, "/"), now)
	default:
		var private bool
		ok, private, maxAge, err = m.renderPage(c, r, site, rest, now, 0)
		if private {
			storeIt = false
		}
	}
	if err != nil {
		var redirect *loginRedirect
		if errors.As(err, &redirect) {
			http.Redirect(w, r, redirect.to, http.StatusSeeOther)
			return
		}
		if r.Context().Err() != nil {
			// The visitor left (or the server is stopping) while the page was rendered: not
			// a server error. 499 is the status proxies log for it (nginx's convention).
			m.log.Debug("render abandoned", "path", r.URL.Path, "err", err)
			w.WriteHeader(statusClientClosed)
			return
		}
		m.log.Error("render", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if !ok {
		m.notFound(w, r)
		return
	}
	expires, err := m.nextChange(ctx, site.ID, now)
	if err != nil {
		m.log.Warn("next scheduled change", "err", err)
		storeIt = false
	}
	if m.db.Dialect == store.Postgres {
		// Another node may change the organisation's look: this node's theme module sees it
		// within its cache lifetime, and so must the pages that embed it.
		maxAge = min(maxAge, orgThemeTTL)
		if maxAge <= 0 {
			maxAge = orgThemeTTL
		}
	}
	if maxAge > 0 && (expires.IsZero() || now.Add(maxAge).Before(expires)) {
		expires = now.Add(maxAge)
	}
	m.respond(w, r, c, site, gen, expires, storeIt)
}

// orgThemeTTL is how long kernel.theme keeps an organisation's look another node may have
// changed (its cacheTTL); on this node a change drops the pages at once (OnChange).
const orgThemeTTL = 30 * time.Second

type loginRedirect struct{ to string }

func (l *loginRedirect) Error() string { return "sign-in required" }

type errorData struct{ Message, Back string }

// notFound renders the kernel's 404 page (never another site's page).
func (m *Module) notFound(w http.ResponseWriter, r *http.Request) {
	lang := "fr"
	if m.views.Lang != nil {
		lang = m.views.Lang(r)
	}
	back := "/"
	if s, _ := m.resolve(r); s != nil {
		back = s.Prefix + "/"
	}
	m.views.Render(w, r, web.Page{Name: "kernel/error.html", Status: http.StatusNotFound, Title: "kernel.error.not_found",
		Data: errorData{Message: m.i18n.T(lang, "kernel.error.not_found_text"), Back: back}})
}

// nextChange is the earliest scheduled change of what a site shows after now (zero: none).
func (m *Module) nextChange(ctx context.Context, siteID int64, now time.Time) (time.Time, error) {
	rows, err := m.db.Read().QueryContext(ctx, `SELECT publish_at FROM portal_pages WHERE site_id = ? AND scheduled_version > 0 AND publish_at > ?
		UNION ALL SELECT unpublish_at FROM portal_pages WHERE site_id = ? AND unpublish_at > ?
		UNION ALL SELECT n.published_at FROM portal_news n WHERE n.published AND n.published_at > ?
		  AND (n.site_id = ? OR EXISTS (SELECT 1 FROM portal_news_sites s WHERE s.news_id = n.id AND s.site_id = ?))`,
		siteID, now, siteID, now, now, siteID, siteID)
	if err != nil {
		return time.Time{}, err
	}
	defer rows.Close()
	var next time.Time
	for rows.Next() {
		var t time.Time
		if err := rows.Scan(&t); err != nil {
			return time.Time{}, err
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next, rows.Err()
}

// chrome builds what every page of a site shows: menus and theme.
func (m *Module) chrome(ctx context.Context, site *Site, pages []*Page, titles map[[2]int64]string, now time.Time, current string) (*view, error) {
	v := &view{Site: site, Base: site.Prefix, Path: current, ThemeCSS: m.themeURL(site), Org: m.orgStyle(ctx, site.OrgID)}
	links, err := listMenu(ctx, m.db.Read(), site.ID)
	if err != nil {
		return nil, err
	}
	var home *Page
	for _, p := range pages {
		if p.ParentID == 0 {
			home = p
		}
	}
	mark := func(it menuItem) menuItem {
		it.Current = it.URL == current
		it.Ancestor = !it.Current && !it.External && it.URL != site.Prefix+"/" && strings.HasPrefix(current, it.URL+"/")
		return it
	}
	if home != nil {
		for _, p := range pages {
			if p.ParentID != home.ID || !p.InMenu {
				continue
			}
			live := p.Live(now)
			if live == 0 {
				continue
			}
			v.Main = append(v.Main, mark(menuItem{Title: titles[[2]int64{p.ID, int64(live)}], URL: site.Prefix + pagePath(pages, p)}))
		}
	}
	for _, l := range links {
		it := menuItem{Title: l.Title, URL: l.URL, External: l.URL != "" && !strings.HasPrefix(l.URL, "/")}
		if l.PageID != 0 {
			var target *Page
			for _, p := range pages {
				if p.ID == l.PageID {
					target = p
				}
			}
			if target == nil || target.Live(now) == 0 {
				continue
			}
			it.URL = site.Prefix + pagePath(pages, target)
		}
		it = mark(it)
		if l.Menu == "main" {
			v.Main = append(v.Main, it)
		} else {
			v.Footer = append(v.Footer, it)
		}
	}
	return v, nil
}

func (m *Module) themeURL(s *Site) string {
	sum := sha256.Sum256([]byte(jsonText(s.Theme)))
	return fmt.Sprintf("/_portal/theme/%d-%s.css", s.ID, hex.EncodeToString(sum[:5]))
}

// themeCSS serves a site's colours as a style sheet (the CSP forbids inline styles); its
// URL changes with the theme, so it is cached for a year.
func (m *Module) themeCSS(w http.ResponseWriter, r *http.Request) {
	m.ensureLoaded(r.Context())
	idStr, _, _ := strings.Cut(r.PathValue("site"), "-")
	id, _ := strconv.ParseInt(idStr, 10, 64)
	s := m.st.Load().byID[id]
	if s == nil {
		m.notFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	primary := s.Theme.Primary
	if primary == "" {
		primary = "#1d4ed8"
	}
	fmt.Fprintf(w, ":root{--portal-primary:%s}\n", primary)
}

// renderPage renders a page of the tree; version > 0 previews that version (for editors).
func (m *Module) renderPage(w http.ResponseWriter, r *http.Request, site *Site, path string, now time.Time, version int) (ok, private bool, maxAge time.Duration, err error) {
	ctx := r.Context()
	pages, err := listPages(ctx, m.db.Read(), site.ID)
	if err != nil {
		return false, false, 0, err
	}
	titles, err := versionTitles(ctx, m.db.Read(), site.ID)
	if err != nil {
		return false, false, 0, err
	}
	// Walk the slugs from the home page.
	var page *Page
	for _, p := range pages {
		if p.ParentID == 0 {
			page = p
		}
	}
	var trail []*Page
	if page != nil {
		trail = append(trail, page)
	}
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if seg == "" || page == nil {
			continue
		}
		var next *Page
		for _, p := range pages {
			if p.ParentID == page.ID && p.Slug == seg {
				next = p
				break
			}
		}
		page = next
		if page != nil {
			trail = append(trail, page)
		}
	}
	if page == nil {
		return false, false, 0, nil
	}
	n := page.Live(now)
	if version > 0 {
		n = version
	}
	if n == 0 {
		return false, false, 0, nil
	}
	// Every page on the way must be online too.
	for _, p := range trail[:len(trail)-1] {
		if p.Live(now) == 0 && version == 0 {
			return false, false, 0, nil
		}
	}
	if page.Visibility == Citizens && version == 0 {
		if kernel.CitizenFrom(ctx) == nil {
			return false, true, 0, &loginRedirect{to: "/compte/connexion?next=" + url.QueryEscape(r.URL.Path)}
		}
		private = true
	}
	ver, err := getVersion(ctx, m.db.Read(), page.ID, n)
	if err != nil {
		return false, false, 0, err
	}
	v, err := m.chrome(ctx, site, pages, titles, now, site.Prefix+pagePath(pages, page))
	if err != nil {
		return false, false, 0, err
	}
	v.Kind, v.Title, v.Description, v.SocialImage, v.Layout, v.Preview = "page", ver.Title, ver.Description, ver.SocialImage, layoutOf(ver.Layout).Key, version > 0
	if ver.SEOTitle != "" {
		v.Title = ver.SEOTitle
	}
	for _, p := range trail[:len(trail)-1] {
		t := titles[[2]int64{p.ID, int64(p.Live(now))}]
		if p.ParentID == 0 {
			t = m.i18n.T(site.Lang, "portal.home")
		}
		v.Crumbs = append(v.Crumbs, menuItem{Title: t, URL: site.Prefix + pagePath(pages, p)})
	}
	if len(trail) > 1 {
		v.Crumbs = append(v.Crumbs, menuItem{Title: ver.Title, Current: true})
	}
	rc := m.portletContext(r, site, now, version > 0)
	v.Zones = map[string][]template.HTML{}
	for _, pl := range ver.Content {
		t := m.portlets[pl.Type]
		if t == nil {
			continue
		}
		h, err := t.Render(ctx, rc, pl.Config)
		if err != nil {
			m.log.Warn("portlet", "type", pl.Type, "page", page.ID, "err", err)
			continue
		}
		v.Zones[pl.Zone] = append(v.Zones[pl.Zone], h)
	}
	if ver.Title != "" && len(trail) == 1 {
		v.Title = ver.Title
	}
	m.page(w, r, v)
	return true, private, rc.MaxAge(), nil
}

func (m *Module) portletContext(r *http.Request, site *Site, now time.Time, preview bool) *portlet.Context {
	lang := site.Lang
	if m.views.Lang != nil {
		lang = m.views.Lang(r)
	}
	return &portlet.Context{SiteID: site.ID, OrgID: site.OrgID, Base: site.Prefix, Lang: lang, Now: now, Preview: preview,
		T: func(key string, args ...any) string { return m.i18n.T(lang, key, args...) }}
}

func (m *Module) page(w http.ResponseWriter, r *http.Request, v *view) {
	m.views.Render(w, r, web.Page{Name: "portal/site.html", Layout: "portal-site", Data: v})
}

func (m *Module) siteChrome(ctx context.Context, site *Site, now time.Time, current string) (*view, error) {
	pages, err := listPages(ctx, m.db.Read(), site.ID)
	if err != nil {
		return nil, err
	}
	titles, err := versionTitles(ctx, m.db.Read(), site.ID)
	if err != nil {
		return nil, err
	}
	return m.chrome(ctx, site, pages, titles, now, current)
}

const newsPerPage = 10

func (m *Module) renderNews(w http.ResponseWriter, r *http.Request, site *Site, now time.Time) (bool, error) {
	ctx := r.Context()
	v, err := m.siteChrome(ctx, site, now, site.Prefix+"/actualites")
	if err != nil {
		return false, err
	}
	pageNo, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if pageNo < 1 {
		pageNo = 1
	}
	news, err := siteNews(ctx, m.db.Read(), site.ID, now, newsPerPage+1, (pageNo-1)*newsPerPage)
	if err != nil {
		return false, err
	}
	if len(news) > newsPerPage {
		news = news[:newsPerPage]
		v.Next = fmt.Sprintf("%s/actualites?page=%d", site.Prefix, pageNo+1)
	}
	if pageNo > 1 {
		v.Prev = fmt.Sprintf("%s/actualites?page=%d", site.Prefix, pageNo-1)
	}
	v.Kind, v.News = "news", news
	v.Title = m.i18n.T(m.lang(r, site), "portal.news.title")
	v.Crumbs = []menuItem{{Title: m.i18n.T(m.lang(r, site), "portal.home"), URL: site.Prefix + "/"}, {Title: v.Title, Current: true}}
	m.page(w, r, v)
	return true, nil
}

func (m *Module) lang(r *http.Request, site *Site) string {
	if m.views.Lang != nil {
		return m.views.Lang(r)
	}
	return site.Lang
}

func (m *Module) renderArticle(w http.ResponseWriter, r *http.Request, site *Site, slug string, now time.Time) (bool, error) {
	ctx := r.Context()
	n, err := newsBySlug(ctx, m.db.Read(), site.ID, slug, now)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	v, err := m.siteChrome(ctx, site, now, site.Prefix+"/actualites/"+slug)
	if err != nil {
		return false, err
	}
	lang := m.lang(r, site)
	v.Kind, v.Article, v.Title, v.Description = "article", n, n.Title, n.Summary
	v.ArticleBody = markdown(n.Body)
	v.Crumbs = []menuItem{{Title: m.i18n.T(lang, "portal.home"), URL: site.Prefix + "/"},
		{Title: m.i18n.T(lang, "portal.news.title"), URL: site.Prefix + "/actualites"}, {Title: n.Title, Current: true}}
	if n.ImageID != 0 {
		if img, err := getMedia(ctx, m.db.Read(), n.ImageID); err == nil {
			v.SocialImage = m.mediaURL(img, 0)
		}
	}
	m.page(w, r, v)
	return true, nil
}

func (m *Module) renderSearch(w http.ResponseWriter, r *http.Request, site *Site, now time.Time) (bool, error) {
	ctx := r.Context()
	v, err := m.siteChrome(ctx, site, now, site.Prefix+"/recherche")
	if err != nil {
		return false, err
	}
	lang := m.lang(r, site)
	v.Kind, v.Title = "search", m.i18n.T(lang, "portal.search.title")
	v.Query = strings.TrimSpace(r.URL.Query().Get("q"))
	if len(v.Query) > 200 {
		v.Query = v.Query[:200]
	}
	if v.Query != "" {
		v.Searched = true
		v.Results, err = m.Search(ctx, site, lang, v.Query, now)
		if err != nil {
			return false, err
		}
		v.Title = m.i18n.T(lang, "portal.search.results_for", "q", v.Query)
	}
	v.Crumbs = []menuItem{{Title: m.i18n.T(lang, "portal.home"), URL: site.Prefix + "/"}, {Title: m.i18n.T(lang, "portal.search.title"), Current: true}}
	m.page(w, r, v)
	return true, nil
}

// renderStatic renders the generated accessibility statement and legal notice.
func (m *Module) renderStatic(w http.ResponseWriter, r *http.Request, site *Site, which string, now time.Time) (bool, error) {
	v, err := m.siteChrome(r.Context(), site, now, site.Prefix+"/"+which)
	if err != nil {
		return false, err
	}
	lang := m.lang(r, site)
	if which == "accessibilite" {
		v.Kind, v.Title = "accessibility", m.i18n.T(lang, "portal.a11y.title")
	} else {
		v.Kind, v.Title, v.Legal = "legal", m.i18n.T(lang, "portal.legal.title"), markdown(site.Legal)
	}
	v.Crumbs = []menuItem{{Title: m.i18n.T(lang, "portal.home"), URL: site.Prefix + "/"}, {Title: v.Title, Current: true}}
	m.page(w, r, v)
	return true, nil
}

// statusClientClosed is logged when the client went away before its page was rendered.
const statusClientClosed = 499
