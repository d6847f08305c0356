// Package web is the kernel's HTTP toolkit: template rendering with the design system's
// layouts and partials, forms with an error summary, content-hashed static assets, request
// helpers and middleware. It knows nothing of users or modules; the server fills Chrome.
package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"parvis.org/parvis/kernel/i18n"
)

// Views renders pages. Every page template is parsed at start-up together with the kernel's
// layouts and partials, so a broken template stops start-up instead of failing a request.
type Views struct {
	I18n   *i18n.Bundle
	Assets *Assets
	Log    *slog.Logger
	// Chrome returns what layouts show around a page (signed-in person, menu, site theme).
	Chrome func(r *http.Request) any
	// CSRF returns the token to embed in forms for this request.
	CSRF func(r *http.Request) string
	// Lang returns the language of this request.
	Lang func(r *http.Request) string
	// Location is the time zone for dates shown to people.
	Location *time.Location

	mu    sync.RWMutex
	base  []fs.FS // layouts and partials
	pages map[string]*template.Template
	bufs  sync.Pool
}

// NewViews returns Views whose layouts and partials come from base (the kernel's templates).
func NewViews(bundle *i18n.Bundle, assets *Assets, log *slog.Logger, loc *time.Location, base ...fs.FS) *Views {
	return &Views{I18n: bundle, Assets: assets, Log: log, Location: loc, base: base, pages: map[string]*template.Template{},
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// Funcs available in every template, besides the View methods.
func (v *Views) funcs() template.FuncMap {
	return template.FuncMap{
		"dict": func(kv ...any) map[string]any {
			m := make(map[string]any, len(kv)/2)
			for i := 0; i+1 < len(kv); i += 2 {
				m[fmt.Sprint(kv[i])] = kv[i+1]
			}
			return m
		},
		"list":  func(xs ...any) []any { return xs },
		"join":  strings.Join,
		"lower": strings.ToLower,
		"add":   func(a, b int) int { return a + b },
	}
}

// AddPages parses every *.html file of fsys (recursively) as a page named
// "<module>/<path>". Files under the top-level "partials" folder are not pages: they are
// parsed into every page of the module, for templates its pages share (a question, a card).
func (v *Views) AddPages(module string, fsys fs.FS) error {
	var names, partials []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".html") {
			if strings.HasPrefix(p, "partials/") {
				partials = append(partials, p)
			} else {
				names = append(names, p)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("templates of %s: %w", module, err)
	}
	sort.Strings(names)
	for _, n := range names {
		t := template.New(n).Funcs(v.funcs())
		for _, b := range v.base {
			if _, err := t.ParseFS(b, "*.html"); err != nil {
				return fmt.Errorf("kernel layouts: %w", err)
			}
		}
		if len(partials) > 0 {
			if _, err := t.ParseFS(fsys, partials...); err != nil {
				return fmt.Errorf("partials of %s: %w", module, err)
			}
		}
		if _, err := t.ParseFS(fsys, n); err != nil {
			return fmt.Errorf("template %s/%s: %w", module, n, err)
		}
		for _, need := range []string{"title", "main"} {
			if t.Lookup(need) == nil {
				return fmt.Errorf("template %s/%s: defines no %q block", module, n, need)
			}
		}
		v.mu.Lock()
		v.pages[module+"/"+n] = t
		v.mu.Unlock()
	}
	return nil
}

// Has reports whether a page exists.
func (v *Views) Has(name string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.pages[name] != nil
}

// View is the data every page template receives as dot.
type View struct {
	Req    *http.Request
	Lang   string
	Layout string // "public", "backoffice" or "bare"
	Title  string // already translated; the "title" block may ignore it
	CSRF   string
	Chrome any
	Flash  string
	Form   *Form
	Data   any

	v *Views
}

// T translates a key into the page's language.
func (p *View) T(key string, args ...any) string { return p.v.I18n.T(p.Lang, key, args...) }

// Asset returns the content-hashed URL of a static file, "kernel/parvis.css".
func (p *View) Asset(name string) string { return p.v.Assets.URL(name) }

// LangURL is the current page's address in another language (?lang=…, the other query
// parameters kept), for the language switcher.
func (p *View) LangURL(lang string) string {
	q := url.Values{}
	path := ""
	if p.Req != nil {
		q, path = p.Req.URL.Query(), p.Req.URL.Path
	}
	q.Set("lang", lang)
	return path + "?" + q.Encode()
}

// Date formats t in the configured zone, in the page's language: "28 novembre 2026".
func (p *View) Date(t time.Time) string { return FormatDate(p.Lang, t.In(p.v.Location)) }

// DateTime formats t with its time: "28 novembre 2026 à 14:05".
func (p *View) DateTime(t time.Time) string {
	t = t.In(p.v.Location)
	return p.T("kernel.datetime", "date", FormatDate(p.Lang, t), "time", t.Format("15:04"))
}

// Field describes one form field for the kernel's field partials.
func (p *View) Field(name, label string, hint ...string) FieldView {
	f := FieldView{ID: "f-" + name, Name: name, Label: p.T(label)}
	if len(hint) > 0 && hint[0] != "" {
		f.Hint = p.T(hint[0])
	}
	if p.Form != nil {
		f.Value = p.Form.Values.Get(name)
		f.Values = p.Form.Values[name]
		if e := p.Form.ErrorFor(name); e != "" {
			f.Error = p.T(e, p.Form.argsFor(name)...)
			f.ErrorPrefix = p.T("kernel.error_prefix") + " "
		}
	}
	return f
}

// Errors returns the translated error summary entries of the page's form.
func (p *View) Errors() []FieldError {
	if p.Form == nil {
		return nil
	}
	out := make([]FieldError, len(p.Form.Errors))
	for i, e := range p.Form.Errors {
		out[i] = FieldError{Field: e.Field, Message: p.T(e.Message, e.Args...)}
	}
	return out
}

// FieldView is what the field partials render.
type FieldView struct {
	ID, Name, Label, Hint, Value, Error string
	ErrorPrefix                         string
	Values                              []string
}

// DescribedBy is the aria-describedby value tying hint and error to the input.
func (f FieldView) DescribedBy() string {
	var ids []string
	if f.Hint != "" {
		ids = append(ids, f.ID+"-hint")
	}
	if f.Error != "" {
		ids = append(ids, f.ID+"-error")
	}
	return strings.Join(ids, " ")
}

// Page is what a handler passes to Render.
type Page struct {
	Name   string // "<module>/<file>.html"
	Layout string // defaults to "public"
	Title  string // locale key of the page title, used in <title> with the site name
	Status int    // defaults to 200
	Form   *Form
	Flash  string // locale key
	Data   any
}

// Render writes a page. Templates are executed into a buffer first, so a template error
// becomes a clean 500 page rather than half a page.
func (v *Views) Render(w http.ResponseWriter, r *http.Request, pg Page) {
	v.mu.RLock()
	t := v.pages[pg.Name]
	v.mu.RUnlock()
	if t == nil {
		v.Log.Error("unknown page template", "page", pg.Name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	view := v.NewView(r, pg)
	buf := v.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer v.bufs.Put(buf)
	if err := t.ExecuteTemplate(buf, view.Layout, view); err != nil {
		v.Log.Error("render", "page", pg.Name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	status := pg.Status
	if status == 0 {
		status = http.StatusOK
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// NewView builds the dot of a page (exported for modules that render fragments).
func (v *Views) NewView(r *http.Request, pg Page) *View {
	view := &View{Req: r, Layout: pg.Layout, Form: pg.Form, Data: pg.Data, v: v}
	if view.Layout == "" {
		view.Layout = "public"
	}
	if v.Lang != nil {
		view.Lang = v.Lang(r)
	}
	if view.Lang == "" {
		view.Lang = i18n.Default
	}
	if pg.Title != "" {
		view.Title = v.I18n.T(view.Lang, pg.Title)
	}
	if pg.Flash != "" {
		view.Flash = v.I18n.T(view.Lang, pg.Flash)
	}
	if v.CSRF != nil {
		view.CSRF = v.CSRF(r)
	}
	if v.Chrome != nil {
		view.Chrome = v.Chrome(r)
	}
	return view
}

var monthsFR = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}

// FormatDate writes a long date in French or English.
func FormatDate(lang string, t time.Time) string {
	if lang == "en" {
		return t.Format("2 January 2006")
	}
	day := fmt.Sprint(t.Day())
	if t.Day() == 1 {
		day = "1er"
	}
	return day + " " + monthsFR[t.Month()-1] + " " + fmt.Sprint(t.Year())
}

// Assets serves static files of every module under /static/<module>/<name-with-hash>,
// with a year-long immutable cache lifetime, and computes their URLs.
type Assets struct {
	mu    sync.RWMutex
	files map[string]asset // by hashed URL path
	urls  map[string]string
}

type asset struct {
	data  []byte
	ctype string
}

// NewAssets returns an empty asset set.
func NewAssets() *Assets { return &Assets{files: map[string]asset{}, urls: map[string]string{}} }

// Add reads every file of fsys into memory under module.
func (a *Assets) Add(module string, fsys fs.FS) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ext := path.Ext(p)
		hashed := "/static/" + module + "/" + strings.TrimSuffix(p, ext) + "." + hex.EncodeToString(sum[:5]) + ext
		a.mu.Lock()
		a.files[hashed] = asset{data: data, ctype: contentType(ext)}
		a.urls[module+"/"+p] = hashed
		a.mu.Unlock()
		return nil
	})
}

func contentType(ext string) string {
	switch ext {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".woff2":
		return "font/woff2"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// URL returns the hashed URL of "module/file"; it panics on an unknown asset so that a
// template naming a missing file fails the start-up template check.
func (a *Assets) URL(name string) string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	u, ok := a.urls[name]
	if !ok {
		panic("unknown static asset " + name)
	}
	return u
}

// ServeHTTP serves /static/… files.
func (a *Assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.RLock()
	f, ok := a.files[r.URL.Path]
	a.mu.RUnlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.ctype)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(f.data)
}
