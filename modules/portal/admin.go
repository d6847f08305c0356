package portal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/web"
	"parvis.org/parvis/modules/portal/portlet"
)

// Back-office handlers. The kernel lets through only agents holding the route's permission
// on at least one site; each handler then checks the permission on the very site concerned,
// so a district's editors reach only their own site.

func (m *Module) resource(s *Site) *kernel.Resource {
	return &kernel.Resource{Type: "site", ID: strconv.FormatInt(s.ID, 10), UnitID: s.UnitID, OrgID: s.OrgID}
}

func (m *Module) can(ctx context.Context, perm string, s *Site) bool {
	a := kernel.AgentFrom(ctx)
	return a != nil && m.auth != nil && s.OrgID == a.OrgID && m.auth.Can(ctx, a, perm, m.resource(s))
}

func (m *Module) fail(w http.ResponseWriter, r *http.Request, status int, key string) {
	lang := m.lang(r, &Site{Lang: "fr"})
	m.views.Render(w, r, web.Page{Name: "kernel/error.html", Layout: "backoffice", Status: status, Title: "kernel.error.title",
		Data: errorData{Message: m.i18n.T(lang, key), Back: "/admin/portal/"}})
}

// siteParam loads the {site} of the path and checks perm on it.
func (m *Module) siteParam(w http.ResponseWriter, r *http.Request, perm string) *Site {
	m.ensureLoaded(r.Context())
	id, _ := strconv.ParseInt(r.PathValue("site"), 10, 64)
	s, err := getSite(r.Context(), m.db.Read(), id)
	if err != nil || !m.can(r.Context(), perm, s) {
		// Another organisation's or unit's site is answered as if it did not exist.
		m.fail(w, r, http.StatusNotFound, "portal.error.no_site")
		return nil
	}
	return s
}

// pageParam loads the {page} of the path, its site, and checks perm on the site.
func (m *Module) pageParam(w http.ResponseWriter, r *http.Request, perm string) (*Page, *Site) {
	m.ensureLoaded(r.Context())
	id, _ := strconv.ParseInt(r.PathValue("page"), 10, 64)
	p, err := getPage(r.Context(), m.db.Read(), id)
	if err != nil {
		m.fail(w, r, http.StatusNotFound, "portal.error.no_page")
		return nil, nil
	}
	s, err := getSite(r.Context(), m.db.Read(), p.SiteID)
	if err != nil || !m.can(r.Context(), perm, s) {
		m.fail(w, r, http.StatusNotFound, "portal.error.no_page")
		return nil, nil
	}
	return p, s
}

// parse reads a posted form, answering 413 past the body limit.
func (m *Module) parse(w http.ResponseWriter, r *http.Request) *web.Form {
	f, err := web.ParseForm(r)
	if errors.Is(err, web.ErrBodyTooLarge) {
		m.fail(w, r, http.StatusRequestEntityTooLarge, "portal.error.file_too_large_generic")
		return nil
	}
	if err != nil {
		m.fail(w, r, http.StatusBadRequest, "portal.error.bad_form")
		return nil
	}
	return f
}

// failForm records a domain error on the form and returns its status; unexpected errors
// are logged and give 500.
func (m *Module) failForm(f *web.Form, err error, field string) int {
	if e, ok := errs.As(err); ok {
		if e.Field != "" {
			field = e.Field
		}
		f.Fail(field, e.Key, e.Args...)
		return web.StatusOf(err)
	}
	m.log.Error("portal back office", "err", err)
	f.Fail(field, "portal.error.internal")
	return http.StatusInternalServerError
}

type siteRow struct {
	Site                      *Site
	Pages, News, Media, Theme bool
}

func (m *Module) adminSites(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	m.ensureLoaded(ctx)
	var rows []siteRow
	for _, s := range m.st.Load().sites {
		row := siteRow{Site: s, Pages: m.can(ctx, PermPagesEdit, s), News: m.can(ctx, PermNewsEdit, s),
			Media: m.can(ctx, PermMediaManage, s), Theme: m.can(ctx, PermSitesManage, s)}
		if row.Pages || row.News || row.Media || row.Theme {
			rows = append(rows, row)
		}
	}
	slices.SortFunc(rows, func(a, b siteRow) int { return strings.Compare(a.Site.Prefix+a.Site.Host, b.Site.Prefix+b.Site.Host) })
	a := kernel.AgentFrom(ctx)
	canCreate := a != nil && m.auth != nil && m.auth.Can(ctx, a, PermSitesManage, nil)
	m.views.Render(w, r, web.Page{Name: "portal/admin_sites.html", Layout: "backoffice", Title: "portal.admin.sites",
		Data: map[string]any{"Sites": rows, "CanCreate": canCreate}})
}

func (m *Module) siteOptions(ctx context.Context) []map[string]string {
	a := kernel.AgentFrom(ctx)
	out := []map[string]string{{"Value": "", "Label": "—"}}
	for _, s := range m.st.Load().sites {
		if a != nil && s.OrgID == a.OrgID {
			out = append(out, map[string]string{"Value": strconv.FormatInt(s.ID, 10), "Label": s.Name})
		}
	}
	return out
}

func (m *Module) adminSiteNew(w http.ResponseWriter, r *http.Request) {
	m.views.Render(w, r, web.Page{Name: "portal/admin_site_new.html", Layout: "backoffice", Title: "portal.admin.site_new",
		Form: web.NewForm(nil), Data: map[string]any{"Sites": m.siteOptions(r.Context())}})
}

func (m *Module) adminSiteCreate(w http.ResponseWriter, r *http.Request) {
	f := m.parse(w, r)
	if f == nil {
		return
	}
	a := kernel.AgentFrom(r.Context())
	unit, _ := strconv.ParseInt(f.Get("unit"), 10, 64)
	from, _ := strconv.ParseInt(f.Get("copy"), 10, 64)
	in := SiteInput{OrgID: a.OrgID, UnitID: unit, Name: f.Get("name"), Host: f.Get("host"), Prefix: f.Get("prefix"), Lang: "fr"}
	s, err := m.CreateSite(r.Context(), in, from)
	if err != nil {
		status := m.failForm(f, err, "name")
		m.views.Render(w, r, web.Page{Name: "portal/admin_site_new.html", Layout: "backoffice", Title: "portal.admin.site_new",
			Status: status, Form: f, Data: map[string]any{"Sites": m.siteOptions(r.Context())}})
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/sites/%d/pages", s.ID), http.StatusSeeOther)
}

func (m *Module) adminTheme(w http.ResponseWriter, r *http.Request) {
	s := m.siteParam(w, r, PermSitesManage)
	if s == nil {
		return
	}
	f := web.NewForm(url.Values{"primary": {s.Theme.Primary}, "logo": {s.Theme.Logo}, "footer": {s.Theme.Footer}})
	m.views.Render(w, r, web.Page{Name: "portal/admin_theme.html", Layout: "backoffice", Title: "portal.admin.theme", Form: f, Data: s})
}

func (m *Module) adminThemeSave(w http.ResponseWriter, r *http.Request) {
	s := m.siteParam(w, r, PermSitesManage)
	if s == nil {
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	th := s.Theme
	th.Primary, th.Logo, th.Footer = f.Get("primary"), f.Get("logo"), f.Get("footer")
	if err := m.UpdateTheme(r.Context(), s.ID, th); err != nil {
		status := m.failForm(f, err, "primary")
		m.views.Render(w, r, web.Page{Name: "portal/admin_theme.html", Layout: "backoffice", Title: "portal.admin.theme", Status: status, Form: f, Data: s})
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/sites/%d/pages", s.ID), http.StatusSeeOther)
}

type treeRow struct {
	Page             *Page
	Title, Path      string
	Depth            int
	Live, HasChanges bool
}

func (m *Module) tree(ctx context.Context, s *Site) ([]treeRow, error) {
	pages, err := listPages(ctx, m.db.Read(), s.ID)
	if err != nil {
		return nil, err
	}
	titles, err := versionTitles(ctx, m.db.Read(), s.ID)
	if err != nil {
		return nil, err
	}
	now := m.now()
	var out []treeRow
	var walk func(parent int64, depth int)
	walk = func(parent int64, depth int) {
		for _, p := range pages {
			if p.ParentID != parent {
				continue
			}
			out = append(out, treeRow{Page: p, Title: titles[[2]int64{p.ID, int64(p.DraftVersion)}], Path: s.Prefix + pagePath(pages, p),
				Depth: depth, Live: p.Live(now) > 0, HasChanges: p.DraftVersion != p.Live(now)})
			walk(p.ID, depth+1)
		}
	}
	walk(0, 0)
	return out, nil
}

func (m *Module) renderPages(w http.ResponseWriter, r *http.Request, s *Site, f *web.Form, status int, flash string) {
	rows, err := m.tree(r.Context(), s)
	if err != nil {
		m.log.Error("page tree", "err", err)
		m.fail(w, r, http.StatusInternalServerError, "portal.error.internal")
		return
	}
	links, _ := listMenu(r.Context(), m.db.Read(), s.ID)
	if f == nil {
		f = web.NewForm(nil)
	}
	m.views.Render(w, r, web.Page{Name: "portal/admin_pages.html", Layout: "backoffice", Title: "portal.admin.pages", Status: status,
		Form: f, Flash: flash, Data: map[string]any{"Site": s, "Rows": rows, "Links": links}})
}

func (m *Module) adminPages(w http.ResponseWriter, r *http.Request) {
	if s := m.siteParam(w, r, PermPagesEdit); s != nil {
		m.renderPages(w, r, s, nil, 0, doneKey(r))
	}
}

func (m *Module) adminPageCreate(w http.ResponseWriter, r *http.Request) {
	s := m.siteParam(w, r, PermPagesEdit)
	if s == nil {
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	parent, _ := strconv.ParseInt(f.Get("parent"), 10, 64)
	p, err := m.CreatePage(r.Context(), s.ID, parent, f.Get("slug"), f.Get("title"))
	if err != nil {
		m.renderPages(w, r, s, f, m.failForm(f, err, "title"), "")
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/pages/%d", p.ID), http.StatusSeeOther)
}

func (m *Module) adminMenuAdd(w http.ResponseWriter, r *http.Request) {
	s := m.siteParam(w, r, PermPagesEdit)
	if s == nil {
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	page, _ := strconv.ParseInt(f.Get("page"), 10, 64)
	if _, err := m.AddMenuLink(r.Context(), MenuLink{SiteID: s.ID, Menu: f.Get("menu"), Title: f.Get("link_title"), URL: f.Get("url"), PageID: page}); err != nil {
		status := m.failForm(f, err, "link_title")
		if f.Errors[len(f.Errors)-1].Field == "title" {
			f.Errors[len(f.Errors)-1].Field = "link_title"
		}
		m.renderPages(w, r, s, f, status, "")
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/sites/%d/pages?done=portal.admin.saved", s.ID), http.StatusSeeOther)
}

func (m *Module) adminMenuDelete(w http.ResponseWriter, r *http.Request) {
	s := m.siteParam(w, r, PermPagesEdit)
	if s == nil {
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("link"), 10, 64)
	if err := m.DeleteMenuLink(r.Context(), s.ID, id); err != nil {
		m.fail(w, r, web.StatusOf(err), "portal.error.no_link")
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/sites/%d/pages?done=portal.admin.saved", s.ID), http.StatusSeeOther)
}

func (m *Module) editData(ctx context.Context, p *Page, s *Site) (map[string]any, *Version, error) {
	v, err := getVersion(ctx, m.db.Read(), p.ID, p.DraftVersion)
	if err != nil {
		return nil, nil, err
	}
	versions, err := listVersions(ctx, m.db.Read(), p.ID)
	if err != nil {
		return nil, nil, err
	}
	var types []map[string]any
	for _, k := range m.portletOrder {
		t := m.portlets[k]
		types = append(types, map[string]any{"Key": k, "Title": t.Title(), "Fields": t.Fields()})
	}
	rows, err := m.tree(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	return map[string]any{"Page": p, "Site": s, "Version": v, "Versions": versions, "Types": types, "Layouts": layouts,
		"Zones": layoutOf(v.Layout).Zones, "Tree": rows, "Live": p.Live(m.now())}, v, nil
}

func (m *Module) renderEdit(w http.ResponseWriter, r *http.Request, p *Page, s *Site, f *web.Form, status int, flash string) {
	data, v, err := m.editData(r.Context(), p, s)
	if err != nil {
		m.log.Error("page editor", "err", err)
		m.fail(w, r, http.StatusInternalServerError, "portal.error.internal")
		return
	}
	if f == nil {
		vals := url.Values{"title": {v.Title}, "seo_title": {v.SEOTitle}, "description": {v.Description}, "social_image": {v.SocialImage},
			"layout": {v.Layout}, "visibility": {p.Visibility}}
		if p.InMenu {
			vals.Set("in_menu", "on")
		}
		f = web.NewForm(vals)
	}
	m.views.Render(w, r, web.Page{Name: "portal/admin_page.html", Layout: "backoffice", Title: "portal.admin.page", Status: status,
		Form: f, Flash: flash, Data: data})
}

func (m *Module) adminPage(w http.ResponseWriter, r *http.Request) {
	if p, s := m.pageParam(w, r, PermPagesEdit); p != nil {
		m.renderEdit(w, r, p, s, nil, 0, doneKey(r))
	}
}

func draftFrom(f *web.Form, v *Version) DraftInput {
	return DraftInput{Title: f.Get("title"), SEOTitle: f.Get("seo_title"), Description: f.Get("description"), SocialImage: f.Get("social_image"),
		Layout: f.Get("layout"), Visibility: f.Get("visibility"), InMenu: f.Get("in_menu") != "", Content: slices.Clone(v.Content)}
}

func (m *Module) adminPageSave(w http.ResponseWriter, r *http.Request) {
	p, s := m.pageParam(w, r, PermPagesEdit)
	if p == nil {
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	v, err := getVersion(r.Context(), m.db.Read(), p.ID, p.DraftVersion)
	if err != nil {
		m.fail(w, r, http.StatusNotFound, "portal.error.no_page")
		return
	}
	if _, err := m.SaveDraft(r.Context(), p.ID, draftFrom(f, v)); err != nil {
		m.renderEdit(w, r, p, s, f, m.failForm(f, err, "title"), "")
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/pages/%d?done=portal.admin.draft_saved", p.ID), http.StatusSeeOther)
}

// editAgain reloads the page after a failed portlet or publication change and shows f's errors.
func (m *Module) editAgain(w http.ResponseWriter, r *http.Request, p *Page, s *Site, f *web.Form, status int) {
	vals := f.Values
	fresh, _ := getPage(r.Context(), m.db.Read(), p.ID)
	if fresh != nil {
		p = fresh
	}
	m.renderEdit(w, r, p, s, &web.Form{Values: vals, Errors: f.Errors}, status, "")
}

func (m *Module) adminPortletAdd(w http.ResponseWriter, r *http.Request) {
	p, s := m.pageParam(w, r, PermPagesEdit)
	if p == nil {
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	v, err := getVersion(r.Context(), m.db.Read(), p.ID, p.DraftVersion)
	if err != nil {
		m.fail(w, r, http.StatusNotFound, "portal.error.no_page")
		return
	}
	typ := f.Get("type")
	t := m.portlets[typ]
	if t == nil {
		f.Fail("type", "portal.error.portlet_type")
		m.editAgain(w, r, p, s, f, http.StatusBadRequest)
		return
	}
	cfg := portlet.Config{}
	for _, fl := range t.Fields() {
		cfg[fl.Name] = f.Values.Get(typ + "." + fl.Name)
	}
	in := DraftInput{Title: v.Title, SEOTitle: v.SEOTitle, Description: v.Description, SocialImage: v.SocialImage, Layout: v.Layout,
		Visibility: p.Visibility, InMenu: p.InMenu, Content: append(slices.Clone(v.Content), Placement{Zone: f.Get("zone"), Type: typ, Config: cfg})}
	if _, err := m.SaveDraft(r.Context(), p.ID, in); err != nil {
		if e, ok := errs.As(err); ok && e.Field != "" {
			e2 := *e
			e2.Field = typ + "." + e.Field
			err = &e2
		}
		m.editAgain(w, r, p, s, f, m.failForm(f, err, "type"))
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/pages/%d?done=portal.admin.draft_saved", p.ID), http.StatusSeeOther)
}

func (m *Module) adminPortletDelete(w http.ResponseWriter, r *http.Request) {
	p, _ := m.pageParam(w, r, PermPagesEdit)
	if p == nil {
		return
	}
	v, err := getVersion(r.Context(), m.db.Read(), p.ID, p.DraftVersion)
	n, _ := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n >= len(v.Content) {
		m.fail(w, r, http.StatusNotFound, "portal.error.no_portlet")
		return
	}
	in := DraftInput{Title: v.Title, SEOTitle: v.SEOTitle, Description: v.Description, SocialImage: v.SocialImage, Layout: v.Layout,
		Visibility: p.Visibility, InMenu: p.InMenu, Content: slices.Delete(slices.Clone(v.Content), n, n+1)}
	if _, err := m.SaveDraft(r.Context(), p.ID, in); err != nil {
		m.fail(w, r, web.StatusOf(err), "portal.error.internal")
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/pages/%d?done=portal.admin.draft_saved", p.ID), http.StatusSeeOther)
}

// adminPreview shows the draft as visitors would see it, never cached.
func (m *Module) adminPreview(w http.ResponseWriter, r *http.Request) {
	p, s := m.pageParam(w, r, PermPagesEdit)
	if p == nil {
		return
	}
	pages, err := listPages(r.Context(), m.db.Read(), s.ID)
	if err != nil {
		m.fail(w, r, http.StatusInternalServerError, "portal.error.internal")
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	if ok, _, _, err := m.renderPage(w, r, s, pagePath(pages, p), m.now(), p.DraftVersion); err != nil || !ok {
		m.fail(w, r, http.StatusNotFound, "portal.error.no_page")
	}
}

// parseLocal reads a datetime-local field in the instance's time zone.
func (m *Module) parseLocal(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04", s, m.views.Location)
	if err != nil {
		return nil, err
	}
	t = t.UTC()
	return &t, nil
}

func (m *Module) adminPublish(w http.ResponseWriter, r *http.Request) {
	p, s := m.pageParam(w, r, PermPagesEdit)
	if p == nil {
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	if f.Get("action") == "unpublish" {
		if err := m.Unpublish(r.Context(), p.ID); err != nil {
			m.editAgain(w, r, p, s, f, m.failForm(f, err, "publish_at"))
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/admin/portal/pages/%d?done=portal.admin.unpublished", p.ID), http.StatusSeeOther)
		return
	}
	at, err := m.parseLocal(f.Get("publish_at"))
	if err != nil {
		f.Fail("publish_at", "portal.error.datetime")
	}
	until, err := m.parseLocal(f.Get("unpublish_at"))
	if err != nil {
		f.Fail("unpublish_at", "portal.error.datetime")
	}
	if !f.Valid() {
		m.editAgain(w, r, p, s, f, http.StatusBadRequest)
		return
	}
	if err := m.Publish(r.Context(), p.ID, at, until); err != nil {
		m.editAgain(w, r, p, s, f, m.failForm(f, err, "publish_at"))
		return
	}
	done := "portal.admin.published"
	if at != nil && at.After(m.now()) {
		done = "portal.admin.scheduled"
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/pages/%d?done=%s", p.ID, done), http.StatusSeeOther)
}

func (m *Module) adminRestore(w http.ResponseWriter, r *http.Request) {
	p, s := m.pageParam(w, r, PermPagesEdit)
	if p == nil {
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	n, _ := strconv.Atoi(f.Get("version"))
	if _, err := m.Restore(r.Context(), p.ID, n); err != nil {
		m.editAgain(w, r, p, s, f, m.failForm(f, err, "version"))
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/pages/%d?done=portal.admin.restored", p.ID), http.StatusSeeOther)
}

func (m *Module) adminMove(w http.ResponseWriter, r *http.Request) {
	p, s := m.pageParam(w, r, PermPagesEdit)
	if p == nil {
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	parent, _ := strconv.ParseInt(f.Get("parent"), 10, 64)
	pos, _ := strconv.Atoi(f.Get("position"))
	if err := m.MovePage(r.Context(), p.ID, parent, pos); err != nil {
		m.editAgain(w, r, p, s, f, m.failForm(f, err, "parent"))
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/pages/%d?done=portal.admin.moved", p.ID), http.StatusSeeOther)
}

func (m *Module) adminDelete(w http.ResponseWriter, r *http.Request) {
	p, s := m.pageParam(w, r, PermPagesEdit)
	if p == nil {
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	if err := m.DeletePage(r.Context(), p.ID); err != nil {
		m.editAgain(w, r, p, s, f, m.failForm(f, err, "delete"))
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/sites/%d/pages?done=portal.admin.deleted", s.ID), http.StatusSeeOther)
}

func (m *Module) renderNewsAdmin(w http.ResponseWriter, r *http.Request, s *Site, f *web.Form, status int, flash string) {
	news, err := siteNews(r.Context(), m.db.Read(), s.ID, m.now().Add(100*365*24*time.Hour), 100, 0)
	if err != nil {
		m.fail(w, r, http.StatusInternalServerError, "portal.error.internal")
		return
	}
	var own []*News
	for _, n := range news {
		if n.SiteID == s.ID {
			own = append(own, n)
		}
	}
	var others []map[string]string
	for _, o := range m.st.Load().sites {
		if o.OrgID == s.OrgID && o.ID != s.ID {
			others = append(others, map[string]string{"Value": strconv.FormatInt(o.ID, 10), "Label": o.Name})
		}
	}
	if f == nil {
		f = web.NewForm(url.Values{"published": {"on"}})
	}
	m.views.Render(w, r, web.Page{Name: "portal/admin_news.html", Layout: "backoffice", Title: "portal.admin.news", Status: status,
		Form: f, Flash: flash, Data: map[string]any{"Site": s, "News": own, "Others": others}})
}

func (m *Module) adminNews(w http.ResponseWriter, r *http.Request) {
	if s := m.siteParam(w, r, PermNewsEdit); s != nil {
		m.renderNewsAdmin(w, r, s, nil, 0, doneKey(r))
	}
}

func (m *Module) adminNewsSave(w http.ResponseWriter, r *http.Request) {
	s := m.siteParam(w, r, PermNewsEdit)
	if s == nil {
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	id, _ := strconv.ParseInt(f.Get("id"), 10, 64)
	var shared []int64
	for _, v := range f.Values["shared"] {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			shared = append(shared, n)
		}
	}
	var tags []string
	for _, t := range strings.Split(f.Get("tags"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	img, _ := strconv.ParseInt(f.Get("image"), 10, 64)
	in := NewsInput{Slug: f.Get("slug"), Title: f.Get("title"), Summary: f.Get("summary"), Body: f.Values.Get("body"), ImageID: img,
		Tags: tags, Published: f.Get("published") != "", SharedWith: shared}
	if unsafeHTML.MatchString(in.Body) {
		f.Fail("body", "portal.error.unsafe_html")
		m.renderNewsAdmin(w, r, s, f, http.StatusBadRequest, "")
		return
	}
	if _, err := m.SaveNews(r.Context(), s.ID, id, in); err != nil {
		m.renderNewsAdmin(w, r, s, f, m.failForm(f, err, "title"), "")
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/sites/%d/news?done=portal.admin.saved", s.ID), http.StatusSeeOther)
}

func (m *Module) renderMediaAdmin(w http.ResponseWriter, r *http.Request, s *Site, f *web.Form, status int, flash string) {
	items, err := listMedia(r.Context(), m.db.Read(), s.ID, "")
	if err != nil {
		m.fail(w, r, http.StatusInternalServerError, "portal.error.internal")
		return
	}
	type row struct {
		M        *Media
		URL      string
		Type     string
		Size     string
		Srcset   string
		ThumbURL string
	}
	var rows []row
	for _, it := range items {
		rw := row{M: it, URL: m.mediaURL(it, 0), Type: typeName(it.MIME), Size: fileSize(it.Size, m.lang(r, s)), Srcset: m.srcset(it)}
		if it.Kind == "image" && len(it.Variants) > 0 {
			rw.ThumbURL = m.mediaURL(it, it.Variants[0])
		}
		rows = append(rows, rw)
	}
	if f == nil {
		f = web.NewForm(nil)
	}
	m.views.Render(w, r, web.Page{Name: "portal/admin_media.html", Layout: "backoffice", Title: "portal.admin.media", Status: status,
		Form: f, Flash: flash, Data: map[string]any{"Site": s, "Items": rows, "Max": fileSize(MaxUpload, m.lang(r, s))}})
}

func (m *Module) adminMedia(w http.ResponseWriter, r *http.Request) {
	if s := m.siteParam(w, r, PermMediaManage); s != nil {
		m.renderMediaAdmin(w, r, s, nil, 0, doneKey(r))
	}
}

func (m *Module) adminMediaUpload(w http.ResponseWriter, r *http.Request) {
	s := m.siteParam(w, r, PermMediaManage)
	if s == nil {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxUpload+1<<20)
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		f := web.NewForm(nil)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			f.Fail("file", "portal.error.file_too_large", "max", fileSize(MaxUpload, "fr"))
			m.renderMediaAdmin(w, r, s, f, http.StatusRequestEntityTooLarge, "")
			return
		}
		f.Fail("file", "portal.error.file_empty")
		m.renderMediaAdmin(w, r, s, f, http.StatusBadRequest, "")
		return
	}
	f := web.NewForm(r.MultipartForm.Value)
	file, _, err := r.FormFile("file")
	if err != nil {
		f.Fail("file", "portal.error.file_empty")
		m.renderMediaAdmin(w, r, s, f, http.StatusBadRequest, "")
		return
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, MaxUpload+1))
	if err != nil {
		f.Fail("file", "portal.error.file_empty")
		m.renderMediaAdmin(w, r, s, f, http.StatusBadRequest, "")
		return
	}
	if _, err := m.Upload(r.Context(), s.ID, f.Get("title"), data); err != nil {
		m.renderMediaAdmin(w, r, s, f, m.failForm(f, err, "file"), "")
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/sites/%d/media?done=portal.admin.uploaded", s.ID), http.StatusSeeOther)
}

// doneKey is the confirmation shown after a redirect; only the portal's own keys are taken.
func doneKey(r *http.Request) string {
	if k := r.URL.Query().Get("done"); strings.HasPrefix(k, "portal.admin.") {
		return k
	}
	return ""
}
