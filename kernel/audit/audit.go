// Package audit is the kernel's audit log ("kernel.audit"): every back-office change is
// recorded, in the transaction of the change, as an append-only entry that hashes the
// previous one. Altering, removing, inserting or reordering a stored entry breaks the chain,
// which `parvis audit verify` walks. A back-office page lists and filters the entries of the
// agent's organisation.
//
// Modules reach it through kernel.Auditor (env.Audit):
//
//	err := db.InTx(ctx, func(tx *store.Tx) error {
//		… change …
//		return env.Audit.Record(ctx, tx, kernel.AuditEntry{Action: "forms.update", …})
//	})
//
// Call Record last in the transaction: on PostgreSQL it locks the chain head until commit,
// so recording early would hold every other writer of the instance behind this one.
package audit

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// ID of the module; also the prefix of its locale keys.
const ID = "kernel.audit"

// PermView lets an agent read the audit log of their organisation.
const PermView = "kernel.audit.view"

//go:embed migrations templates locales
var files embed.FS

func init() {
	kernel.Register(&Module{})
}

// Module is the kernel.audit module.
type Module struct {
	log    *Log
	logger *slog.Logger
	views  *web.Views
}

var (
	_ kernel.Module      = (*Module)(nil)
	_ kernel.Provisioner = (*Module)(nil)
	_ kernel.Declarer    = (*Module)(nil)
	_ kernel.Commander   = (*Module)(nil)
	_ kernel.Auditor     = (*Log)(nil)
)

// Info implements kernel.Module.
func (*Module) Info() kernel.Info {
	return kernel.Info{ID: ID, Version: "1.0.0", Title: "kernel.audit.title", Builtin: true, Priority: 30,
		New: func() kernel.Module { return &Module{} }}
}

// Provision publishes the Auditor.
func (m *Module) Provision(_ context.Context, env *kernel.Env) error {
	m.log = New(env.DB, env.Clock)
	m.views = env.Views
	m.logger = env.Log
	if env.Config != nil {
		m.log.trustProxy = env.Config.TrustProxy
	}
	kernel.Provide[kernel.Auditor](env, m.log)
	return nil
}

// Log returns the audit log (nil before Provision).
func (m *Module) Log() *Log { return m.log }

// Declare implements kernel.Declarer.
func (m *Module) Declare() kernel.Parts {
	return kernel.Parts{
		Migrations: sub("migrations"),
		Templates:  sub("templates"),
		Locales:    sub("locales"),
		Permissions: []kernel.Permission{
			{Name: PermView, Title: "kernel.audit.perm.view"},
		},
		Routes: []kernel.Route{
			{Area: kernel.BackOffice, Method: http.MethodGet, Pattern: "/admin/audit", Perm: PermView,
				Handler: http.HandlerFunc(m.list), Name: "audit.list"},
			{Area: kernel.BackOffice, Method: http.MethodGet, Pattern: "/admin/audit/{seq}", Perm: PermView,
				Handler: http.HandlerFunc(m.entry), Name: "audit.entry"},
		},
		Menu: []kernel.MenuItem{
			{Section: "kernel.menu.admin", Title: "kernel.audit.menu", Path: "/admin/audit", Perm: PermView, Order: 940},
		},
	}
}

// Commands implements kernel.Commander.
func (m *Module) Commands() []kernel.Command {
	return []kernel.Command{{
		Name: "audit verify",
		Help: "check the audit log's hash chain; fails naming the first broken entry",
		Run: func(ctx context.Context, args []string, out io.Writer) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: audit verify takes no arguments (got %q)", config.ErrUsage, args[0])
			}
			rep, err := m.log.Verify(ctx)
			if err != nil {
				var b *BrokenError
				if errors.As(err, &b) {
					return fmt.Errorf("%w (%d entries before it are intact)", err, rep.Entries)
				}
				return err
			}
			fmt.Fprintf(out, "audit chain intact: %d entries\n", rep.Entries)
			if rep.Entries > 0 {
				// Worth writing down elsewhere: a copy of the head outside the database is
				// what reveals a rewrite of the whole chain.
				fmt.Fprintf(out, "head: entry %d, hash %s\n", rep.Entries, rep.Head)
			}
			return nil
		},
	}}
}

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err)
	}
	return f
}

// Log is the audit log: the kernel.Auditor, and the queries of the page and of verify.
type Log struct {
	db         *store.DB
	clock      kernel.Clock
	trustProxy bool // client addresses from X-Forwarded-For (PARVIS_TRUST_PROXY)
}

// New returns the audit log stored in db, timed by clock.
func New(db *store.DB, clock kernel.Clock) *Log {
	if clock == nil {
		clock = kernel.SystemClock{}
	}
	return &Log{db: db, clock: clock}
}

// Record appends e to the chain in tx. The actor and organisation are the signed-in agent
// of ctx; without one, the actor is the name set by WithActor ("cli"), else "system", and
// the organisation the one set by WithOrg, else 0 (the instance). The client address and
// request ID come from the request context when there is one.
func (l *Log) Record(ctx context.Context, tx *store.Tx, e kernel.AuditEntry) error {
	if tx == nil {
		return errors.New("audit: Record needs the transaction of the change")
	}
	if e.Action == "" {
		return errors.New("audit: an entry needs an action")
	}
	before, err := CanonicalJSON(e.Before)
	if err != nil {
		return fmt.Errorf("audit %s: before: %w", e.Action, err)
	}
	after, err := CanonicalJSON(e.After)
	if err != nil {
		return fmt.Errorf("audit %s: after: %w", e.Action, err)
	}
	en := &Entry{
		// Microseconds: what PostgreSQL keeps, so the hash survives the round trip.
		At:           l.clock.Now().UTC().Truncate(time.Microsecond),
		ClientIP:     l.clientIP(ctx),
		RequestID:    web.RequestIDFrom(ctx),
		Action:       e.Action,
		ResourceType: e.ResourceType,
		ResourceID:   e.ResourceID,
		Before:       before,
		After:        after,
	}
	if a := kernel.AgentFrom(ctx); a != nil {
		en.ActorID, en.OrgID, en.Actor = a.ID, a.OrgID, a.Email
		if en.Actor == "" {
			en.Actor = "agent #" + strconv.FormatInt(a.ID, 10)
		}
	} else {
		en.Actor = "system"
		if s, _ := ctx.Value(actorKey{}).(string); s != "" {
			en.Actor = s
		}
		en.OrgID, _ = ctx.Value(orgKey{}).(int64)
	}
	if err := appendEntry(ctx, tx, en); err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

type (
	actorKey    struct{}
	orgKey      struct{}
	clientIPKey struct{}
)

// WithActor names the actor of changes made without a signed-in agent ("cli", "jobs:purge").
// A signed-in agent in ctx always wins: a label cannot mask who acted.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// WithOrg sets the organisation of changes made without a signed-in agent (a job working
// for one town).
func WithOrg(ctx context.Context, orgID int64) context.Context {
	return context.WithValue(ctx, orgKey{}, orgID)
}

// WithClientIP sets the client address recorded for changes made in ctx, overriding the
// address of the request ctx belongs to (work done on behalf of someone else's request).
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// clientIP is the address set by WithClientIP, else the client address of the request ctx
// belongs to (computed only when something is recorded), else "".
func (l *Log) clientIP(ctx context.Context) string {
	if s, ok := ctx.Value(clientIPKey{}).(string); ok {
		return s
	}
	return web.ClientIPFrom(ctx, l.trustProxy)
}
