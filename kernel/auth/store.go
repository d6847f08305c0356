package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// Store holds the SQL of the module, grouped per table. Every function taking an org ID
// confines its query to that organisation: a row of another one is "not found".
type Store struct {
	DB   *store.DB
	memo rightsMemo // agents' grants and units by rights version (rights.go)
}

func notFound(err error, key string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return &errs.Error{Code: errs.NotFound, Key: key, Err: store.ErrNotFound}
	}
	return err
}

// ---- organisations

// Orgs lists every organisation (for the instance operator).
func (s *Store) Orgs(ctx context.Context) ([]Org, error) {
	rows, err := s.DB.Read().QueryContext(ctx, `SELECT id, name, created_at FROM auth_orgs ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	defer rows.Close()
	var out []Org
	for rows.Next() {
		var o Org
		if err := rows.Scan(&o.ID, &o.Name, &o.CreatedAt); err != nil {
			return nil, fmt.Errorf("list orgs: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Org returns one organisation.
func (s *Store) Org(ctx context.Context, q store.Querier, id int64) (Org, error) {
	var o Org
	err := q.QueryRowContext(ctx, `SELECT id, name, created_at FROM auth_orgs WHERE id = ?`, id).Scan(&o.ID, &o.Name, &o.CreatedAt)
	return o, notFound(err, "kernel.auth.error.org_not_found")
}

// DefaultOrgID is the first organisation, created by the migration.
func (s *Store) DefaultOrgID(ctx context.Context, q store.Querier) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT MIN(id) FROM auth_orgs`).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("default org: %w", err)
	}
	return id, nil
}

// CreateOrg adds an organisation.
func (s *Store) CreateOrg(ctx context.Context, tx *store.Tx, name string, now time.Time) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO auth_orgs (name, created_at) VALUES (?, ?) RETURNING id`, name, now).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create org: %w", err)
	}
	return id, nil
}

// RenameOrg renames an organisation.
func (s *Store) RenameOrg(ctx context.Context, tx *store.Tx, id int64, name string) error {
	res, err := tx.ExecContext(ctx, `UPDATE auth_orgs SET name = ? WHERE id = ?`, name, id)
	return affected(res, err, "kernel.auth.error.org_not_found")
}

func affected(res sql.Result, err error, key string) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return &errs.Error{Code: errs.NotFound, Key: key, Err: store.ErrNotFound}
	}
	return nil
}

// ---- units

// Units lists an organisation's units as a tree: parents first, children sorted by name,
// each with its depth.
func (s *Store) Units(ctx context.Context, q store.Querier, orgID int64) ([]Unit, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, org_id, COALESCE(parent_id, 0), name FROM auth_units WHERE org_id = ? ORDER BY name, id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list units: %w", err)
	}
	defer rows.Close()
	var all []Unit
	for rows.Next() {
		var u Unit
		if err := rows.Scan(&u.ID, &u.OrgID, &u.ParentID, &u.Name); err != nil {
			return nil, fmt.Errorf("list units: %w", err)
		}
		all = append(all, u)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return treeOrder(all), nil
}

// treeOrder sorts units depth-first (siblings keep their order) and sets Depth.
func treeOrder(all []Unit) []Unit {
	kids := map[int64][]Unit{}
	ids := map[int64]bool{}
	for _, u := range all {
		ids[u.ID] = true
	}
	for _, u := range all {
		p := u.ParentID
		if !ids[p] {
			p = 0
		}
		kids[p] = append(kids[p], u)
	}
	out := make([]Unit, 0, len(all))
	seen := map[int64]bool{}
	var walk func(p int64, depth int)
	walk = func(p int64, depth int) {
		for _, u := range kids[p] {
			if seen[u.ID] {
				continue
			}
			seen[u.ID] = true
			u.Depth = depth
			out = append(out, u)
			walk(u.ID, depth+1)
		}
	}
	walk(0, 0)
	return out
}

// descendants returns the given units with all their sub-units, from a parent map.
func descendants(parent map[int64]int64, roots []int64) []int64 {
	kids := map[int64][]int64{}
	for id, p := range parent {
		kids[p] = append(kids[p], id)
	}
	seen := map[int64]bool{}
	stack := append([]int64(nil), roots...)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[id] {
			continue
		}
		if _, ok := parent[id]; !ok {
			continue // not a unit of this organisation
		}
		seen[id] = true
		stack = append(stack, kids[id]...)
	}
	out := make([]int64, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

// unitParents maps every unit of an organisation to its parent (0 for top level).
func (s *Store) unitParents(ctx context.Context, q store.Querier, orgID int64) (map[int64]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, COALESCE(parent_id, 0) FROM auth_units WHERE org_id = ?`, orgID)
	if err != nil {
		return nil, fmt.Errorf("unit tree: %w", err)
	}
	defer rows.Close()
	m := map[int64]int64{}
	for rows.Next() {
		var id, p int64
		if err := rows.Scan(&id, &p); err != nil {
			return nil, err
		}
		m[id] = p
	}
	return m, rows.Err()
}

// Unit returns one unit of the organisation.
func (s *Store) Unit(ctx context.Context, q store.Querier, orgID, id int64) (Unit, error) {
	var u Unit
	err := q.QueryRowContext(ctx, `SELECT id, org_id, COALESCE(parent_id, 0), name FROM auth_units WHERE id = ? AND org_id = ?`, id, orgID).
		Scan(&u.ID, &u.OrgID, &u.ParentID, &u.Name)
	return u, notFound(err, "kernel.auth.error.unit_not_found")
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// CreateUnit adds a unit under parent (0: top level); the parent must be of the same org.
func (s *Store) CreateUnit(ctx context.Context, tx *store.Tx, orgID, parent int64, name string, now time.Time) (int64, error) {
	if parent != 0 {
		if _, err := s.Unit(ctx, tx, orgID, parent); err != nil {
			return 0, errs.OnField(errs.Invalid, "parent", "kernel.auth.error.unit_parent")
		}
	}
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO auth_units (org_id, parent_id, name, created_at) VALUES (?, ?, ?, ?) RETURNING id`,
		orgID, nullID(parent), name, now).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create unit: %w", err)
	}
	return id, nil
}

// UpdateUnit renames and moves a unit, refusing to put it under itself or a descendant.
func (s *Store) UpdateUnit(ctx context.Context, tx *store.Tx, orgID, id, parent int64, name string) error {
	if _, err := s.Unit(ctx, tx, orgID, id); err != nil {
		return err
	}
	if parent != 0 {
		parents, err := s.unitParents(ctx, tx, orgID)
		if err != nil {
			return err
		}
		if _, ok := parents[parent]; !ok {
			return errs.OnField(errs.Invalid, "parent", "kernel.auth.error.unit_parent")
		}
		for _, d := range descendants(parents, []int64{id}) {
			if d == parent {
				return errs.OnField(errs.Invalid, "parent", "kernel.auth.error.unit_cycle")
			}
		}
	}
	_, err := tx.ExecContext(ctx, `UPDATE auth_units SET name = ?, parent_id = ? WHERE id = ? AND org_id = ?`, name, nullID(parent), id, orgID)
	if err != nil {
		return fmt.Errorf("update unit: %w", err)
	}
	return nil
}

// ---- agents

const agentCols = `id, org_id, email, name, lang, password_hash, totp_secret, active, org_admin, superadmin, created_at`

func scanAgent(sc interface{ Scan(...any) error }) (AgentRecord, error) {
	var a AgentRecord
	err := sc.Scan(&a.ID, &a.OrgID, &a.Email, &a.Name, &a.Lang, &a.PasswordHash, &a.TOTPSecret, &a.Active, &a.OrgAdmin, &a.Superadmin, &a.CreatedAt)
	return a, err
}

// CountAgents counts the agents of the whole instance.
func (s *Store) CountAgents(ctx context.Context, q store.Querier) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_agents`).Scan(&n)
	return n, err
}

// Agent returns an agent of the organisation, with its roles and units.
func (s *Store) Agent(ctx context.Context, q store.Querier, orgID, id int64) (AgentRecord, error) {
	a, err := scanAgent(q.QueryRowContext(ctx, `SELECT `+agentCols+` FROM auth_agents WHERE id = ? AND org_id = ?`, id, orgID))
	if err != nil {
		return a, notFound(err, "kernel.auth.error.user_not_found")
	}
	if a.RoleIDs, err = s.ids(ctx, q, `SELECT role_id FROM auth_agent_roles WHERE agent_id = ? ORDER BY role_id`, id); err != nil {
		return a, err
	}
	a.UnitIDs, err = s.ids(ctx, q, `SELECT unit_id FROM auth_agent_units WHERE agent_id = ? ORDER BY unit_id`, id)
	return a, err
}

// agentByID returns an agent whatever its organisation (sessions, tokens).
func (s *Store) agentByID(ctx context.Context, q store.Querier, id int64) (AgentRecord, error) {
	a, err := scanAgent(q.QueryRowContext(ctx, `SELECT `+agentCols+` FROM auth_agents WHERE id = ?`, id))
	return a, notFound(err, "kernel.auth.error.user_not_found")
}

// AgentsByEmail returns the active agents with this email, in any organisation.
func (s *Store) AgentsByEmail(ctx context.Context, q store.Querier, email string) ([]AgentRecord, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+agentCols+` FROM auth_agents WHERE email = ? AND active = ? ORDER BY id`, normEmail(email), true)
	if err != nil {
		return nil, fmt.Errorf("agents by email: %w", err)
	}
	defer rows.Close()
	var out []AgentRecord
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Agents lists an organisation's agents by name.
func (s *Store) Agents(ctx context.Context, q store.Querier, orgID int64) ([]AgentRecord, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+agentCols+` FROM auth_agents WHERE org_id = ? ORDER BY name, email`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	defer rows.Close()
	var out []AgentRecord
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *Store) ids(ctx context.Context, q store.Querier, query string, args ...any) ([]int64, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// CreateAgent stores a new agent (email unique per organisation) with its roles and units.
func (s *Store) CreateAgent(ctx context.Context, tx *store.Tx, a *AgentRecord, now time.Time) error {
	if a.Lang == "" {
		a.Lang = "fr"
	}
	a.Email = normEmail(a.Email)
	err := tx.QueryRowContext(ctx, `INSERT INTO auth_agents (org_id, email, name, lang, password_hash, totp_secret, active, org_admin, superadmin, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		a.OrgID, a.Email, a.Name, a.Lang, a.PasswordHash, a.TOTPSecret, a.Active, a.OrgAdmin, a.Superadmin, now, now).Scan(&a.ID)
	if store.IsUniqueViolation(err) {
		return errs.OnField(errs.Conflict, "email", "kernel.auth.error.email_taken")
	}
	if err != nil {
		return fmt.Errorf("create agent: %w", err)
	}
	a.CreatedAt = now
	return s.setLinks(ctx, tx, a)
}

// UpdateAgent saves name, email, language, flags, roles and units (not the password).
func (s *Store) UpdateAgent(ctx context.Context, tx *store.Tx, a *AgentRecord, now time.Time) error {
	a.Email = normEmail(a.Email)
	res, err := tx.ExecContext(ctx, `UPDATE auth_agents SET email = ?, name = ?, lang = ?, active = ?, org_admin = ?, updated_at = ? WHERE id = ? AND org_id = ?`,
		a.Email, a.Name, a.Lang, a.Active, a.OrgAdmin, now, a.ID, a.OrgID)
	if store.IsUniqueViolation(err) {
		return errs.OnField(errs.Conflict, "email", "kernel.auth.error.email_taken")
	}
	if err := affected(res, err, "kernel.auth.error.user_not_found"); err != nil {
		return err
	}
	return s.setLinks(ctx, tx, a)
}

// setLinks replaces an agent's roles and units, keeping only those of its organisation.
func (s *Store) setLinks(ctx context.Context, tx *store.Tx, a *AgentRecord) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM auth_agent_roles WHERE agent_id = ?`, a.ID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM auth_agent_units WHERE agent_id = ?`, a.ID); err != nil {
		return err
	}
	for _, r := range a.RoleIDs {
		res, err := tx.ExecContext(ctx, `INSERT INTO auth_agent_roles (agent_id, role_id) SELECT ?, id FROM auth_roles WHERE id = ? AND org_id = ?`, a.ID, r, a.OrgID)
		if err := affected(res, err, "kernel.auth.error.role_not_found"); err != nil {
			return errs.OnField(errs.Invalid, "roles", "kernel.auth.error.role_not_found")
		}
	}
	for _, u := range a.UnitIDs {
		res, err := tx.ExecContext(ctx, `INSERT INTO auth_agent_units (agent_id, unit_id) SELECT ?, id FROM auth_units WHERE id = ? AND org_id = ?`, a.ID, u, a.OrgID)
		if err := affected(res, err, "kernel.auth.error.unit_not_found"); err != nil {
			return errs.OnField(errs.Invalid, "units", "kernel.auth.error.unit_not_found")
		}
	}
	return nil
}

// SetPassword stores a new password hash.
func (s *Store) SetPassword(ctx context.Context, tx *store.Tx, agentID int64, hash string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE auth_agents SET password_hash = ?, updated_at = ? WHERE id = ?`, hash, now, agentID)
	return affected(res, err, "kernel.auth.error.user_not_found")
}

// SetTOTP stores (or clears, with "") the TOTP secret.
func (s *Store) SetTOTP(ctx context.Context, tx *store.Tx, agentID int64, secret string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE auth_agents SET totp_secret = ?, updated_at = ? WHERE id = ?`, secret, now, agentID)
	if err := affected(res, err, "kernel.auth.error.user_not_found"); err != nil {
		return err
	}
	// The recovery codes belonged to the second factor being replaced or removed.
	return s.DeleteRecoveryCodes(ctx, tx, agentID)
}

// SetActive activates or deactivates an agent; deactivation also ends its sessions.
func (s *Store) SetActive(ctx context.Context, tx *store.Tx, orgID, agentID int64, active bool, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE auth_agents SET active = ?, updated_at = ? WHERE id = ? AND org_id = ?`, active, now, agentID, orgID)
	if err := affected(res, err, "kernel.auth.error.user_not_found"); err != nil {
		return err
	}
	if !active {
		return s.DeleteSessions(ctx, tx, agentID)
	}
	return nil
}

// SetFlags sets the org admin and superadmin flags (first administrator, org creation).
func (s *Store) SetFlags(ctx context.Context, tx *store.Tx, agentID int64, orgAdmin, superadmin bool) error {
	res, err := tx.ExecContext(ctx, `UPDATE auth_agents SET org_admin = ?, superadmin = ? WHERE id = ?`, orgAdmin, superadmin, agentID)
	return affected(res, err, "kernel.auth.error.user_not_found")
}

// ---- roles

// Roles lists an organisation's roles with their grants.
func (s *Store) Roles(ctx context.Context, q store.Querier, orgID int64) ([]Role, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, org_id, name, description FROM auth_roles WHERE org_id = ? ORDER BY name, id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	var out []Role
	for rows.Next() {
		var r Role
		if err := rows.Scan(&r.ID, &r.OrgID, &r.Name, &r.Description); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Grants, err = s.grants(ctx, q, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Role returns one role of the organisation with its grants.
func (s *Store) Role(ctx context.Context, q store.Querier, orgID, id int64) (Role, error) {
	var r Role
	err := q.QueryRowContext(ctx, `SELECT id, org_id, name, description FROM auth_roles WHERE id = ? AND org_id = ?`, id, orgID).
		Scan(&r.ID, &r.OrgID, &r.Name, &r.Description)
	if err != nil {
		return r, notFound(err, "kernel.auth.error.role_not_found")
	}
	r.Grants, err = s.grants(ctx, q, id)
	return r, err
}

func (s *Store) grants(ctx context.Context, q store.Querier, roleID int64) ([]Grant, error) {
	rows, err := q.QueryContext(ctx, `SELECT perm, scope, resource_type, resource_id, COALESCE(unit_id, 0) FROM auth_grants WHERE role_id = ? ORDER BY perm, id`, roleID)
	if err != nil {
		return nil, fmt.Errorf("grants: %w", err)
	}
	defer rows.Close()
	var out []Grant
	for rows.Next() {
		var g Grant
		if err := rows.Scan(&g.Perm, &g.Scope, &g.ResourceType, &g.ResourceID, &g.UnitID); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// CreateRole stores a role and its grants.
func (s *Store) CreateRole(ctx context.Context, tx *store.Tx, r *Role, now time.Time) error {
	err := tx.QueryRowContext(ctx, `INSERT INTO auth_roles (org_id, name, description, created_at) VALUES (?, ?, ?, ?) RETURNING id`,
		r.OrgID, r.Name, r.Description, now).Scan(&r.ID)
	if store.IsUniqueViolation(err) {
		return errs.OnField(errs.Conflict, "name", "kernel.auth.error.role_taken")
	}
	if err != nil {
		return fmt.Errorf("create role: %w", err)
	}
	return s.setGrants(ctx, tx, r)
}

// UpdateRole saves a role's name, description and grants.
func (s *Store) UpdateRole(ctx context.Context, tx *store.Tx, r *Role) error {
	res, err := tx.ExecContext(ctx, `UPDATE auth_roles SET name = ?, description = ? WHERE id = ? AND org_id = ?`, r.Name, r.Description, r.ID, r.OrgID)
	if store.IsUniqueViolation(err) {
		return errs.OnField(errs.Conflict, "name", "kernel.auth.error.role_taken")
	}
	if err := affected(res, err, "kernel.auth.error.role_not_found"); err != nil {
		return err
	}
	return s.setGrants(ctx, tx, r)
}

// DeleteRole removes a role (its grants and assignments go with it).
func (s *Store) DeleteRole(ctx context.Context, tx *store.Tx, orgID, id int64) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM auth_roles WHERE id = ? AND org_id = ?`, id, orgID)
	return affected(res, err, "kernel.auth.error.role_not_found")
}

func (s *Store) setGrants(ctx context.Context, tx *store.Tx, r *Role) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM auth_grants WHERE role_id = ?`, r.ID); err != nil {
		return err
	}
	for _, g := range r.Grants {
		if instancePerms[g.Perm] {
			return errs.OnField(errs.Invalid, "perms", "kernel.auth.error.perm_reserved")
		}
		switch g.Scope {
		case ScopeAll, ScopeMember:
			g.UnitID, g.ResourceType, g.ResourceID = 0, "", ""
		case ScopeUnit:
			if _, err := s.Unit(ctx, tx, r.OrgID, g.UnitID); err != nil {
				return errs.OnField(errs.Invalid, "unit", "kernel.auth.error.unit_not_found")
			}
		case ScopeResource:
			if g.ResourceType == "" || g.ResourceID == "" {
				return errs.OnField(errs.Invalid, "scope", "kernel.auth.error.scope")
			}
		default:
			return errs.OnField(errs.Invalid, "scope", "kernel.auth.error.scope")
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO auth_grants (role_id, perm, scope, resource_type, resource_id, unit_id) VALUES (?, ?, ?, ?, ?, ?)`,
			r.ID, g.Perm, g.Scope, g.ResourceType, g.ResourceID, nullID(g.UnitID))
		if err != nil {
			return fmt.Errorf("grant: %w", err)
		}
	}
	return nil
}

// ---- what the Authorizer needs

// agentRights is everything needed to answer permission questions for one agent.
type agentRights struct {
	active, orgAdmin, superadmin bool
	orgID                        int64
	grants                       []Grant
	member                       []int64         // units the agent belongs to, sub-units included
	parents                      map[int64]int64 // the organisation's unit tree
}
