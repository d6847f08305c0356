package kernel

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// Env is what a module receives in Provision: the kernel's services, scoped to the module
// (its logger is tagged with the module ID). It is not a god object: it only hands out
// narrow interfaces, and modules keep what they need.
type Env struct {
	Module string
	Config *config.Config
	DB     *store.DB
	Log    *slog.Logger
	Clock  Clock
	I18n   *i18n.Bundle
	Views  *web.Views
	Auth   Authorizer
	Audit  Auditor
	Jobs   Jobs
	Mail   Mailer
	// Workers is where a module adds its River workers (river.AddWorker) during Provision.
	Workers *river.Workers
	// Metrics is where a module registers its Prometheus collectors (served at /metrics).
	Metrics prometheus.Registerer

	services *services
}

// Clock gives the time; tests inject a fixed or advancing one.
type Clock interface{ Now() time.Time }

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

// Agent is a signed-in back-office user.
type Agent struct {
	ID         int64
	OrgID      int64
	Email      string
	Name       string
	Lang       string
	SessionID  string
	Superadmin bool // manages organisations of the instance
}

// Citizen is a signed-in citizen, or a guest known only by a verified email (ID 0).
type Citizen struct {
	ID       int64
	Email    string
	Name     string
	Verified bool
}

type ctxKey int

const (
	agentKey ctxKey = iota
	citizenKey
)

// WithAgent returns ctx carrying the signed-in agent (set by the kernel's session middleware).
func WithAgent(ctx context.Context, a *Agent) context.Context {
	return context.WithValue(ctx, agentKey, a)
}

// AgentFrom returns the signed-in agent, or nil.
func AgentFrom(ctx context.Context) *Agent { a, _ := ctx.Value(agentKey).(*Agent); return a }

// WithCitizen returns ctx carrying the signed-in citizen.
func WithCitizen(ctx context.Context, c *Citizen) context.Context {
	return context.WithValue(ctx, citizenKey, c)
}

// CitizenFrom returns the signed-in citizen, or nil.
func CitizenFrom(ctx context.Context) *Citizen { c, _ := ctx.Value(citizenKey).(*Citizen); return c }

// Resource is what a permission is checked against.
type Resource struct {
	Type   string // "form"
	ID     string // "" for "any resource of the type"
	UnitID int64  // owning unit, 0 if none
	OrgID  int64  // owning organisation; must equal the agent's
}

// Scope says which resources of a type an agent may act on with a permission. Modules turn
// it into a SQL filter.
type Scope struct {
	All         bool     // every resource of the agent's organisation
	UnitIDs     []int64  // resources owned by these units (sub-units already expanded)
	ResourceIDs []string // these resources
}

// None reports whether the scope admits nothing.
func (s Scope) None() bool { return !s.All && len(s.UnitIDs) == 0 && len(s.ResourceIDs) == 0 }

// Authorizer answers permission questions. Every answer is confined to the agent's
// organisation: nothing crosses between organisations.
type Authorizer interface {
	// Can reports whether a may use perm on res. With res nil: on at least one resource.
	Can(ctx context.Context, a *Agent, perm string, res *Resource) bool
	// Scope returns where a may use perm.
	Scope(ctx context.Context, a *Agent, perm string) (Scope, error)
	// UnitsOf returns the units a belongs to, with their sub-units.
	UnitsOf(ctx context.Context, a *Agent) ([]int64, error)
}

// AuditEntry is one back-office change. The actor and organisation come from the context.
type AuditEntry struct {
	Action       string // "users.create"
	ResourceType string
	ResourceID   string
	Before       any // JSON-encodable, nil for a creation
	After        any // nil for a deletion
}

// Auditor records back-office changes in the same transaction as the change.
type Auditor interface {
	Record(ctx context.Context, tx *store.Tx, e AuditEntry) error
}

// Jobs enqueues durable jobs in the caller's transaction: committed together or not at all.
type Jobs interface {
	Enqueue(ctx context.Context, tx *store.Tx, args river.JobArgs, opts *river.InsertOpts) error
}

// Mail is a message built from a per-locale template.
type Mail struct {
	To       []string
	Lang     string
	Template string // "<module>/<name>": templates <name>.subject.txt, <name>.txt, <name>.html in the module's mail templates
	Data     any
	// Attachments are stored with the queued mail.
	Attachments []Attachment
	OrgID       int64
}

// Attachment is a file sent with a mail.
type Attachment struct {
	Name, ContentType string
	Data              []byte
}

// Mailer queues a mail in the caller's transaction; a job sends it (or files it in the
// back-office outbox when no SMTP server is configured).
type Mailer interface {
	Send(ctx context.Context, tx *store.Tx, m Mail) error
}

// services is the typed registry of interfaces that modules publish for one another.
type services struct {
	mu sync.RWMutex
	m  map[reflect.Type]any
}

// NewEnvServices gives envs built by the server one shared service registry.
func NewEnvServices() any { return &services{m: map[reflect.Type]any{}} }

// SetServices attaches a shared service registry (from NewEnvServices) to env.
func (e *Env) SetServices(s any) { e.services = s.(*services) }

// Provide publishes svc under its interface type T for other modules.
func Provide[T any](env *Env, svc T) {
	t := reflect.TypeFor[T]()
	env.services.mu.Lock()
	defer env.services.mu.Unlock()
	if _, dup := env.services.m[t]; dup {
		panic("kernel.Provide: a service of type " + t.String() + " is already provided")
	}
	env.services.m[t] = svc
}

// Replace publishes svc under T in place of an earlier provider, which it returns so the new
// one can fall back on it (the portal names sites per host, falling back on the
// organisation's theme). Explicit, so that an accidental second Provide still panics.
func Replace[T any](env *Env, svc T) (prev T, had bool) {
	t := reflect.TypeFor[T]()
	env.services.mu.Lock()
	defer env.services.mu.Unlock()
	if v, ok := env.services.m[t]; ok {
		prev, had = v.(T)
	}
	env.services.m[t] = svc
	return prev, had
}

// Service fetches the service published under T. ok is false when no module provides it;
// check in Validate.
func Service[T any](env *Env) (svc T, ok bool) {
	env.services.mu.RLock()
	defer env.services.mu.RUnlock()
	v, ok := env.services.m[reflect.TypeFor[T]()]
	if !ok {
		return svc, false
	}
	return v.(T), true
}

// Hook is a typed event that modules subscribe to (PocketBase tools/hook style).
type Hook[T any] struct {
	mu       sync.RWMutex
	handlers []func(context.Context, T) error
}

// On adds a handler.
func (h *Hook[T]) On(f func(context.Context, T) error) {
	h.mu.Lock()
	h.handlers = append(h.handlers, f)
	h.mu.Unlock()
}

// Fire runs every handler in order, stopping at the first error.
func (h *Hook[T]) Fire(ctx context.Context, ev T) error {
	h.mu.RLock()
	hs := h.handlers
	h.mu.RUnlock()
	for _, f := range hs {
		if err := f(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}
