// Package example is the smallest complete Parvis module, and the template to copy when
// writing a new one. It brings a public page, a back-office page guarded by its own
// permission, a migration for each engine, templates, locale files, a menu entry and a
// service-catalogue entry. Adding it to a distribution is one blank import, and nothing else:
// its test builds a server with that import alone and finds every part live.
package example

import (
	"context"
	"embed"
	"io/fs"
	"net/http"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

func init() { kernel.Register(&Module{}) }

//go:embed migrations templates locales
var files embed.FS

// Module greets visitors and counts greetings.
type Module struct {
	db    *store.DB
	views *web.Views
}

var (
	_ kernel.Module      = (*Module)(nil)
	_ kernel.Provisioner = (*Module)(nil)
	_ kernel.Declarer    = (*Module)(nil)
)

// Info implements kernel.Module.
func (*Module) Info() kernel.Info {
	return kernel.Info{ID: "example", Version: "1.0.0", Title: "example.title", New: func() kernel.Module { return &Module{} }}
}

// Provision keeps what the module needs from the kernel.
func (m *Module) Provision(ctx context.Context, env *kernel.Env) error {
	m.db, m.views = env.DB, env.Views
	return nil
}

func sub(dir string) fs.FS { f, _ := fs.Sub(files, dir); return f }

// Declare lists what the module brings.
func (m *Module) Declare() kernel.Parts {
	return kernel.Parts{
		Migrations:  sub("migrations"),
		Templates:   sub("templates"),
		Locales:     sub("locales"),
		Permissions: []kernel.Permission{{Name: "example.view", Title: "example.perm.view"}},
		Routes: []kernel.Route{
			{Area: kernel.Public, Method: "GET", Pattern: "/exemple", Handler: http.HandlerFunc(m.hello)},
			{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/exemple", Perm: "example.view", Handler: http.HandlerFunc(m.count)},
		},
		Menu: []kernel.MenuItem{{Title: "example.menu", Path: "/admin/exemple", Perm: "example.view", Order: 900}},
		Extensions: []kernel.Extension{{Point: kernel.PointCatalogue, Value: kernel.CatalogueEntry{
			Key: "example.hello", Title: "example.title", Summary: "example.summary", Path: "/exemple"}}},
	}
}

func (m *Module) hello(w http.ResponseWriter, r *http.Request) {
	err := m.db.InTx(r.Context(), func(tx *store.Tx) error {
		_, err := tx.ExecContext(r.Context(), "INSERT INTO example_greetings (lang) VALUES (?)", "fr")
		return err
	})
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	m.views.Render(w, r, web.Page{Name: "example/hello.html", Title: "example.title"})
}

func (m *Module) count(w http.ResponseWriter, r *http.Request) {
	var n int
	if err := m.db.Read().QueryRowContext(r.Context(), "SELECT COUNT(*) FROM example_greetings").Scan(&n); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	m.views.Render(w, r, web.Page{Name: "example/count.html", Layout: "backoffice", Title: "example.menu", Data: n})
}
