package auth

import "time"

// Org is an organisation: a town hosted by the instance, root of its own units, agents,
// roles and content. Nothing crosses between organisations.
type Org struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

// Unit is a node of an organisation's tree (city → district town hall → service).
type Unit struct {
	ID       int64
	OrgID    int64
	ParentID int64 // 0 for a top-level unit
	Name     string
	Depth    int // filled by tree listings
}

// AgentRecord is a stored back-office account.
type AgentRecord struct {
	ID           int64
	OrgID        int64
	Email        string
	Name         string
	Lang         string
	PasswordHash string
	TOTPSecret   string
	Active       bool
	OrgAdmin     bool
	Superadmin   bool
	CreatedAt    time.Time
	RoleIDs      []int64
	UnitIDs      []int64
}

// Grant scopes.
const (
	ScopeAll      = "all"      // every resource of the organisation
	ScopeResource = "resource" // one resource (type + id)
	ScopeUnit     = "unit"     // resources of a unit and its sub-units
	ScopeMember   = "member"   // resources of the units the agent belongs to (and sub-units)
)

// Grant gives a permission on a scope.
type Grant struct {
	Perm         string
	Scope        string
	ResourceType string
	ResourceID   string
	UnitID       int64
}

// Role is a named set of grants in an organisation.
type Role struct {
	ID          int64
	OrgID       int64
	Name        string
	Description string
	Grants      []Grant
}

// Session is a signed-in browser.
type Session struct {
	ID        int64
	AgentID   int64
	Stage     string
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time
	ClientIP  string
	UserAgent string
}

// APIToken is a personal API token, limited to Perms.
type APIToken struct {
	ID        int64
	AgentID   int64
	Name      string
	Perms     []string
	CreatedAt time.Time
	ExpiresAt time.Time
	LastUsed  *time.Time
}

// Permissions that no role can grant: they belong to the instance operator (superadmin).
var instancePerms = map[string]bool{PermOrgs: true}

// Permissions of this module.
const (
	PermUsers  = "kernel.users.manage"
	PermRoles  = "kernel.roles.manage"
	PermUnits  = "kernel.units.manage"
	PermOrgs   = "kernel.orgs.manage"
	PermTokens = "kernel.tokens.create"
)
