package theme

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

func init() { kernel.Register(&Module{}) }

//go:embed migrations templates locales
var files embed.FS

// PermEdit lets an agent change the look of their organisation.
const PermEdit = "kernel.theme.edit"

// DefaultOrg is the organisation whose look public pages wear until the portal picks one
// per site.
const DefaultOrg = 1

// cacheTTL bounds how long a node keeps a theme another node may have changed; changes
// made on this node are seen at once.
const cacheTTL = 30 * time.Second

// Module serves the look of each organisation.
type Module struct {
	db    *store.DB
	views *web.Views
	audit kernel.Auditor
	clock kernel.Clock
	log   *slog.Logger
	cfg   *config.Config

	mu    sync.Mutex
	cache map[int64]compiled

	// changed is fired on this node after an organisation's look changed (its ID); other
	// nodes see the change within cacheTTL.
	changed kernel.Hook[int64]
}

// OnChange registers f, called after an organisation's look was changed on this node, once
// the change is committed: modules that embed the look in what they cache (the portal's
// page cache) drop it then. An error from f is logged, never undoes the change.
func (m *Module) OnChange(f func(ctx context.Context, org int64) error) { m.changed.On(f) }

// changedOn tells the subscribers that org's look changed (after the commit).
func (m *Module) changedOn(ctx context.Context, org int64) {
	m.forget(org)
	if err := m.changed.Fire(ctx, org); err != nil {
		m.log.Error("theme change subscribers", "org", org, "err", err)
	}
}

// compiled is a theme with its stylesheet, ready to serve.
type compiled struct {
	theme Theme
	css   []byte
	hash  string
	at    time.Time
}

var (
	_ kernel.Module      = (*Module)(nil)
	_ kernel.Provisioner = (*Module)(nil)
	_ kernel.Declarer    = (*Module)(nil)
	_ server.SiteNamer   = (*Module)(nil)
	_ server.SiteStyler  = (*Module)(nil)
)

// Info implements kernel.Module.
func (*Module) Info() kernel.Info {
	return kernel.Info{ID: "kernel.theme", Version: "1.0.0", Title: "kernel.theme.title", Builtin: true, Priority: 60,
		New: func() kernel.Module { return &Module{} }}
}

// Provision keeps the kernel services and publishes the site's name and look to layouts.
func (m *Module) Provision(ctx context.Context, env *kernel.Env) error {
	m.db, m.views, m.audit, m.clock, m.log, m.cfg = env.DB, env.Views, env.Audit, env.Clock, env.Log, env.Config
	m.cache = map[int64]compiled{}
	kernel.Provide[server.SiteNamer](env, m)
	kernel.Provide[server.SiteStyler](env, m)
	return nil
}

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err)
	}
	return f
}

// Declare lists what the module brings.
func (m *Module) Declare() kernel.Parts {
	return kernel.Parts{
		Migrations:  sub("migrations"),
		Templates:   sub("templates"),
		Locales:     sub("locales"),
		Permissions: []kernel.Permission{{Name: PermEdit, Title: "kernel.theme.perm.edit"}},
		Routes: []kernel.Route{
			{Area: kernel.Public, Method: "GET", Pattern: "/theme.css", Handler: http.HandlerFunc(m.serveCSS), Name: "theme.css"},
			{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/theme", Perm: PermEdit, Handler: http.HandlerFunc(m.edit)},
			{Area: kernel.BackOffice, Method: "POST", Pattern: "/admin/theme", Perm: PermEdit, Handler: http.HandlerFunc(m.update)},
			{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/design", Perm: kernel.PermAnyAgent, Handler: http.HandlerFunc(m.design)},
		},
		Menu: []kernel.MenuItem{
			{Section: "kernel.menu.admin", Title: "kernel.theme.menu", Path: "/admin/theme", Perm: PermEdit, Order: 850},
			{Section: "kernel.menu.admin", Title: "kernel.theme.design.menu", Path: "/admin/design", Perm: kernel.PermAnyAgent, Order: 990},
		},
	}
}

// orgOf is the organisation whose look a request wears: the signed-in agent's, else the
// default organisation's.
func orgOf(r *http.Request) int64 {
	if a := kernel.AgentFrom(r.Context()); a != nil && a.OrgID != 0 {
		return a.OrgID
	}
	return DefaultOrg
}

// Theme returns the look of org, from the cache when fresh.
func (m *Module) Theme(ctx context.Context, org int64) (Theme, error) {
	c, err := m.compiled(ctx, org)
	return c.theme, err
}

func (m *Module) compiled(ctx context.Context, org int64) (compiled, error) {
	now := m.clock.Now()
	m.mu.Lock()
	c, ok := m.cache[org]
	m.mu.Unlock()
	if ok && now.Sub(c.at) < cacheTTL && now.Sub(c.at) >= 0 {
		return c, nil
	}
	t, _, err := load(ctx, m.db.Read(), org)
	if err != nil {
		return compiled{theme: Default()}, err
	}
	css := t.CSS(":root")
	c = compiled{theme: t, css: css, hash: Hash(css), at: now}
	m.mu.Lock()
	m.cache[org] = c
	m.mu.Unlock()
	return c, nil
}

func (m *Module) forget(org int64) {
	m.mu.Lock()
	delete(m.cache, org)
	m.mu.Unlock()
}

// SiteName implements server.SiteNamer.
func (m *Module) SiteName(r *http.Request) string {
	t, err := m.Theme(r.Context(), orgOf(r))
	if err != nil {
		m.log.Error("site name", "err", err)
	}
	return t.Name
}

// SiteStyle implements server.SiteStyler: the stylesheet URL carries the organisation and
// the content hash, so browsers cache it for good and fetch a new one after a change.
func (m *Module) SiteStyle(r *http.Request) server.SiteStyle {
	return m.OrgStyle(r.Context(), orgOf(r))
}

// OrgStyle is the look of org, for pages that belong to an organisation other than the
// visitor's (the portal's sites).
func (m *Module) OrgStyle(ctx context.Context, org int64) server.SiteStyle {
	c, err := m.compiled(ctx, org)
	if err != nil {
		m.log.Error("site style", "err", err)
		return server.SiteStyle{}
	}
	return server.SiteStyle{LogoURL: c.theme.LogoURL, CSSURL: "/theme.css?o=" + strconv.FormatInt(org, 10) + "&v=" + c.hash}
}

// Middleware remembers a language chosen with ?lang= in the parvis_lang cookie, so the
// choice sticks on the following pages.
func (m *Module) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "" { // most requests: no need to parse (and allocate) a query
			next.ServeHTTP(w, r)
			return
		}
		if l := i18n.Supported(r.URL.Query().Get("lang")); l != "" {
			if c, err := r.Cookie("parvis_lang"); err != nil || c.Value != l {
				http.SetCookie(w, &http.Cookie{Name: "parvis_lang", Value: l, Path: "/", MaxAge: 365 * 24 * 3600,
					HttpOnly: true, Secure: m.cfg != nil && m.cfg.Secure(), SameSite: http.SameSiteLaxMode})
			}
		}
		next.ServeHTTP(w, r)
	})
}
