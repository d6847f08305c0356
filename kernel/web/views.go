// Package web is the kernel's HTTP toolkit: template rendering with the design system's
// layouts and partials, forms with an error summary, content-hashed static assets, request
// helpers and middleware. It knows nothing of users or modules; the server fills Chrome.
package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"text/template/parse"
	"time"

	"parvis.org/parvis/kernel/i18n"
)

// Views renders pages. Every page template is parsed at start-up, so a broken template
// stops start-up instead of failing a request.
//
// A page is rendered in two steps: its own blocks ("title", "main", and "nav" or
// "footer-links" when it defines them) first, then the layout around them. The layouts are
// parsed once for the whole process, and the pages of a module share one template set with
// the kernel's partials and the module's partials, each page's blocks renamed
// "<file>:<block>". Parsing the layouts with every page (as before) kept one copy of their
// parse trees per page: two thirds of the live heap, marked by every garbage collection.
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

	mu      sync.RWMutex
	base    []fs.FS            // layouts and partials
	layouts *template.Template // the layouts, parsed once (with the partials they use)
	pages   map[string]*page
	sets    map[string]*template.Template // each module's set (ExecutePartial)
	bufs    sync.Pool
}

// page is one page template: its blocks live in a module's set under prefix+name.
type page struct {
	set    *template.Template
	prefix string
	local  map[string]bool // the blocks the page defines
}

// layoutBlocks are the blocks a page may define for the layout to place, besides "title"
// and "main".
var layoutBlocks = [...]string{"nav", "footer-links"}

// NewViews returns Views whose layouts and partials come from base (the kernel's templates):
// files named partials*.html hold the partials every page may call; the other files hold
// the layouts.
func NewViews(bundle *i18n.Bundle, assets *Assets, log *slog.Logger, loc *time.Location, base ...fs.FS) *Views {
	return &Views{I18n: bundle, Assets: assets, Log: log, Location: loc, base: base, pages: map[string]*page{},
		sets: map[string]*template.Template{}, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
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
// parsed into the module's set, for templates its pages share (a question, a card). A page
// defines "title" and "main", or a whole document of its own under the name of the layout
// it is rendered with (web.Page.Layout).
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
	if err := v.parseLayouts(); err != nil {
		return err
	}
	sort.Strings(names)
	set := template.New(module).Funcs(v.funcs())
	for _, b := range v.base {
		files, err := fs.Glob(b, "partials*.html")
		if err != nil {
			return fmt.Errorf("kernel partials: %w", err)
		}
		if len(files) > 0 {
			if _, err := set.ParseFS(b, files...); err != nil {
				return fmt.Errorf("kernel partials: %w", err)
			}
		}
	}
	if len(partials) > 0 {
		if _, err := set.ParseFS(fsys, partials...); err != nil {
			return fmt.Errorf("partials of %s: %w", module, err)
		}
	}
	added := map[string]*page{}
	for _, n := range names {
		src, err := fs.ReadFile(fsys, n)
		if err != nil {
			return fmt.Errorf("template %s/%s: %w", module, n, err)
		}
		one, err := template.New(n).Funcs(v.funcs()).Parse(string(src))
		if err != nil {
			return fmt.Errorf("template %s/%s: %w", module, n, err)
		}
		p := &page{set: set, prefix: n + ":", local: map[string]bool{}}
		for _, t := range one.Templates() {
			if t.Name() != n && t.Tree != nil {
				p.local[t.Name()] = true
			}
		}
		if !p.local["main"] && len(p.local) == 0 {
			return fmt.Errorf("template %s/%s: defines no %q block", module, n, "main")
		}
		for _, t := range one.Templates() {
			if !p.local[t.Name()] {
				continue
			}
			tree := t.Tree
			renameCalls(tree.Root, p.local, p.prefix)
			tree.Name = p.prefix + t.Name()
			if _, err := set.AddParseTree(tree.Name, tree); err != nil {
				return fmt.Errorf("template %s/%s: %w", module, n, err)
			}
		}
		added[module+"/"+n] = p
	}
	// Every {{template}} a page or partial calls must exist in the module's set: a page may
	// not call a layout's parts, which are not parsed with it.
	for _, t := range set.Templates() {
		if t.Tree == nil {
			continue
		}
		if missing := missingCall(t.Tree.Root, set); missing != "" {
			return fmt.Errorf("templates of %s: %q calls {{template %q}}, which is neither a partial nor a block of its page", module, t.Name(), missing)
		}
	}
	v.mu.Lock()
	for k, p := range added {
		v.pages[k] = p
	}
	if v.sets == nil {
		v.sets = map[string]*template.Template{}
	}
	v.sets[module] = set
	v.mu.Unlock()
	return nil
}

// ExecutePartial executes the template name defined by one of module's partials (its
// templates/partials folder, parsed with the kernel's partials) with data, into w: for a
// fragment a module renders inside another module's page. The data carries what the
// partial needs, a *View included when it calls the kernel's field partials.
func (v *Views) ExecutePartial(w io.Writer, module, name string, data any) error {
	v.mu.RLock()
	set := v.sets[module]
	v.mu.RUnlock()
	if set == nil {
		return fmt.Errorf("views: module %s has no templates", module)
	}
	if set.Lookup(name) == nil || strings.Contains(name, ":") { // "file:block" names are pages' blocks
		return fmt.Errorf("views: module %s has no partial %q", module, name)
	}
	return set.ExecuteTemplate(w, name, data)
}

// parseLayouts parses the kernel's layouts and partials once.
func (v *Views) parseLayouts() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.layouts != nil {
		return nil
	}
	t := template.New("layouts").Funcs(v.funcs())
	for _, b := range v.base {
		if _, err := t.ParseFS(b, "*.html"); err != nil {
			return fmt.Errorf("kernel layouts: %w", err)
		}
	}
	v.layouts = t
	return nil
}

// renameCalls points a page's {{template}} calls to its own blocks at their new names.
func renameCalls(n parse.Node, local map[string]bool, prefix string) {
	walkCalls(n, func(t *parse.TemplateNode) string {
		if local[t.Name] {
			t.Name = prefix + t.Name
		}
		return ""
	})
}

// missingCall returns the first {{template}} name under n that set does not define.
func missingCall(n parse.Node, set *template.Template) string {
	return walkCalls(n, func(t *parse.TemplateNode) string {
		if set.Lookup(t.Name) == nil {
			return t.Name
		}
		return ""
	})
}

// walkCalls calls f on every {{template}} node under n until f returns a non-empty string.
func walkCalls(n parse.Node, f func(*parse.TemplateNode) string) string {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return ""
		}
		for _, c := range n.Nodes {
			if s := walkCalls(c, f); s != "" {
				return s
			}
		}
	case *parse.TemplateNode:
		return f(n)
	case *parse.IfNode:
		return walkBranch(&n.BranchNode, f)
	case *parse.RangeNode:
		return walkBranch(&n.BranchNode, f)
	case *parse.WithNode:
		return walkBranch(&n.BranchNode, f)
	}
	return ""
}

func walkBranch(b *parse.BranchNode, f func(*parse.TemplateNode) string) string {
	if s := walkCalls(b.List, f); s != "" {
		return s
	}
	if b.ElseList != nil {
		return walkCalls(b.ElseList, f)
	}
	return ""
}

// Has reports whether a page exists.
func (v *Views) Has(name string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.pages[name] != nil
}

// Main is the page's rendered "main" block, for the layout.
func (p *View) Main() template.HTML { return p.main }

// PageTitle is the page's "title" block as text (the layout escapes it), or Title.
func (p *View) PageTitle() string {
	if p.pageTitle != "" {
		return p.pageTitle
	}
	return p.Title
}

// Block is another block the page defined for the layout ("nav", "footer-links"), or "".
func (p *View) Block(name string) template.HTML { return p.blocks[name] }

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

	v         *Views
	main      template.HTML
	pageTitle string
	blocks    map[string]template.HTML
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
	p, layouts := v.pages[pg.Name], v.layouts
	v.mu.RUnlock()
	if p == nil {
		v.Log.Error("unknown page template", "page", pg.Name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	view := v.NewView(r, pg)
	buf := v.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer v.bufs.Put(buf)
	if err := v.execute(buf, p, layouts, view); err != nil {
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

// execute renders the page's blocks, then its layout around them; a page that defines the
// layout itself (a whole document) is rendered in one step.
func (v *Views) execute(buf *bytes.Buffer, p *page, layouts *template.Template, view *View) error {
	if p.local[view.Layout] {
		return p.set.ExecuteTemplate(buf, p.prefix+view.Layout, view)
	}
	part := v.bufs.Get().(*bytes.Buffer)
	defer v.bufs.Put(part)
	if p.local["title"] {
		part.Reset()
		if err := p.set.ExecuteTemplate(part, p.prefix+"title", view); err != nil {
			return err
		}
		view.pageTitle = html.UnescapeString(strings.TrimSpace(part.String()))
	}
	for _, b := range layoutBlocks {
		if p.local[b] {
			part.Reset()
			if err := p.set.ExecuteTemplate(part, p.prefix+b, view); err != nil {
				return err
			}
			if view.blocks == nil {
				view.blocks = map[string]template.HTML{}
			}
			view.blocks[b] = template.HTML(part.String())
		}
	}
	part.Reset()
	if err := p.set.ExecuteTemplate(part, p.prefix+"main", view); err != nil {
		return err
	}
	view.main = template.HTML(part.String())
	return layouts.ExecuteTemplate(buf, view.Layout, view)
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
