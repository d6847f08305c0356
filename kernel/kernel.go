// Package kernel holds what every Parvis module shares: the module registry (the only global
// in Parvis), the declarations a module makes (routes, permissions, migrations, templates,
// locales, menu entries, jobs, extensions), and the Env through which a module reaches the
// kernel's services. The server package (kernel/server) runs the lifecycle.
//
// Dependencies point one way: cmd → modules → kernel. A module never reads another module's
// tables; it fetches the other module's published interface with Service, or listens to a
// typed Hook.
package kernel

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"sync"

	"parvis.org/parvis/kernel/config"
)

// Module is a compiled-in part of Parvis. Besides Info, a module implements whichever of the
// optional interfaces below it needs (Provisioner, Validator, Declarer, Starter, Stopper).
type Module interface {
	Info() Info
}

// Info identifies a module. ID is a dotted lower-case name ("portal", "appointments.ants").
type Info struct {
	ID      string
	Version string
	// Title is the locale key of the module's human name.
	Title string
	// New returns a fresh, unprovisioned instance.
	New func() Module
	// Builtin marks the kernel's own parts (auth, audit, jobs…), always present.
	Builtin bool
	// Priority orders provisioning: lower first. Built-in parts that publish core services
	// use 1–99 (jobs, then mail, audit, auth…); ordinary modules leave 0, meaning 100.
	Priority int
}

func (i Info) prio() int {
	if i.Priority == 0 {
		return 100
	}
	return i.Priority
}

// Assembler is told every module's declarations once all are collected (before migrations):
// the mail part loads every module's mail templates this way, the portal its portlet types.
type Assembler interface {
	Assemble(all []Declared) error
}

// Declared is one module's declarations, as given to Assemble.
type Declared struct {
	ID    string
	Parts Parts
}

// Migrator is for modules whose schema is managed by a library of its own (River's job
// tables): called by `parvis migrate` and at start, after the module's goose migrations.
type Migrator interface {
	Migrate(ctx context.Context) error
	// Pending reports how many migrations are not yet applied (for /readyz).
	Pending(ctx context.Context) (int, error)
}

// Commander contributes CLI commands ("admin create", "audit verify", "suite apply").
type Commander interface {
	Commands() []Command
}

// Command is a CLI command contributed by a module. It runs after the database is open and
// migrated, with the module provisioned but not started.
type Command struct {
	Name string // words, "admin create"
	Args string // usage of the arguments, "EMAIL"
	Help string // one line
	Run  func(ctx context.Context, args []string, out io.Writer) error
	// Offline, when set, runs instead of Run before anything is opened or migrated, with the
	// configuration alone: for `parvis doctor`, which must work when the database does not.
	Offline func(ctx context.Context, cfg *config.Config, args []string, out io.Writer) error
}

// Provisioner is called first, with the kernel's services; the module builds its store,
// handlers and everything it will declare.
type Provisioner interface {
	Provision(ctx context.Context, env *Env) error
}

// Validator is called after every module is provisioned: the place to check settings and
// the presence of services fetched from other modules.
type Validator interface {
	Validate() error
}

// Declarer returns what the module brings. It is called after Provision and Validate.
type Declarer interface {
	Declare() Parts
}

// Starter starts background work once routes are mounted and migrations applied.
type Starter interface {
	Start(ctx context.Context) error
}

// Stopper stops what Start started. Called in reverse order, also when a later module
// failed to start.
type Stopper interface {
	Stop(ctx context.Context) error
}

// Parts is everything a module declares.
type Parts struct {
	// Migrations holds two folders, sqlite/ and postgres/, of goose SQL files. Versions are
	// per module; a landed file is never edited.
	Migrations fs.FS
	// Templates holds *.html page templates, addressed as "<module id>/<file name>".
	Templates fs.FS
	// Locales holds fr.yaml and en.yaml (flat keys, prefixed by the module id).
	Locales fs.FS
	// Mail holds mail templates: <lang>/<name>.subject.txt, <lang>/<name>.txt and
	// <lang>/<name>.html (fr and en), sent with kernel.Mail{Template: "<module>/<name>"}.
	Mail fs.FS
	// Static is served under /static/<module id>/ with content-hashed names.
	Static fs.FS
	// Permissions this module defines; names are unique across the binary.
	Permissions []Permission
	// Routes, public and back office.
	Routes []Route
	// Menu entries of the back office; shown only to agents holding the entry's permission.
	Menu []MenuItem
	// Extensions contributes to extension points defined by other modules or the kernel
	// (portlet types, workflow task types, suite sections, service catalogue entries…).
	Extensions []Extension
}

// Permission is a named right on a resource type, granted by roles on all resources of the
// type, on one resource, or on the resources of a unit (and its sub-units).
type Permission struct {
	Name         string // "forms.edit"
	ResourceType string // "form"; "" for permissions not tied to resources
	Title        string // locale key
}

var permName = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// Area says who a route is for.
type Area int

const (
	// Public routes are for everyone; the handler decides what a guest or citizen may see.
	Public Area = iota
	// BackOffice routes are for agents; the kernel refuses them to anyone who does not hold
	// Perm, before the handler runs. They are mounted under /admin/.
	BackOffice
	// API routes are JSON; back-office API routes require a token or agent session holding Perm.
	API
)

// Route is one HTTP route. Pattern is a net/http pattern without method, e.g.
// "/admin/users/{id}". Method is "GET", "POST"…
type Route struct {
	Area    Area
	Method  string
	Pattern string
	// Perm is required for BackOffice routes (deny by default); PermAnyAgent admits any
	// signed-in agent (their own profile, the back-office home).
	Perm    string
	Handler http.Handler
	// Name, optional, lets templates and tests refer to the route.
	Name string
}

// PermAnyAgent is the one permission every signed-in agent holds: for pages about oneself.
const PermAnyAgent = "kernel.agent"

// MenuItem is a back-office navigation entry.
type MenuItem struct {
	Section string // locale key of the group ("menu.admin", "menu.services"…)
	Title   string // locale key
	Path    string
	Perm    string
	Order   int
}

// Extension is a contribution to a named extension point.
type Extension struct {
	Point string // e.g. "portal.portlet", "workflow.task", "suite.section", "catalogue.service"
	Value any
}

// registry is the only global of Parvis.
var registry = struct {
	sync.Mutex
	mods map[string]Info
	pkgs map[string]string
}{mods: map[string]Info{}, pkgs: map[string]string{}}

var modID = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)

// Register adds a module to the binary. Call it from the module package's init. It panics on
// a malformed or duplicate ID, so a wrong build fails before it serves anything.
func Register(m Module) {
	info := m.Info()
	if !modID.MatchString(info.ID) {
		panic(fmt.Sprintf("kernel.Register: malformed module ID %q", info.ID))
	}
	if info.New == nil {
		panic(fmt.Sprintf("kernel.Register: module %q has no New", info.ID))
	}
	pkg := reflect.TypeOf(m).String()
	if t := reflect.TypeOf(m); t.Kind() == reflect.Pointer {
		pkg = t.Elem().PkgPath() + "." + t.Elem().Name()
	} else {
		pkg = t.PkgPath() + "." + t.Name()
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.mods[info.ID]; dup {
		panic(fmt.Sprintf("kernel.Register: module ID %q registered by both %s and %s", info.ID, registry.pkgs[info.ID], pkg))
	}
	registry.mods[info.ID] = info
	registry.pkgs[info.ID] = pkg
}

// CheckIDs returns an error naming both sides when two modules in infos share an ID (the
// registry panics on this; the server checks explicit module lists too).
func CheckIDs(infos []Info) error {
	seen := map[string]bool{}
	for _, i := range infos {
		if seen[i.ID] {
			return fmt.Errorf("module ID %q appears twice", i.ID)
		}
		seen[i.ID] = true
	}
	return nil
}

// SortInfos orders modules for provisioning: by priority, then ID.
func SortInfos(infos []Info) {
	sort.SliceStable(infos, func(a, b int) bool {
		if infos[a].prio() != infos[b].prio() {
			return infos[a].prio() < infos[b].prio()
		}
		return infos[a].ID < infos[b].ID
	})
}

// Registered lists the registered modules, built-in ones first, then by ID.
func Registered() []Info {
	registry.Lock()
	defer registry.Unlock()
	out := make([]Info, 0, len(registry.mods))
	for _, i := range registry.mods {
		out = append(out, i)
	}
	SortInfos(out)
	return out
}

// ValidPermissionName reports whether s is a well-formed permission name.
func ValidPermissionName(s string) bool { return s == PermAnyAgent || permName.MatchString(s) }
