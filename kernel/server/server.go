// Package server runs the Parvis lifecycle: open the database, then for every module —
// the kernel's built-in parts first, then the registered modules — provision → validate →
// declare → migrate → mount routes → start; a failure stops, in reverse order, what had
// already started. It then serves HTTP until its context ends, finishing requests in flight.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// Options adjust a server for tests and commands.
type Options struct {
	Clock kernel.Clock
	// NoStart builds and migrates without starting modules' background work (CLI commands).
	NoStart bool
	// NoMigrate skips migrations (doctor, readiness checks of a fresh binary).
	NoMigrate bool
	// Modules replaces the registry's list (tests of the lifecycle itself).
	Modules []kernel.Info
}

// Instance is one provisioned module.
type Instance struct {
	Info   kernel.Info
	Module kernel.Module
	Env    *kernel.Env
	Parts  kernel.Parts
}

// Server is a running Parvis.
type Server struct {
	Config    *config.Config
	Log       *slog.Logger
	DB        *store.DB
	I18n      *i18n.Bundle
	Views     *web.Views
	Assets    *web.Assets
	Modules   []*Instance
	Perms     map[string]kernel.Permission
	PermOwner map[string]string
	Routes    []RouteInfo
	Menu      []kernel.MenuItem
	Handler   http.Handler
	Clock     kernel.Clock

	mux     *http.ServeMux
	started []*Instance
	csrf    *web.CSRF
	auth    kernel.Authorizer
	http    *http.Server
	metrics *Metrics

	siteNamer  SiteNamer
	siteStyler SiteStyler
}

// RouteInfo is a mounted route, for the permission walk test and `parvis routes`.
type RouteInfo struct {
	Module  string
	Area    kernel.Area
	Method  string
	Pattern string
	Perm    string
}

// Build opens the database and brings every module up to (not including) Start.
func Build(ctx context.Context, cfg *config.Config, log *slog.Logger, opt Options) (s *Server, err error) {
	if opt.Clock == nil {
		opt.Clock = kernel.SystemClock{}
	}
	if cfg.Location == nil {
		cfg.Location, _ = time.LoadLocation("Europe/Paris")
	}
	if err := cfg.EnsureSecret(); err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	s = &Server{Config: cfg, Log: log, DB: db, I18n: i18n.New(), Assets: web.NewAssets(), Clock: opt.Clock,
		Perms: map[string]kernel.Permission{}, PermOwner: map[string]string{}, mux: http.NewServeMux()}
	s.Views = web.NewViews(s.I18n, s.Assets, log, cfg.Location, layoutFS())
	s.csrf = web.NewCSRF(cfg.SecretKey, cfg.Secure())
	s.Views.CSRF = s.csrf.Token
	s.Views.Lang = s.lang
	s.Views.Chrome = s.chrome

	// The kernel's own strings, templates and assets.
	if err := s.I18n.Load("kernel", kernelLocales()); err != nil {
		return nil, err
	}
	if err := s.Assets.Add("kernel", kernelStatic()); err != nil {
		return nil, err
	}

	s.metrics = newMetrics(s)
	services := kernel.NewEnvServices()
	workers := river.NewWorkers()
	infos := kernel.Registered()
	if opt.Modules != nil {
		infos = append([]kernel.Info(nil), opt.Modules...)
		kernel.SortInfos(infos)
		if err := kernel.CheckIDs(infos); err != nil {
			return nil, err
		}
	}
	for _, info := range infos {
		m := info.New()
		env := &kernel.Env{Module: info.ID, Config: cfg, DB: db, Log: log.With("module", info.ID),
			Clock: opt.Clock, I18n: s.I18n, Views: s.Views, Workers: workers, Metrics: s.metrics.Registry}
		env.SetServices(services)
		// Core services published by the built-in parts provisioned before this one.
		env.Auth, _ = kernel.Service[kernel.Authorizer](env)
		env.Audit, _ = kernel.Service[kernel.Auditor](env)
		env.Jobs, _ = kernel.Service[kernel.Jobs](env)
		env.Mail, _ = kernel.Service[kernel.Mailer](env)
		if p, ok := m.(kernel.Provisioner); ok {
			if err := p.Provision(ctx, env); err != nil {
				return nil, fmt.Errorf("module %s: provision: %w", info.ID, err)
			}
		}
		s.Modules = append(s.Modules, &Instance{Info: info, Module: m, Env: env})
	}
	for _, in := range s.Modules {
		if v, ok := in.Module.(kernel.Validator); ok {
			if err := v.Validate(); err != nil {
				return nil, fmt.Errorf("module %s: %w", in.Info.ID, err)
			}
		}
		if d, ok := in.Module.(kernel.Declarer); ok {
			in.Parts = d.Declare()
		}
	}
	if len(s.Modules) > 0 {
		// Services are all published once every module is provisioned: look them up once,
		// not on every page.
		env := s.Modules[0].Env
		s.auth = env.Auth
		if a, ok := kernel.Service[kernel.Authorizer](env); ok {
			s.auth = a
		}
		s.siteNamer, _ = kernel.Service[SiteNamer](env)
		s.siteStyler, _ = kernel.Service[SiteStyler](env)
	}
	if err := s.collect(); err != nil {
		return nil, err
	}
	if !opt.NoMigrate {
		if err := s.Migrate(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.mount(); err != nil {
		return nil, err
	}
	return s, nil
}

// collect checks and gathers declarations: permissions, locales, templates, assets, menu.
func (s *Server) collect() error {
	for _, in := range s.Modules {
		id := in.Info.ID
		for _, p := range in.Parts.Permissions {
			if !kernel.ValidPermissionName(p.Name) {
				return fmt.Errorf("module %s: malformed permission name %q", id, p.Name)
			}
			if prev, dup := s.PermOwner[p.Name]; dup {
				return fmt.Errorf("permission %q declared by both %s and %s", p.Name, prev, id)
			}
			s.PermOwner[p.Name] = id
			s.Perms[p.Name] = p
		}
		if in.Parts.Locales != nil {
			if err := s.I18n.Load(id, in.Parts.Locales); err != nil {
				return err
			}
		}
		if in.Parts.Static != nil {
			if err := s.Assets.Add(id, in.Parts.Static); err != nil {
				return fmt.Errorf("module %s: static files: %w", id, err)
			}
		}
	}
	// Templates after every asset and locale is known.
	if err := s.Views.AddPages("kernel", kernelPages()); err != nil {
		return err
	}
	for _, in := range s.Modules {
		if in.Parts.Templates != nil {
			if err := s.Views.AddPages(in.Info.ID, in.Parts.Templates); err != nil {
				return err
			}
		}
		for _, mi := range in.Parts.Menu {
			if _, ok := s.Perms[mi.Perm]; !ok && mi.Perm != kernel.PermAnyAgent {
				return fmt.Errorf("module %s: menu entry %s names undeclared permission %q", in.Info.ID, mi.Path, mi.Perm)
			}
			s.Menu = append(s.Menu, mi)
		}
	}
	sort.SliceStable(s.Menu, func(a, b int) bool { return s.Menu[a].Order < s.Menu[b].Order })
	all := make([]kernel.Declared, len(s.Modules))
	for i, in := range s.Modules {
		all[i] = kernel.Declared{ID: in.Info.ID, Parts: in.Parts}
	}
	for _, in := range s.Modules {
		if a, ok := in.Module.(kernel.Assembler); ok {
			if err := a.Assemble(all); err != nil {
				return fmt.Errorf("module %s: %w", in.Info.ID, err)
			}
		}
	}
	return nil
}

// Migrate applies every module's pending migrations, in module order.
func (s *Server) Migrate(ctx context.Context) error {
	for _, in := range s.Modules {
		if in.Parts.Migrations != nil {
			n, err := store.Migrate(ctx, s.DB, in.Info.ID, in.Parts.Migrations, nil)
			if err != nil {
				return err
			}
			if n > 0 {
				s.Log.Info("migrations applied", "module", in.Info.ID, "count", n)
			}
		}
		if m, ok := in.Module.(kernel.Migrator); ok {
			if err := m.Migrate(ctx); err != nil {
				return fmt.Errorf("migrating %s: %w", in.Info.ID, err)
			}
		}
	}
	return nil
}

// Pending counts migrations not yet applied, over all modules (for /readyz and doctor).
func (s *Server) Pending(ctx context.Context) (int, error) {
	total := 0
	for _, in := range s.Modules {
		if in.Parts.Migrations != nil {
			n, err := store.Pending(ctx, s.DB, in.Info.ID, in.Parts.Migrations)
			if err != nil {
				return 0, err
			}
			total += n
		}
		if m, ok := in.Module.(kernel.Migrator); ok {
			n, err := m.Pending(ctx)
			if err != nil {
				return 0, err
			}
			total += n
		}
	}
	return total, nil
}

// mount registers every route, refusing duplicates and back-office routes without a
// declared permission, and builds the middleware chain.
func (s *Server) mount() (err error) {
	seen := map[string]string{}
	var current RouteInfo
	defer func() {
		if p := recover(); p != nil {
			// net/http panics on conflicting patterns; name both modules.
			msg := fmt.Sprint(p)
			other := ""
			for _, r := range s.Routes {
				if strings.Contains(msg, `"`+r.Method+" "+r.Pattern+`"`) && r != current {
					other = r.Module
				}
			}
			err = fmt.Errorf("route %s %s of module %s conflicts with a route of module %s: %s", current.Method, current.Pattern, current.Module, other, msg)
		}
	}()
	for _, in := range s.Modules {
		for _, rt := range in.Parts.Routes {
			ri := RouteInfo{Module: in.Info.ID, Area: rt.Area, Method: rt.Method, Pattern: rt.Pattern, Perm: rt.Perm}
			current = ri
			key := rt.Method + " " + rt.Pattern
			if prev, dup := seen[key]; dup {
				return fmt.Errorf("route %s declared by both %s and %s", key, prev, in.Info.ID)
			}
			seen[key] = in.Info.ID
			if rt.Handler == nil {
				return fmt.Errorf("module %s: route %s has no handler", in.Info.ID, key)
			}
			h := rt.Handler
			switch rt.Area {
			case kernel.BackOffice:
				if !strings.HasPrefix(rt.Pattern, "/admin/") {
					return fmt.Errorf("module %s: back-office route %s must be under /admin/", in.Info.ID, key)
				}
				if err := s.checkPerm(in.Info.ID, key, rt.Perm); err != nil {
					return err
				}
				h = s.requireAgent(rt.Perm, false, h)
			case kernel.API:
				if rt.Perm != "" {
					if err := s.checkPerm(in.Info.ID, key, rt.Perm); err != nil {
						return err
					}
					h = s.requireAgent(rt.Perm, true, h)
				}
			}
			s.mux.Handle(key, h)
			s.Routes = append(s.Routes, ri)
		}
	}
	if _, ok := seen["GET /{$}"]; !ok {
		// Until a module (the portal) provides a home page, the kernel shows a plain one.
		s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			s.Views.Render(w, r, web.Page{Name: "kernel/home.html", Title: "kernel.home.title"})
		})
	}
	current = RouteInfo{Module: "kernel", Method: "GET", Pattern: "/static/"}
	s.mux.Handle("GET /static/", s.Assets)
	s.mountOps()
	s.mux.Handle("/", http.HandlerFunc(s.notFound))

	h := web.RecordPattern(s.mux)
	for i := len(s.Modules) - 1; i >= 0; i-- {
		if mw, ok := s.Modules[i].Module.(interface {
			Middleware(http.Handler) http.Handler
		}); ok {
			h = mw.Middleware(h)
		}
	}
	s.csrf.OnFail = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Error(w, r, http.StatusForbidden, "kernel.error.csrf")
	})
	h = s.csrf.Protect(h)
	h = web.LimitBody(s.Config.BodyLimit, h)
	h = securityHeaders(s.Config.Secure(), h)
	h = web.Recover(s.Log, h)
	h = web.Observe(h, s.observe)
	h = web.RequestID(h)
	s.Handler = h
	return nil
}

func (s *Server) checkPerm(module, key, perm string) error {
	if perm == "" {
		return fmt.Errorf("module %s: route %s declares no permission (back-office routes deny by default)", module, key)
	}
	if _, ok := s.Perms[perm]; !ok && perm != kernel.PermAnyAgent {
		return fmt.Errorf("module %s: route %s names undeclared permission %q", module, key, perm)
	}
	return nil
}

// requireAgent lets a request through only for a signed-in agent holding perm on at least
// one resource; the handler then narrows to the agent's scope.
func (s *Server) requireAgent(perm string, api bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := kernel.AgentFrom(r.Context())
		if a == nil {
			if api {
				web.WriteJSONError(w, http.StatusUnauthorized, "unauthenticated", "sign in or send a valid API token", "")
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/admin/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.Error(w, r, http.StatusUnauthorized, "kernel.error.unauthenticated")
			return
		}
		if perm != kernel.PermAnyAgent && (s.auth == nil || !s.auth.Can(r.Context(), a, perm, nil)) {
			if api {
				web.WriteJSONError(w, http.StatusForbidden, "forbidden", "missing permission "+perm, "")
				return
			}
			s.Error(w, r, http.StatusForbidden, "kernel.error.forbidden")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Start starts the modules' background work; on a failure it stops those already started.
func (s *Server) Start(ctx context.Context) error {
	for _, in := range s.Modules {
		if st, ok := in.Module.(kernel.Starter); ok {
			if err := st.Start(ctx); err != nil {
				stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				s.stop(stopCtx)
				cancel()
				return fmt.Errorf("module %s: start: %w", in.Info.ID, err)
			}
		}
		s.started = append(s.started, in)
	}
	return nil
}

func (s *Server) stop(ctx context.Context) {
	for i := len(s.started) - 1; i >= 0; i-- {
		in := s.started[i]
		if st, ok := in.Module.(kernel.Stopper); ok {
			if err := st.Stop(ctx); err != nil {
				s.Log.Error("stop", "module", in.Info.ID, "err", err)
			}
		}
	}
	s.started = nil
}

// Close stops the modules and closes the database.
func (s *Server) Close(ctx context.Context) error {
	s.stop(ctx)
	return s.DB.Close()
}

// Serve listens on ln until ctx ends, then shuts down gracefully: requests in flight finish
// (up to 20 s), background work stops, the database closes.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.http = &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.Log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := s.http.Shutdown(sctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, s.Close(sctx))
}

// ModuleFS lists the migrations of every module (for `parvis migrate` and doctor).
func (s *Server) ModuleFS() map[string]fs.FS {
	out := map[string]fs.FS{}
	for _, in := range s.Modules {
		if in.Parts.Migrations != nil {
			out[in.Info.ID] = in.Parts.Migrations
		}
	}
	return out
}
