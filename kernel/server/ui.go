package server

import (
	"io/fs"
	"net/http"
	"net/url"
	"strings"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/ui"
	"parvis.org/parvis/kernel/web"
)

func layoutFS() fs.FS      { return ui.Layouts() }
func kernelPages() fs.FS   { return ui.Pages() }
func kernelStatic() fs.FS  { return ui.Static() }
func kernelLocales() fs.FS { return ui.Locales() }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// lang picks the language: ?lang= (remembered in a cookie), the cookie, the signed-in
// agent's preference, Accept-Language, then the instance default.
func (s *Server) lang(r *http.Request) string {
	if r.URL.RawQuery != "" { // parsing an empty query still allocates
		if l := i18n.Supported(r.URL.Query().Get("lang")); l != "" {
			return l
		}
	}
	if c, err := r.Cookie("parvis_lang"); err == nil {
		if l := i18n.Supported(c.Value); l != "" {
			return l
		}
	}
	if a := kernel.AgentFrom(r.Context()); a != nil {
		if l := i18n.Supported(a.Lang); l != "" {
			return l
		}
	}
	if l := i18n.FromAcceptLanguage(r.Header.Get("Accept-Language")); l != "" {
		return l
	}
	if s.Config.Lang != "" {
		return s.Config.Lang
	}
	return i18n.Default
}

// Chrome is what layouts show around a page.
type Chrome struct {
	SiteName string
	OrgName  string
	Agent    *kernel.Agent
	Citizen  *kernel.Citizen
	Menu     []MenuLink
	// LogoURL and ThemeCSS come from the SiteStyler, when a module provides one.
	LogoURL  string
	ThemeCSS string
}

// MenuLink is a back-office menu entry the agent may follow.
type MenuLink struct {
	Title, Path string
	Current     bool
}

// SiteNamer lets the portal (or an organisation setting) name the site shown in layouts.
type SiteNamer interface {
	SiteName(r *http.Request) string
}

// SiteStyler gives layouts the organisation's look: its logo and theme stylesheet.
type SiteStyler interface {
	SiteStyle(r *http.Request) SiteStyle
}

// SiteStyle is the look of the site for one request.
type SiteStyle struct {
	LogoURL string // "" for none
	CSSURL  string // linked after the design system's stylesheet; "" for none
}

func (s *Server) chrome(r *http.Request) any {
	c := &Chrome{SiteName: "Parvis", Agent: kernel.AgentFrom(r.Context()), Citizen: kernel.CitizenFrom(r.Context())}
	if s.siteNamer != nil {
		c.SiteName = s.siteNamer.SiteName(r)
	}
	if s.siteStyler != nil {
		style := s.siteStyler.SiteStyle(r)
		c.LogoURL, c.ThemeCSS = style.LogoURL, style.CSSURL
	}
	if c.Agent != nil && strings.HasPrefix(r.URL.Path, "/admin") {
		for _, mi := range s.Menu {
			if mi.Perm == kernel.PermAnyAgent || (s.auth != nil && s.auth.Can(r.Context(), c.Agent, mi.Perm, nil)) {
				c.Menu = append(c.Menu, MenuLink{Title: mi.Title, Path: mi.Path,
					Current: r.URL.Path == mi.Path || (mi.Path != "/admin/" && strings.HasPrefix(r.URL.Path, mi.Path))})
			}
		}
	}
	return c
}

type errorData struct{ Message, Back string }

// Error renders a full error page with status and a translated message key.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, status int, key string) {
	layout, back := "public", "/"
	if strings.HasPrefix(r.URL.Path, "/admin") && kernel.AgentFrom(r.Context()) != nil {
		layout, back = "backoffice", "/admin/"
	}
	lang := s.lang(r)
	s.Views.Render(w, r, web.Page{Name: "kernel/error.html", Layout: layout, Status: status, Title: "kernel.error.title",
		Data: errorData{Message: s.I18n.T(lang, key), Back: back}})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		web.WriteJSONError(w, http.StatusNotFound, "not_found", "no such endpoint", "")
		return
	}
	s.Views.Render(w, r, web.Page{Name: "kernel/error.html", Status: http.StatusNotFound, Title: "kernel.error.not_found",
		Data: errorData{Message: s.I18n.T(s.lang(r), "kernel.error.not_found_text"), Back: "/"}})
}

// securityHeaders sets a strict CSP (no inline script or style), frame-ancestors 'none',
// a referrer policy, nosniff, and HSTS when served over HTTPS.
func securityHeaders(secure bool, next http.Handler) http.Handler {
	const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; " +
		"font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
	// Built once and assigned under canonical keys: Header.Set would canonicalise each key
	// and allocate each value on every request. Handlers replace values, never edit them.
	// (cap 1, so an Add elsewhere copies rather than appends into the shared array).
	type kv struct {
		k string
		v []string
	}
	hdrs := []kv{
		{"Content-Security-Policy", []string{csp}},
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"Referrer-Policy", []string{"strict-origin-when-cross-origin"}},
		{"X-Frame-Options", []string{"DENY"}},
		{"Permissions-Policy", []string{"camera=(self), geolocation=(self), microphone=()"}},
		{"Cross-Origin-Opener-Policy", []string{"same-origin"}},
	}
	if secure {
		hdrs = append(hdrs, kv{"Strict-Transport-Security", []string{"max-age=63072000; includeSubDomains"}})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, x := range hdrs {
			h[x.k] = x.v
		}
		next.ServeHTTP(w, r)
	})
}
