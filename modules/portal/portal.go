// Package portal is Parvis's front door: many sites per organisation (a city and its
// district town halls), each at its own host name or path prefix, with a page tree, layouts
// and zones filled with portlets, draft and published versions, news with an Atom feed,
// menus, site search, and a cache of rendered pages built for traffic peaks.
//
// Cached pages are dropped exactly when what they show changes: every change moves a
// per-site generation counter stored in the database, in the same transaction; this node
// reloads the counters after the commit, and on PostgreSQL the other nodes hear of it by
// LISTEN/NOTIFY (with a slow poll as a safety net). Scheduled publications need no message:
// a cached page expires at the next scheduled change of its site.
package portal

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
	"parvis.org/parvis/modules/portal/portlet"
)

func init() { kernel.Register(&Module{}) }

//go:embed migrations templates locales static
var files embed.FS

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err)
	}
	return f
}

// Permissions of the portal; all but sites.manage are scoped per site (by unit).
const (
	PermSitesManage = "portal.sites.manage"
	PermPagesEdit   = "portal.pages.edit"
	PermNewsEdit    = "portal.news.edit"
	PermMediaManage = "portal.media.manage"
)

// pollEvery is the safety net under NOTIFY: generations are re-read this often on
// PostgreSQL, so a lost notification delays a change by at most this much.
const pollEvery = 30 * time.Second

// Module is the portal.
type Module struct {
	// orgNamer is the service the portal replaced (the organisation theme), for pages outside any site.
	orgNamer server.SiteNamer
	db       *store.DB
	log      *slog.Logger
	clock    kernel.Clock
	views    *web.Views
	i18n     *i18n.Bundle
	auth     kernel.Authorizer
	auditor  kernel.Auditor
	cfg      envConfig

	portlets         map[string]portlet.Type
	portletOrder     []string
	catalogue        []kernel.CatalogueEntry
	catalogueSources []kernel.CatalogueSource

	st       atomic.Pointer[state]
	reloadMu sync.Mutex
	cache    *pageCache
	// notified counts cache notifications received from other nodes (for tests and metrics).
	notified atomic.Int64
	changed  chan struct{} // closed and replaced at each reload, for waiters

	stop chan struct{}
	done sync.WaitGroup
}

type envConfig struct {
	database, dataDir string
	baseURL           func() string
	demo              bool
}

var (
	_ kernel.Module      = (*Module)(nil)
	_ kernel.Provisioner = (*Module)(nil)
	_ kernel.Declarer    = (*Module)(nil)
	_ kernel.Assembler   = (*Module)(nil)
	_ kernel.Starter     = (*Module)(nil)
	_ kernel.Stopper     = (*Module)(nil)
	_ server.SiteNamer   = (*Module)(nil)
)

// Info implements kernel.Module.
func (*Module) Info() kernel.Info {
	return kernel.Info{ID: "portal", Version: "0.1.0", Title: "portal.title", New: func() kernel.Module { return &Module{} }}
}

// state is what the portal keeps of its sites in memory, replaced whole on each reload.
type state struct {
	sites []*Site
	byID  map[int64]*Site
}

// Provision keeps the kernel's services and publishes the site namer used by layouts.
func (m *Module) Provision(ctx context.Context, env *kernel.Env) error {
	m.db, m.log, m.clock, m.views, m.i18n = env.DB, env.Log, env.Clock, env.Views, env.I18n
	m.auth, m.auditor = env.Auth, env.Audit
	cfg := env.Config
	// A suite given to serve (--suite) brings its own content instead of the demo town.
	m.cfg = envConfig{database: cfg.Database, dataDir: cfg.DataDir, demo: cfg.Demo && cfg.Suite == "", baseURL: func() string { return cfg.BaseURL }}
	m.cache = newPageCache(64 << 20)
	m.changed = make(chan struct{})
	m.st.Store(&state{byID: map[int64]*Site{}})
	// The theme names the organisation's site; the portal names each site, over it.
	m.orgNamer, _ = kernel.Replace[server.SiteNamer](env, m)
	// Cached pages embed the organisation's look: drop them when it changes.
	if n, ok := m.orgNamer.(orgThemes); ok {
		n.OnChange(m.orgThemeChanged)
	}
	// The suites module installs and exports sites, pages and news through this.
	kernel.Provide[*Module](env, m)
	return nil
}

// Declare lists what the portal brings.
func (m *Module) Declare() kernel.Parts {
	bo := func(method, pattern, perm string, h http.HandlerFunc) kernel.Route {
		return kernel.Route{Area: kernel.BackOffice, Method: method, Pattern: pattern, Perm: perm, Handler: h}
	}
	ext := []kernel.Extension{{Point: kernel.PointResources, Value: kernel.ResourceSource(siteResources{m})}}
	for _, t := range builtinPortlets(m) {
		ext = append(ext, kernel.Extension{Point: kernel.PointPortlet, Value: t})
	}
	return kernel.Parts{
		Migrations: sub("migrations"),
		Templates:  sub("templates"),
		Locales:    sub("locales"),
		Static:     sub("static"),
		Permissions: []kernel.Permission{
			{Name: PermSitesManage, ResourceType: "site", Title: "portal.perm.sites_manage"},
			{Name: PermPagesEdit, ResourceType: "site", Title: "portal.perm.pages_edit"},
			{Name: PermNewsEdit, ResourceType: "site", Title: "portal.perm.news_edit"},
			{Name: PermMediaManage, ResourceType: "site", Title: "portal.perm.media_manage"},
		},
		Routes: []kernel.Route{
			{Area: kernel.Public, Method: "GET", Pattern: "/{$}", Handler: http.HandlerFunc(m.serve)},
			{Area: kernel.Public, Method: "GET", Pattern: "/{path...}", Handler: http.HandlerFunc(m.serve)},
			{Area: kernel.Public, Method: "GET", Pattern: "/_portal/theme/{site}", Handler: http.HandlerFunc(m.themeCSS)},
			{Area: kernel.Public, Method: "GET", Pattern: "/_portal/media/{id}/{file}", Handler: http.HandlerFunc(m.mediaFile)},
			bo("GET", "/admin/portal/", PermPagesEdit, m.adminSites),
			bo("GET", "/admin/portal/sites/new", PermSitesManage, m.adminSiteNew),
			bo("POST", "/admin/portal/sites/new", PermSitesManage, m.adminSiteCreate),
			bo("GET", "/admin/portal/sites/{site}/theme", PermSitesManage, m.adminTheme),
			bo("POST", "/admin/portal/sites/{site}/theme", PermSitesManage, m.adminThemeSave),
			bo("GET", "/admin/portal/sites/{site}/pages", PermPagesEdit, m.adminPages),
			bo("POST", "/admin/portal/sites/{site}/pages", PermPagesEdit, m.adminPageCreate),
			bo("POST", "/admin/portal/sites/{site}/menu", PermPagesEdit, m.adminMenuAdd),
			bo("POST", "/admin/portal/sites/{site}/menu/{link}/delete", PermPagesEdit, m.adminMenuDelete),
			bo("GET", "/admin/portal/pages/{page}", PermPagesEdit, m.adminPage),
			bo("POST", "/admin/portal/pages/{page}", PermPagesEdit, m.adminPageSave),
			bo("POST", "/admin/portal/pages/{page}/portlets", PermPagesEdit, m.adminPortletAdd),
			bo("POST", "/admin/portal/pages/{page}/portlets/{n}/delete", PermPagesEdit, m.adminPortletDelete),
			bo("GET", "/admin/portal/pages/{page}/preview", PermPagesEdit, m.adminPreview),
			bo("POST", "/admin/portal/pages/{page}/publish", PermPagesEdit, m.adminPublish),
			bo("POST", "/admin/portal/pages/{page}/restore", PermPagesEdit, m.adminRestore),
			bo("POST", "/admin/portal/pages/{page}/move", PermPagesEdit, m.adminMove),
			bo("POST", "/admin/portal/pages/{page}/delete", PermPagesEdit, m.adminDelete),
			bo("GET", "/admin/portal/sites/{site}/news", PermNewsEdit, m.adminNews),
			bo("POST", "/admin/portal/sites/{site}/news", PermNewsEdit, m.adminNewsSave),
			bo("GET", "/admin/portal/sites/{site}/blocks", PermPagesEdit, m.adminBlocks),
			bo("POST", "/admin/portal/sites/{site}/blocks", PermPagesEdit, m.adminBlockSave),
			bo("GET", "/admin/portal/sites/{site}/media", PermMediaManage, m.adminMedia),
			bo("POST", "/admin/portal/sites/{site}/media", PermMediaManage, m.adminMediaUpload),
		},
		Menu:       []kernel.MenuItem{{Section: "menu.content", Title: "portal.menu", Path: "/admin/portal/", Perm: PermPagesEdit, Order: 100}},
		Extensions: ext,
	}
}

// Assemble collects the portlet types and catalogue entries every module contributes.
func (m *Module) Assemble(all []kernel.Declared) error {
	m.portlets = map[string]portlet.Type{}
	owner := map[string]string{}
	for _, d := range all {
		types, err := kernel.Contributions[portlet.Type]([]kernel.Declared{d}, kernel.PointPortlet)
		if err != nil {
			return err
		}
		for _, t := range types {
			if prev, dup := owner[t.Key()]; dup {
				return fmt.Errorf("portlet type %q contributed by both %s and %s", t.Key(), prev, d.ID)
			}
			owner[t.Key()] = d.ID
			m.portlets[t.Key()] = t
			m.portletOrder = append(m.portletOrder, t.Key())
		}
	}
	entries, err := kernel.Contributions[any](all, kernel.PointCatalogue)
	if err != nil {
		return err
	}
	for _, e := range entries {
		switch v := e.(type) {
		case kernel.CatalogueEntry:
			m.catalogue = append(m.catalogue, v)
		case *kernel.CatalogueEntry:
			m.catalogue = append(m.catalogue, *v)
		case kernel.CatalogueSource:
			m.catalogueSources = append(m.catalogueSources, v)
		default:
			return fmt.Errorf("catalogue: a %T is neither a kernel.CatalogueEntry nor a kernel.CatalogueSource", e)
		}
	}
	sort.SliceStable(m.catalogue, func(a, b int) bool { return m.catalogue[a].Key < m.catalogue[b].Key })
	return nil
}

// Start loads the sites, creates the demo content on an empty database when asked, and on
// PostgreSQL listens for the changes other nodes make.
func (m *Module) Start(ctx context.Context) error {
	if err := os.MkdirAll(m.mediaDir(), 0o750); err != nil {
		return fmt.Errorf("media folder: %w", err)
	}
	if m.cfg.demo {
		if err := m.Demo(ctx); err != nil {
			return fmt.Errorf("demo content: %w", err)
		}
	}
	if err := m.reloadErr(ctx); err != nil {
		return err
	}
	m.stop = make(chan struct{})
	m.done.Add(1)
	go m.background()
	return nil
}

// Stop ends the background work.
func (m *Module) Stop(ctx context.Context) error {
	if m.stop == nil {
		return nil
	}
	close(m.stop)
	m.done.Wait()
	m.stop = nil
	return nil
}

func (m *Module) mediaDir() string { return filepath.Join(m.cfg.dataDir, "portal", "media") }

// background applies due schedules (so the search index and menus follow them) and, on
// PostgreSQL, listens for other nodes' changes.
func (m *Module) background() {
	defer m.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-m.stop; cancel() }()
	if m.db.Dialect == store.Postgres {
		m.done.Add(1)
		go m.listen(ctx)
	}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := m.ApplyDue(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("scheduled publications", "err", err)
			}
			m.reload(ctx)
		}
	}
}

// listen keeps a connection LISTENing on portal_cache, reconnecting after failures (and
// reloading then, since notifications sent meanwhile are lost).
func (m *Module) listen(ctx context.Context) {
	defer m.done.Done()
	backoff := time.Second
	for ctx.Err() == nil {
		err := m.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		m.log.Warn("cache notifications: connection lost, retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (m *Module) listenOnce(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, m.cfg.database)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN portal_cache"); err != nil {
		return err
	}
	m.reload(ctx)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		m.notified.Add(1)
		m.log.Debug("cache notification", "payload", n.Payload)
		m.reload(ctx)
	}
}

func (m *Module) reload(ctx context.Context) {
	if err := m.reloadErr(ctx); err != nil && !errors.Is(err, context.Canceled) {
		m.log.Error("reloading sites", "err", err)
	}
}

// reloadErr re-reads the sites; pages cached under an older generation of their site are
// thereby stale and dropped at their next request.
func (m *Module) reloadErr(ctx context.Context) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	sites, err := listSites(ctx, m.db.Read())
	if err != nil {
		return err
	}
	st := &state{sites: sites, byID: make(map[int64]*Site, len(sites))}
	for _, s := range sites {
		st.byID[s.ID] = s
	}
	// Longest prefixes first, so /mairie-11 wins over the root site.
	sort.SliceStable(st.sites, func(a, b int) bool { return len(st.sites[a].Prefix) > len(st.sites[b].Prefix) })
	m.st.Store(st)
	close(m.changed)
	m.changed = make(chan struct{})
	return nil
}

// WaitGeneration waits until this node has seen generation gen (or later) of a site: for
// tests of several nodes, and for tools that must see their change applied everywhere.
func (m *Module) WaitGeneration(ctx context.Context, siteID, gen int64) error {
	for {
		m.reloadMu.Lock()
		ch := m.changed
		m.reloadMu.Unlock()
		if s := m.st.Load().byID[siteID]; s != nil && s.Generation >= gen {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Notified reports how many cache notifications this node has received from PostgreSQL.
func (m *Module) Notified() int64 { return m.notified.Load() }

// ApplyDue makes scheduled publications and unpublications that came due durable (pages
// already show them from their due time; this keeps the search index and history right).
func (m *Module) ApplyDue(ctx context.Context) error {
	now := m.now()
	rows, err := m.db.Read().QueryContext(ctx, `SELECT id FROM portal_pages
		WHERE (scheduled_version > 0 AND publish_at <= ?) OR (unpublish_at IS NOT NULL AND unpublish_at <= ?)`, now, now)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		err := m.write(ctx, func(tx *store.Tx) error {
			p, err := getPage(ctx, tx, id)
			if err != nil {
				return err
			}
			live := p.Live(now)
			if _, err := tx.ExecContext(ctx, `UPDATE portal_pages SET published_version = ?, scheduled_version = CASE WHEN ? THEN 0 ELSE scheduled_version END,
				publish_at = CASE WHEN ? THEN NULL ELSE publish_at END, unpublish_at = CASE WHEN ? THEN NULL ELSE unpublish_at END WHERE id = ?`,
				live, p.ScheduledVersion > 0 && p.PublishAt != nil && !now.Before(*p.PublishAt),
				p.ScheduledVersion > 0 && p.PublishAt != nil && !now.Before(*p.PublishAt),
				p.UnpublishAt != nil && !now.Before(*p.UnpublishAt), id); err != nil {
				return err
			}
			if err := m.reindexPage(ctx, tx, id, now); err != nil {
				return err
			}
			return bump(ctx, tx, p.SiteID)
		})
		if err != nil {
			return fmt.Errorf("page %d: %w", id, err)
		}
	}
	return nil
}

// orgThemes is what the portal uses of the organisation theme (kernel.theme): its look for
// a site's organisation, and a notification when it changes.
type orgThemes interface {
	OrgStyle(ctx context.Context, org int64) server.SiteStyle
	OnChange(f func(ctx context.Context, org int64) error)
}

// orgThemeChanged moves the generation of every site of org, so their cached pages go
// (on every node: the bump notifies the others).
func (m *Module) orgThemeChanged(ctx context.Context, org int64) error {
	var ids []int64
	for _, s := range m.Sites(ctx) {
		if s.OrgID == org {
			ids = append(ids, s.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return m.write(ctx, func(tx *store.Tx) error { return bump(ctx, tx, ids...) })
}

// orgStyle is the look of a site's organisation (empty without the theme module).
func (m *Module) orgStyle(ctx context.Context, org int64) server.SiteStyle {
	if t, ok := m.orgNamer.(orgThemes); ok {
		return t.OrgStyle(ctx, org)
	}
	return server.SiteStyle{}
}

// SiteName implements server.SiteNamer: kernel pages shown on a site carry its name; the
// back office and pages outside every site carry the organisation's (from the theme).
func (m *Module) SiteName(r *http.Request) string {
	if p := r.URL.Path; p != "/admin" && !strings.HasPrefix(p, "/admin/") {
		if s, _ := m.resolve(r); s != nil {
			return s.Name
		}
	}
	if m.orgNamer != nil {
		return m.orgNamer.SiteName(r)
	}
	return "Parvis"
}

// resolve finds the site a request is for and the path inside it ("/" for its home). An
// unknown host, or a path outside every site of the host, gives nil.
func (m *Module) resolve(r *http.Request) (*Site, string) {
	host := strings.ToLower(r.Host)
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
		host = h
	}
	main := m.isMainHost(host, r.Host)
	for _, s := range m.st.Load().sites {
		if s.Host != "" && s.Host != host {
			continue
		}
		if s.Host == "" && !main {
			continue
		}
		p := r.URL.Path
		if s.Prefix == "" {
			return s, p
		}
		if p == s.Prefix || strings.HasPrefix(p, s.Prefix+"/") {
			rest := strings.TrimPrefix(p, s.Prefix)
			if rest == "" {
				rest = "/"
			}
			return s, rest
		}
	}
	return nil, ""
}

// isMainHost: sites without a host name are served on the instance's own host (from the
// base URL) and on loopback names, never on a host nobody configured.
func (m *Module) isMainHost(host, hostPort string) bool {
	switch host {
	case "localhost", "127.0.0.1", "[::1]", "::1":
		return true
	}
	base := strings.ToLower(m.cfg.baseURL())
	base = strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://")
	base, _, _ = strings.Cut(base, "/")
	if h, _, ok := strings.Cut(base, ":"); ok {
		return h == host
	}
	return base == host || base == strings.ToLower(hostPort)
}

// Sites returns the sites as this node last loaded them (longest prefixes first).
func (m *Module) Sites(ctx context.Context) []*Site {
	m.ensureLoaded(ctx)
	return append([]*Site(nil), m.st.Load().sites...)
}
