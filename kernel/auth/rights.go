package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// What the Authorizer knows of an agent, and how it stays exact without re-reading it on
// every request.
//
// The agent's own flags (organisation, active, org_admin, superadmin) are read on every
// request, in the single query that checks the session or API token (or, for another
// agent, in one short query). The rest — the grants of its roles, its units, the unit tree
// of its organisation — changes seldom and takes three queries to read, so each node keeps
// it in memory, tagged with the organisation's rights_version. Triggers raise that version
// in the very transaction that changes a grant, a role assignment, a unit membership or the
// unit tree (migrations 00003), and the same query that checks the session returns it: a
// node uses its copy only while the version it just read matches, so a change applies from
// the next request on, on every node, as when everything was read per request. Sessions and
// API tokens themselves are never cached: a logout, a revoked token or a deactivated agent
// stops working at once everywhere.

// rightsHead is what a request's credential query returns about the agent.
type rightsHead struct {
	orgID                        int64
	active, orgAdmin, superadmin bool
	version                      int64 // the organisation's rights_version
}

// heldRights is the cached part of an agent's rights; shared between requests, read-only.
type heldRights struct {
	orgID, version int64
	grants         []Grant
	member         []int64
	parents        map[int64]int64
}

type orgTree struct {
	version int64
	parents map[int64]int64
}

// rightsCache bounds: beyond them an arbitrary entry makes room.
const (
	maxCachedAgents = 20000
	maxCachedOrgs   = 2000
)

type rightsMemo struct {
	mu     sync.Mutex
	agents map[int64]*heldRights
	orgs   map[int64]*orgTree
}

func (c *rightsMemo) agent(id, orgID, version int64) *heldRights {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.agents[id]; h != nil && h.orgID == orgID && h.version == version {
		return h
	}
	return nil
}

func (c *rightsMemo) tree(orgID, version int64) map[int64]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.orgs[orgID]; t != nil && t.version == version {
		return t.parents
	}
	return nil
}

func (c *rightsMemo) put(agentID int64, h *heldRights) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.agents == nil {
		c.agents, c.orgs = map[int64]*heldRights{}, map[int64]*orgTree{}
	}
	// Versions only grow: an older copy, read by a slower request, never replaces a newer one.
	if old := c.agents[agentID]; old == nil || old.orgID != h.orgID || old.version <= h.version {
		if old == nil && len(c.agents) >= maxCachedAgents {
			for k := range c.agents {
				delete(c.agents, k)
				break
			}
		}
		c.agents[agentID] = h
	}
	if old := c.orgs[h.orgID]; old == nil || old.version <= h.version {
		if old == nil && len(c.orgs) >= maxCachedOrgs {
			for k := range c.orgs {
				delete(c.orgs, k)
				break
			}
		}
		c.orgs[h.orgID] = &orgTree{version: h.version, parents: h.parents}
	}
}

// rights returns the rights of any agent: one query for its flags and its organisation's
// rights version, the rest from memory when that version matches.
func (s *Store) rights(ctx context.Context, agentID int64) (*agentRights, error) {
	var h rightsHead
	err := s.DB.Read().QueryRowContext(ctx, `SELECT a.org_id, a.active, a.org_admin, a.superadmin, o.rights_version
		FROM auth_agents a JOIN auth_orgs o ON o.id = a.org_id WHERE a.id = ?`, agentID).
		Scan(&h.orgID, &h.active, &h.orgAdmin, &h.superadmin, &h.version)
	if errors.Is(err, sql.ErrNoRows) {
		return &agentRights{}, nil // unknown agent: no rights
	}
	if err != nil {
		return nil, fmt.Errorf("rights: %w", err)
	}
	return s.rightsAt(ctx, agentID, h)
}

// rightsAt completes the agent's flags h with its grants and units, read from the database
// unless this node holds them at h's version.
func (s *Store) rightsAt(ctx context.Context, agentID int64, h rightsHead) (*agentRights, error) {
	r := &agentRights{orgID: h.orgID, active: h.active, orgAdmin: h.orgAdmin, superadmin: h.superadmin}
	held := s.memo.agent(agentID, h.orgID, h.version)
	if held == nil {
		var err error
		if held, err = s.loadRights(ctx, agentID, h); err != nil {
			return nil, err
		}
		s.memo.put(agentID, held)
	}
	r.grants, r.member, r.parents = held.grants, held.member, held.parents
	return r, nil
}

// loadRights reads what rightsAt keeps. It runs after the version was read, so what it
// reads is at least as recent as that version: a change committed in between only makes
// the next request read again.
func (s *Store) loadRights(ctx context.Context, agentID int64, h rightsHead) (*heldRights, error) {
	q := s.DB.Read()
	held := &heldRights{orgID: h.orgID, version: h.version}
	rows, err := q.QueryContext(ctx, `SELECT g.perm, g.scope, g.resource_type, g.resource_id, COALESCE(g.unit_id, 0)
		FROM auth_agent_roles ar JOIN auth_roles ro ON ro.id = ar.role_id JOIN auth_grants g ON g.role_id = ro.id
		WHERE ar.agent_id = ? AND ro.org_id = ?`, agentID, h.orgID)
	if err != nil {
		return nil, fmt.Errorf("rights: %w", err)
	}
	for rows.Next() {
		var g Grant
		if err := rows.Scan(&g.Perm, &g.Scope, &g.ResourceType, &g.ResourceID, &g.UnitID); err != nil {
			rows.Close()
			return nil, err
		}
		held.grants = append(held.grants, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rights: %w", err)
	}
	if held.parents = s.memo.tree(h.orgID, h.version); held.parents == nil {
		if held.parents, err = s.unitParents(ctx, q, h.orgID); err != nil {
			return nil, err
		}
	}
	mine, err := s.ids(ctx, q, `SELECT unit_id FROM auth_agent_units WHERE agent_id = ?`, agentID)
	if err != nil {
		return nil, err
	}
	held.member = descendants(held.parents, mine)
	return held, nil
}

// ---- the credential queries of the middleware: one each, agent and version included

// principalCols are the agent's columns and its organisation's rights version, read with
// a session or an API token (auth_agents a, auth_orgs o).
const principalCols = `a.id, a.org_id, a.email, a.name, a.lang, a.active, a.org_admin, a.superadmin, o.rights_version`

func scanPrincipal(dest []any, rec *AgentRecord, h *rightsHead) []any {
	return append(dest, &rec.ID, &rec.OrgID, &rec.Email, &rec.Name, &rec.Lang, &rec.Active, &rec.OrgAdmin, &rec.Superadmin, &h.version)
}

func headOf(rec AgentRecord, version int64) rightsHead {
	return rightsHead{orgID: rec.OrgID, active: rec.Active, orgAdmin: rec.OrgAdmin, superadmin: rec.Superadmin, version: version}
}

// signedIn returns the live signed-in session of token with its agent, in one query.
func (s *Store) signedIn(ctx context.Context, token string, now, idleSince time.Time) (id int64, lastSeen time.Time, rec AgentRecord, h rightsHead, err error) {
	err = s.DB.Read().QueryRowContext(ctx, `SELECT s.id, s.last_seen_at, `+principalCols+`
		FROM auth_sessions s JOIN auth_agents a ON a.id = s.agent_id JOIN auth_orgs o ON o.id = a.org_id
		WHERE s.token_hash = ? AND s.stage = ? AND s.expires_at > ? AND s.last_seen_at > ?`,
		hashToken(token), stageOK, now, idleSince).
		Scan(scanPrincipal([]any{&id, &lastSeen}, &rec, &h)...)
	if err != nil {
		return 0, lastSeen, rec, h, notFound(err, "kernel.auth.error.session")
	}
	return id, lastSeen, rec, headOf(rec, h.version), nil
}

// bearer returns the live API token of value token with its agent, in one query.
func (s *Store) bearer(ctx context.Context, token string, now time.Time) (t APIToken, rec AgentRecord, h rightsHead, err error) {
	var perms string
	var used sql.NullTime
	err = s.DB.Read().QueryRowContext(ctx, `SELECT t.id, t.perms, t.last_used_at, `+principalCols+`
		FROM auth_api_tokens t JOIN auth_agents a ON a.id = t.agent_id JOIN auth_orgs o ON o.id = a.org_id
		WHERE t.token_hash = ? AND t.expires_at > ?`, hashToken(token), now).
		Scan(scanPrincipal([]any{&t.ID, &perms, &used}, &rec, &h)...)
	if err != nil {
		return t, rec, h, notFound(err, "kernel.auth.error.token")
	}
	t.AgentID, t.Perms = rec.ID, strings.Fields(perms)
	if used.Valid {
		t.LastUsed = &used.Time
	}
	return t, rec, headOf(rec, h.version), nil
}
