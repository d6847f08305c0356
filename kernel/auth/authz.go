package auth

import (
	"context"
	"slices"
	"sync"

	"parvis.org/parvis/kernel"
)

// Authz answers permission questions from roles, grants and unit memberships. Every
// answer is confined to the agent's organisation. Rights are resolved once per request (the
// middleware puts a cache in the request context) and checked against the organisation's
// rights version read with the session (rights.go), so a change applies from the next
// request on, on every node.
type Authz struct {
	st *Store
}

var _ kernel.Authorizer = (*Authz)(nil)

type rightsCacheKey struct{}

type rightsCache struct {
	mu    sync.Mutex
	m     map[int64]*agentRights
	heads map[int64]rightsHead // read with the request's session or token
}

func withRightsCache(ctx context.Context) context.Context {
	ctx, _ = newRightsCache(ctx)
	return ctx
}

func newRightsCache(ctx context.Context) (context.Context, *rightsCache) {
	c := &rightsCache{m: map[int64]*agentRights{}, heads: map[int64]rightsHead{}}
	return context.WithValue(ctx, rightsCacheKey{}, c), c
}

func (c *rightsCache) headOf(id int64) (rightsHead, bool) {
	if c == nil {
		return rightsHead{}, false
	}
	h, ok := c.heads[id]
	return h, ok
}

// rights returns the agent's rights, nil on a storage error (which then denies).
func (z *Authz) rights(ctx context.Context, a *kernel.Agent) *agentRights {
	c, _ := ctx.Value(rightsCacheKey{}).(*rightsCache)
	if c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if r, ok := c.m[a.ID]; ok {
			return r
		}
	}
	var r *agentRights
	var err error
	if h, ok := c.headOf(a.ID); ok {
		r, err = z.st.rightsAt(ctx, a.ID, h)
	} else {
		r, err = z.st.rights(ctx, a.ID)
	}
	if err != nil {
		return nil
	}
	if c != nil {
		c.m[a.ID] = r
	}
	return r
}

// usable returns the agent's rights when the agent is active and of the organisation it
// claims, and the permission is not withheld by the API token in use.
func (z *Authz) usable(ctx context.Context, a *kernel.Agent, perm string) *agentRights {
	if a == nil || a.ID == 0 {
		return nil
	}
	if lim, ok := ctx.Value(tokenPermsKey{}).(*tokenLimit); ok && lim != nil && perm != "" && lim.agentID == a.ID && !lim.perms[perm] {
		return nil
	}
	r := z.rights(ctx, a)
	if r == nil || !r.active || r.orgID != a.OrgID {
		return nil
	}
	return r
}

// Can reports whether a may use perm on res (with res nil: on at least one resource).
// Organisation administrators hold every permission in their organisation; superadmins
// manage organisations; a resource of another organisation is always refused.
func (z *Authz) Can(ctx context.Context, a *kernel.Agent, perm string, res *kernel.Resource) bool {
	r := z.usable(ctx, a, perm)
	if r == nil {
		return false
	}
	if res != nil && res.OrgID != a.OrgID {
		return false
	}
	if instancePerms[perm] {
		return r.superadmin
	}
	if perm == kernel.PermAnyAgent || r.orgAdmin {
		return true
	}
	for _, g := range r.grants {
		if g.Perm != perm {
			continue
		}
		if res == nil || (res.ID == "" && res.UnitID == 0) {
			return true
		}
		switch g.Scope {
		case ScopeAll:
			return true
		case ScopeResource:
			if res.ID != "" && g.ResourceType == res.Type && g.ResourceID == res.ID {
				return true
			}
		case ScopeUnit:
			if res.UnitID != 0 && slices.Contains(descendants(r.parents, []int64{g.UnitID}), res.UnitID) {
				return true
			}
		case ScopeMember:
			if res.UnitID != 0 && slices.Contains(r.member, res.UnitID) {
				return true
			}
		}
	}
	return false
}

// Scope returns where a may use perm.
func (z *Authz) Scope(ctx context.Context, a *kernel.Agent, perm string) (kernel.Scope, error) {
	var sc kernel.Scope
	r := z.usable(ctx, a, perm)
	if r == nil {
		return sc, nil
	}
	if instancePerms[perm] {
		sc.All = r.superadmin
		return sc, nil
	}
	if perm == kernel.PermAnyAgent || r.orgAdmin {
		sc.All = true
		return sc, nil
	}
	units := map[int64]bool{}
	for _, g := range r.grants {
		if g.Perm != perm {
			continue
		}
		switch g.Scope {
		case ScopeAll:
			return kernel.Scope{All: true}, nil
		case ScopeResource:
			if !slices.Contains(sc.ResourceIDs, g.ResourceID) {
				sc.ResourceIDs = append(sc.ResourceIDs, g.ResourceID)
			}
		case ScopeUnit:
			for _, u := range descendants(r.parents, []int64{g.UnitID}) {
				units[u] = true
			}
		case ScopeMember:
			for _, u := range r.member {
				units[u] = true
			}
		}
	}
	for u := range units {
		sc.UnitIDs = append(sc.UnitIDs, u)
	}
	slices.Sort(sc.UnitIDs)
	return sc, nil
}

// UnitsOf returns the units a belongs to, with their sub-units.
func (z *Authz) UnitsOf(ctx context.Context, a *kernel.Agent) ([]int64, error) {
	r := z.usable(ctx, a, "")
	if r == nil {
		return nil, nil
	}
	return slices.Clone(r.member), nil
}
