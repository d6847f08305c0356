// Package auth is the kernel's back-office identity and permission part ("kernel.auth"):
// organisations, units, agents, roles and grants; argon2id passwords with login throttling,
// an optional TOTP second factor and password reset by mail; sessions stored in the
// database; personal API tokens; the Authorizer every module asks; and the back-office
// pages to manage all of it.
package auth

import (
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/mail"
	"os"
	"parvis.org/parvis/kernel/audit"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
)

// ID of the module.
const ID = "kernel.auth"

func init() {
	kernel.Register(&Module{})
}

//go:embed migrations templates locales mail
var files embed.FS

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err)
	}
	return f
}

// Module is the kernel.auth part.
type Module struct {
	// IdleTimeout ends a session unused for that long; MaxAge ends any session.
	IdleTimeout time.Duration
	MaxAge      time.Duration
	// Throttling: at most AccountFailures failed logins per account and IPFailures per
	// client address within FailureWindow.
	AccountFailures int
	IPFailures      int
	FailureWindow   time.Duration

	env    *kernel.Env
	st     *Store
	authz  *Authz
	log    *slog.Logger
	perms  []kernel.Permission // every permission of the binary (from Assemble)
	byName map[string]kernel.Permission
	apiMux *http.ServeMux
	// resources list what roles may be granted on one by one (from Assemble).
	resources []kernel.ResourceSource
}

var (
	_ kernel.Module      = (*Module)(nil)
	_ kernel.Provisioner = (*Module)(nil)
	_ kernel.Declarer    = (*Module)(nil)
	_ kernel.Assembler   = (*Module)(nil)
	_ kernel.Starter     = (*Module)(nil)
	_ kernel.Commander   = (*Module)(nil)
)

// Info registers the module.
func (*Module) Info() kernel.Info {
	return kernel.Info{ID: ID, Version: "1.0.0", Title: "kernel.auth.title", Builtin: true, Priority: 40,
		New: func() kernel.Module { return &Module{} }}
}

// Provision builds the store and publishes the Authorizer.
func (m *Module) Provision(ctx context.Context, env *kernel.Env) error {
	m.env, m.log = env, env.Log
	m.st = &Store{DB: env.DB}
	m.authz = &Authz{st: m.st}
	if m.IdleTimeout == 0 {
		m.IdleTimeout = 2 * time.Hour
	}
	if m.MaxAge == 0 {
		m.MaxAge = 12 * time.Hour
	}
	if m.AccountFailures == 0 {
		m.AccountFailures = 5
	}
	if m.IPFailures == 0 {
		m.IPFailures = 20
	}
	if m.FailureWindow == 0 {
		m.FailureWindow = 15 * time.Minute
	}
	kernel.Provide[kernel.Authorizer](env, m.authz)
	kernel.Provide[Directory](env, directory{st: m.st})
	return nil
}

// Store gives tests and commands the module's store.
func (m *Module) Store() *Store { return m.st }

// Authorizer returns the module's Authorizer.
func (m *Module) Authorizer() *Authz { return m.authz }

func (m *Module) now() time.Time { return m.env.Clock.Now().UTC().Truncate(time.Microsecond) }

// Assemble receives every module's declarations: the roles page offers every permission
// of the binary, and bearer tokens are accepted on API routes only.
func (m *Module) Assemble(all []kernel.Declared) error {
	m.perms = nil
	m.apiMux = http.NewServeMux()
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, d := range all {
		m.perms = append(m.perms, d.Parts.Permissions...)
		for _, rt := range d.Parts.Routes {
			if rt.Area == kernel.API {
				func() {
					defer func() { _ = recover() }() // conflicts are reported by the server
					m.apiMux.Handle(rt.Method+" "+rt.Pattern, noop)
				}()
			}
		}
	}
	sort.Slice(m.perms, func(a, b int) bool { return m.perms[a].Name < m.perms[b].Name })
	m.byName = make(map[string]kernel.Permission, len(m.perms))
	for _, p := range m.perms {
		m.byName[p.Name] = p
	}
	var err error
	m.resources, err = kernel.Contributions[kernel.ResourceSource](all, kernel.PointResources)
	return err
}

// Declare lists the module's routes, permissions, pages, strings and menu entries.
func (m *Module) Declare() kernel.Parts {
	pub := func(method, pattern string, h http.HandlerFunc) kernel.Route {
		return kernel.Route{Area: kernel.Public, Method: method, Pattern: pattern, Handler: h}
	}
	bo := func(method, pattern, perm string, h http.HandlerFunc) kernel.Route {
		return kernel.Route{Area: kernel.BackOffice, Method: method, Pattern: pattern, Perm: perm, Handler: h}
	}
	return kernel.Parts{
		Migrations: sub("migrations"),
		Templates:  sub("templates"),
		Locales:    sub("locales"),
		Mail:       sub("mail"),
		Permissions: []kernel.Permission{
			{Name: PermUsers, ResourceType: "agent", Title: "kernel.auth.perm.users"},
			{Name: PermRoles, ResourceType: "role", Title: "kernel.auth.perm.roles"},
			{Name: PermUnits, ResourceType: "unit", Title: "kernel.auth.perm.units"},
			{Name: PermOrgs, ResourceType: "org", Title: "kernel.auth.perm.orgs"},
			{Name: PermTokens, Title: "kernel.auth.perm.tokens"},
		},
		Routes: []kernel.Route{
			pub("GET", "/admin/login", m.loginForm),
			pub("POST", "/admin/login", m.login),
			pub("GET", "/admin/login/totp", m.totpForm),
			pub("POST", "/admin/login/totp", m.totpLogin),
			pub("POST", "/admin/logout", m.logout),
			pub("GET", "/admin/password/forgot", m.forgotForm),
			pub("POST", "/admin/password/forgot", m.forgot),
			pub("GET", "/admin/password/reset/{token}", m.resetForm),
			pub("POST", "/admin/password/reset/{token}", m.reset),
			pub("GET", "/admin/setup/{token}", m.setupForm),
			pub("POST", "/admin/setup/{token}", m.setup),

			bo("GET", "/admin/account", kernel.PermAnyAgent, m.account),
			bo("POST", "/admin/account/password", kernel.PermAnyAgent, m.changePassword),
			bo("POST", "/admin/account/logout-all", kernel.PermAnyAgent, m.logoutAll),
			bo("GET", "/admin/account/totp", kernel.PermAnyAgent, m.totpEnrolForm),
			bo("POST", "/admin/account/totp", kernel.PermAnyAgent, m.totpEnrol),
			bo("POST", "/admin/account/totp/disable", kernel.PermAnyAgent, m.totpDisable),
			bo("POST", "/admin/account/totp/codes", kernel.PermAnyAgent, m.newRecoveryCodes),
			bo("POST", "/admin/account/tokens", PermTokens, m.createAPIToken),
			bo("POST", "/admin/account/tokens/{id}/revoke", kernel.PermAnyAgent, m.revokeAPIToken),

			bo("GET", "/admin/users", PermUsers, m.users),
			bo("GET", "/admin/users/new", PermUsers, m.userNew),
			bo("POST", "/admin/users", PermUsers, m.userCreate),
			bo("GET", "/admin/users/{id}", PermUsers, m.userEdit),
			bo("POST", "/admin/users/{id}", PermUsers, m.userUpdate),
			bo("POST", "/admin/users/{id}/active", PermUsers, m.userSetActive),
			bo("POST", "/admin/users/{id}/totp/reset", PermUsers, m.userResetTOTP),

			bo("GET", "/admin/roles", PermRoles, m.roles),
			bo("GET", "/admin/roles/new", PermRoles, m.roleNew),
			bo("POST", "/admin/roles", PermRoles, m.roleCreate),
			bo("GET", "/admin/roles/{id}", PermRoles, m.roleEdit),
			bo("POST", "/admin/roles/{id}", PermRoles, m.roleUpdate),
			bo("POST", "/admin/roles/{id}/delete", PermRoles, m.roleDelete),

			bo("GET", "/admin/units", PermUnits, m.units),
			bo("GET", "/admin/units/new", PermUnits, m.unitNew),
			bo("POST", "/admin/units", PermUnits, m.unitCreate),
			bo("GET", "/admin/units/{id}", PermUnits, m.unitEdit),
			bo("POST", "/admin/units/{id}", PermUnits, m.unitUpdate),

			bo("GET", "/admin/orgs", PermOrgs, m.orgs),
			bo("GET", "/admin/orgs/new", PermOrgs, m.orgNew),
			bo("POST", "/admin/orgs", PermOrgs, m.orgCreate),
			bo("GET", "/admin/orgs/{id}", PermOrgs, m.orgEdit),
			bo("POST", "/admin/orgs/{id}", PermOrgs, m.orgUpdate),
		},
		Menu: []kernel.MenuItem{
			{Section: "kernel.auth.menu.section", Title: "kernel.auth.menu.users", Path: "/admin/users", Perm: PermUsers, Order: 900},
			{Section: "kernel.auth.menu.section", Title: "kernel.auth.menu.roles", Path: "/admin/roles", Perm: PermRoles, Order: 910},
			{Section: "kernel.auth.menu.section", Title: "kernel.auth.menu.units", Path: "/admin/units", Perm: PermUnits, Order: 920},
			{Section: "kernel.auth.menu.section", Title: "kernel.auth.menu.orgs", Path: "/admin/orgs", Perm: PermOrgs, Order: 930},
			{Section: "kernel.auth.menu.section", Title: "kernel.auth.menu.account", Path: "/admin/account", Perm: kernel.PermAnyAgent, Order: 990},
		},
	}
}

// Start creates the first administrator when the instance has no agent at all.
func (m *Module) Start(ctx context.Context) error {
	if err := m.st.purgeSessions(ctx, m.st.DB.Write(), m.now()); err != nil {
		m.log.Warn("purging expired sessions", "err", err)
	}
	_, err := m.FirstAdmin(ctx)
	return err
}

// FirstAdminEmail is the address of the administrator created on first start.
const FirstAdminEmail = "admin@localhost"

// FirstAdmin creates admin@localhost (superadmin and administrator of the default
// organisation, no password) when no agent exists, and returns its one-time setup link,
// also logged and written to <data>/first-admin.txt. It returns "" when agents exist.
func (m *Module) FirstAdmin(ctx context.Context) (string, error) {
	var link string
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		n, err := m.st.CountAgents(ctx, tx)
		if err != nil || n > 0 {
			return err
		}
		org, err := m.st.DefaultOrgID(ctx, tx)
		if err != nil {
			return err
		}
		now := m.now()
		a := &AgentRecord{OrgID: org, Email: FirstAdminEmail, Name: "Administrateur", Lang: m.defaultLang(),
			Active: true, OrgAdmin: true, Superadmin: true}
		if err := m.st.CreateAgent(ctx, tx, a, now); err != nil {
			if store.IsUniqueViolation(err) {
				return nil // another node did it
			}
			return err
		}
		token, err := m.st.CreateToken(ctx, tx, a.ID, purposeSetup, now, now.Add(24*time.Hour))
		if err != nil {
			return err
		}
		link = m.link("/admin/setup/" + token)
		return m.audit(kernel.WithAgent(ctx, toAgent(*a, "")), tx, kernel.AuditEntry{Action: "users.create_first_admin",
			ResourceType: "agent", ResourceID: fmt.Sprint(a.ID), After: snapshotAgent(*a)})
	})
	if err != nil || link == "" {
		return "", err
	}
	m.log.Info("first administrator created: open this one-time link (valid 24 hours) to set its password", "email", FirstAdminEmail, "setup_link", link)
	if dir := m.env.Config.DataDir; dir != "" {
		msg := fmt.Sprintf("Parvis: first administrator %s\nOpen this one-time link within 24 hours to set the password:\n%s\n", FirstAdminEmail, link)
		if err := os.MkdirAll(dir, 0o750); err == nil {
			if err := os.WriteFile(filepath.Join(dir, "first-admin.txt"), []byte(msg), 0o600); err != nil {
				m.log.Warn("writing first-admin.txt", "err", err)
			}
		}
	}
	return link, nil
}

func (m *Module) defaultLang() string {
	if m.env.Config.Lang != "" {
		return m.env.Config.Lang
	}
	return "fr"
}

func (m *Module) link(path string) string { return strings.TrimRight(m.env.Config.BaseURL, "/") + path }

// Commands contributes `parvis admin create EMAIL`.
func (m *Module) Commands() []kernel.Command {
	return []kernel.Command{{Name: "admin create", Args: "EMAIL",
		Help: "create an administrator of the default organisation and print a one-time setup link",
		Run: func(ctx context.Context, args []string, out io.Writer) error {
			if len(args) != 1 {
				return fmt.Errorf("usage: parvis admin create EMAIL")
			}
			link, err := m.CreateAdmin(audit.WithActor(ctx, "cli"), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "administrator %s created; open this one-time link within 24 hours to set the password:\n%s\n", normEmail(args[0]), link)
			return nil
		}}}
}

// CreateAdmin creates an administrator of the default organisation without a password
// and returns a one-time setup link.
func (m *Module) CreateAdmin(ctx context.Context, email string) (string, error) {
	email = normEmail(email)
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email {
		return "", fmt.Errorf("%q is not an email address", email)
	}
	var link string
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		org, err := m.st.DefaultOrgID(ctx, tx)
		if err != nil {
			return err
		}
		now := m.now()
		a := &AgentRecord{OrgID: org, Email: email, Name: email, Lang: m.defaultLang(), Active: true, OrgAdmin: true}
		if err := m.st.CreateAgent(ctx, tx, a, now); err != nil {
			if isConflict(err) {
				return fmt.Errorf("an agent with email %s already exists in the default organisation", email)
			}
			return err
		}
		token, err := m.st.CreateToken(ctx, tx, a.ID, purposeSetup, now, now.Add(24*time.Hour))
		if err != nil {
			return err
		}
		link = m.link("/admin/setup/" + token)
		return m.audit(audit.WithOrg(ctx, org), tx, kernel.AuditEntry{Action: "users.create_admin", ResourceType: "agent", ResourceID: fmt.Sprint(a.ID), After: snapshotAgent(*a)})
	})
	return link, err
}

// audit records a change in the caller's transaction (a no-op when no auditor exists, in
// isolated tests).
func (m *Module) audit(ctx context.Context, tx *store.Tx, e kernel.AuditEntry) error {
	if m.env.Audit == nil {
		return nil
	}
	return m.env.Audit.Record(ctx, tx, e)
}

// mailer returns the mail service, nil when none is compiled in.
func (m *Module) mailer() kernel.Mailer {
	if m.env.Mail != nil {
		return m.env.Mail
	}
	mm, _ := kernel.Service[kernel.Mailer](m.env)
	return mm
}

// auditAgent is what the audit log keeps of an agent (never secrets).
type auditAgent struct {
	Email    string  `json:"email"`
	Name     string  `json:"name"`
	Lang     string  `json:"lang"`
	Active   bool    `json:"active"`
	OrgAdmin bool    `json:"org_admin"`
	Roles    []int64 `json:"roles"`
	Units    []int64 `json:"units"`
}

func snapshotAgent(a AgentRecord) auditAgent {
	return auditAgent{Email: a.Email, Name: a.Name, Lang: a.Lang, Active: a.Active, OrgAdmin: a.OrgAdmin, Roles: a.RoleIDs, Units: a.UnitIDs}
}
