package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
)

// NewAgent describes an agent to create from Go code (tests, suites, imports).
type NewAgent struct {
	OrgID    int64
	Email    string
	Name     string
	Password string // "" leaves the account without a password
	Lang     string
	OrgAdmin bool
	// Superadmin makes the agent an operator of the instance (kernel.orgs.manage).
	Superadmin bool
	// Perms are granted on all resources of the organisation through a role of the
	// agent's own; kernel.orgs.manage, which no role grants, sets Superadmin instead.
	Perms []string
	// Grants are added to that role with their own scopes.
	Grants  []Grant
	UnitIDs []int64
}

// CreateAgent creates an agent, and a role of its own when it is given permissions.
func (m *Module) CreateAgent(ctx context.Context, n NewAgent) (*kernel.Agent, error) {
	var hash string
	if n.Password != "" {
		var err error
		if hash, err = HashPassword(n.Password); err != nil {
			return nil, err
		}
	}
	if n.Name == "" {
		n.Name = n.Email
	}
	rec := &AgentRecord{OrgID: n.OrgID, Email: n.Email, Name: n.Name, Lang: n.Lang, PasswordHash: hash, Active: true,
		OrgAdmin: n.OrgAdmin, Superadmin: n.Superadmin, UnitIDs: n.UnitIDs}
	role := Role{OrgID: n.OrgID, Name: "Droits de " + normEmail(n.Email), Grants: n.Grants}
	for _, p := range n.Perms {
		if instancePerms[p] {
			rec.Superadmin = true
			continue
		}
		role.Grants = append(role.Grants, Grant{Perm: p, Scope: ScopeAll})
	}
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		now := m.now()
		if len(role.Grants) > 0 {
			if err := m.st.CreateRole(ctx, tx, &role, now); err != nil {
				return err
			}
			rec.RoleIDs = []int64{role.ID}
		}
		return m.st.CreateAgent(ctx, tx, rec, now)
	})
	if err != nil {
		return nil, fmt.Errorf("create agent %s: %w", n.Email, err)
	}
	return toAgent(*rec, ""), nil
}

// CreateUnit adds a unit from Go code.
func (m *Module) CreateUnit(ctx context.Context, orgID, parent int64, name string) (int64, error) {
	var id int64
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		id, err = m.st.CreateUnit(ctx, tx, orgID, parent, name, m.now())
		return err
	})
	return id, err
}

// CreateOrgOnly adds an organisation without an administrator (tests, imports).
func (m *Module) CreateOrgOnly(ctx context.Context, name string) (int64, error) {
	var id int64
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		id, err = m.st.CreateOrg(ctx, tx, name, m.now())
		return err
	})
	return id, err
}

// DefaultOrg returns the ID of the default organisation.
func (m *Module) DefaultOrg(ctx context.Context) (int64, error) {
	return m.st.DefaultOrgID(ctx, m.st.DB.Read())
}

// SessionToken opens a signed-in session for an agent without a password check (tests,
// and future single sign-on through OpenID Connect) and returns the cookie value.
func (m *Module) SessionToken(ctx context.Context, agentID int64, clientIP, userAgent string) (string, error) {
	var token string
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		now := m.now()
		var err error
		token, err = m.st.CreateSession(ctx, tx, agentID, stageOK, clientIP, userAgent, now, now.Add(m.MaxAge))
		return err
	})
	return token, err
}

// APIToken creates a personal API token for an agent (tests, scripts).
func (m *Module) APIToken(ctx context.Context, agentID int64, name string, perms []string, ttl time.Duration) (string, error) {
	var token string
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		now := m.now()
		var err error
		token, _, err = m.st.CreateAPIToken(ctx, tx, agentID, name, perms, now, now.Add(ttl))
		return err
	})
	return token, err
}

// SetupToken creates a one-time setup link path for an agent.
func (m *Module) SetupToken(ctx context.Context, agentID int64) (string, error) {
	var token string
	err := m.st.DB.InTx(ctx, func(tx *store.Tx) error {
		now := m.now()
		var err error
		token, err = m.st.CreateToken(ctx, tx, agentID, purposeSetup, now, now.Add(24*time.Hour))
		return err
	})
	return "/admin/setup/" + token, err
}

// IsAPIToken reports whether s looks like a Parvis API token.
func IsAPIToken(s string) bool { return strings.HasPrefix(s, apiTokenPrefix) }
