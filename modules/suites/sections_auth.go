package suites

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/text/unicode/norm"

	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/theme"
)

// Adapters over the kernel's identity part (kernel/auth's exported Store) and the
// organisation's look (kernel/theme).

// slug derives a key from a name: "Mairie du 11e" → "mairie-du-11e".
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range norm.NFD.String(strings.ToLower(s)) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case r >= 0x300 && r <= 0x36f: // combining accents
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	out := strings.TrimSuffix(b.String(), "-")
	if out == "" {
		out = "item"
	}
	return out
}

func id64(id string) int64  { n, _ := strconv.ParseInt(id, 10, 64); return n }
func idStr(id int64) string { return strconv.FormatInt(id, 10) }

// refID resolves a key that Plan made sure exists.
func refID(r Resolver, section, key string) (int64, error) {
	if key == "" {
		return 0, nil
	}
	id, ok := r.ID(section, key)
	if !ok {
		return 0, fmt.Errorf("%s %q is not created yet", section, key)
	}
	return id64(id), nil
}

// keyOf is the key of a resource id, "" for 0.
func keyOf(r Resolver, section string, id int64) string {
	if id == 0 {
		return ""
	}
	return r.Key(section, idStr(id))
}

// ---- settings: the organisation's name and look

type settingsSection struct{ m *Module }

type settingsItem struct {
	Name  string       `json:"name"`
	Theme *theme.Theme `json:"theme,omitempty"`
}

func (s *settingsSection) Key() string     { return "settings" }
func (s *settingsSection) Module() string  { return "kernel.auth" }
func (s *settingsSection) Order() int      { return 10 }
func (s *settingsSection) Needs() []string { return nil }
func (s *settingsSection) Schema() map[string]any {
	return object([]string{"name"}, map[string]any{
		"name": nonEmpty(),
		"theme": map[string]any{"type": "object", "required": []string{"name", "primary"}, "additionalProperties": false,
			"properties": map[string]any{"name": nonEmpty(), "primary": map[string]any{"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}, "logo_url": str()}},
	})
}
func (s *settingsSection) Refs(Item) []Ref { return nil }
func (s *settingsSection) Check(items []Item, _ map[string][]Item) []Problem {
	var ps []Problem
	for i, it := range items {
		if i > 0 {
			ps = append(ps, Problem{Path: it.Path, Key: "suites.error.one_settings"})
		}
		var v settingsItem
		if it.Decode(&v) != nil || v.Theme == nil {
			continue
		}
		ps = append(ps, fieldProblems(it.Path+".theme", v.Theme.Normalize().Validate())...)
	}
	return ps
}

// fieldProblems turns joined errs.Error values naming fields into problems.
func fieldProblems(path string, err error) []Problem {
	if err == nil {
		return nil
	}
	var all []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all = j.Unwrap()
	} else {
		all = []error{err}
	}
	var ps []Problem
	for _, e := range all {
		if de, ok := errs.As(e); ok {
			p := path
			if de.Field != "" {
				p += "." + de.Field
			}
			ps = append(ps, Problem{Path: p, Key: de.Key, Args: de.Args})
		}
	}
	return ps
}

// The settings exist once the organisation chose a look: before that, a suite may set them.
func (s *settingsSection) Ident(context.Context, int64, Item, Resolver) string { return "org" }
func (s *settingsSection) List(ctx context.Context, org int64) ([]Resource, error) {
	_, ok, err := theme.Load(ctx, s.m.db.Read(), org)
	if err != nil || !ok {
		return nil, err
	}
	return []Resource{{ID: idStr(org), Key: "town", Ident: "org"}}, nil
}
func (s *settingsSection) Read(ctx context.Context, org int64, id string, _ Resolver) (map[string]any, error) {
	o, err := s.m.auth.Org(ctx, s.m.db.Read(), id64(id))
	if err != nil {
		return nil, err
	}
	t, ok, err := theme.Load(ctx, s.m.db.Read(), id64(id))
	if err != nil {
		return nil, err
	}
	v := settingsItem{Name: o.Name}
	if ok {
		v.Theme = &t
	}
	return Normalize(v), nil
}
func (s *settingsSection) Write(ctx context.Context, org int64, _ string, it Item, _ Resolver) (string, error) {
	var v settingsItem
	if err := it.Decode(&v); err != nil {
		return "", err
	}
	err := s.m.db.InTx(ctx, func(tx *store.Tx) error {
		if err := s.m.auth.RenameOrg(ctx, tx, org, v.Name); err != nil {
			return err
		}
		if v.Theme != nil {
			if err := theme.Save(ctx, tx, org, *v.Theme, s.m.now()); err != nil {
				return err
			}
			if st, ok := serviceOf[server.SiteStyler](s.m); ok {
				if f, ok := st.(interface{ Forget(int64) }); ok {
					tx.AfterCommit(func() { f.Forget(org) })
				}
			}
		}
		return nil
	})
	return idStr(org), err
}

// ---- units

type unitsSection struct{ m *Module }

type unitItem struct {
	Name   string `json:"name"`
	Parent string `json:"parent,omitempty"`
}

func (s *unitsSection) Key() string     { return "units" }
func (s *unitsSection) Module() string  { return "kernel.auth" }
func (s *unitsSection) Order() int      { return 20 }
func (s *unitsSection) Needs() []string { return nil }
func (s *unitsSection) Schema() map[string]any {
	return object([]string{"name"}, map[string]any{"name": nonEmpty(), "parent": keyRef()})
}
func (s *unitsSection) Refs(it Item) []Ref {
	if p, _ := it.Data["parent"].(string); p != "" {
		return []Ref{{Section: "units", Key: p, Path: "parent"}}
	}
	return nil
}
func (s *unitsSection) Check([]Item, map[string][]Item) []Problem { return nil }
func (s *unitsSection) Ident(_ context.Context, _ int64, it Item, r Resolver) string {
	var v unitItem
	_ = it.Decode(&v)
	parent := "0"
	if v.Parent != "" {
		var ok bool
		if parent, ok = r.ID("units", v.Parent); !ok {
			return "" // under a unit not created yet: cannot collide
		}
	}
	return parent + "/" + strings.ToLower(v.Name)
}
func (s *unitsSection) List(ctx context.Context, org int64) ([]Resource, error) {
	us, err := s.m.auth.Units(ctx, s.m.db.Read(), org)
	if err != nil {
		return nil, err
	}
	out := make([]Resource, len(us))
	for i, u := range us {
		out[i] = Resource{ID: idStr(u.ID), Key: slug(u.Name), Ident: idStr(u.ParentID) + "/" + strings.ToLower(u.Name)}
	}
	return out, nil
}
func (s *unitsSection) Read(ctx context.Context, org int64, id string, r Resolver) (map[string]any, error) {
	u, err := s.m.auth.Unit(ctx, s.m.db.Read(), org, id64(id))
	if err != nil {
		return nil, err
	}
	return Normalize(unitItem{Name: u.Name, Parent: keyOf(r, "units", u.ParentID)}), nil
}
func (s *unitsSection) Write(ctx context.Context, org int64, id string, it Item, r Resolver) (string, error) {
	var v unitItem
	if err := it.Decode(&v); err != nil {
		return "", err
	}
	parent, err := refID(r, "units", v.Parent)
	if err != nil {
		return "", err
	}
	err = s.m.db.InTx(ctx, func(tx *store.Tx) error {
		if id == "" {
			n, err := s.m.auth.CreateUnit(ctx, tx, org, parent, v.Name, s.m.now())
			id = idStr(n)
			return err
		}
		return s.m.auth.UpdateUnit(ctx, tx, org, id64(id), parent, v.Name)
	})
	return id, err
}

// ---- roles

type rolesSection struct{ m *Module }

type grantItem struct {
	Perm         string `json:"perm"`
	Scope        string `json:"scope,omitempty"`
	Unit         string `json:"unit,omitempty"`
	ResourceType string `json:"resource_type,omitempty"`
	ResourceID   string `json:"resource_id,omitempty"`
}

type roleItem struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Grants      []grantItem `json:"grants,omitempty"`
}

func (s *rolesSection) Key() string     { return "roles" }
func (s *rolesSection) Module() string  { return "kernel.auth" }
func (s *rolesSection) Order() int      { return 30 }
func (s *rolesSection) Needs() []string { return []string{"units"} }
func (s *rolesSection) Schema() map[string]any {
	grant := map[string]any{"type": "object", "required": []string{"perm"}, "additionalProperties": false, "properties": map[string]any{
		"perm": nonEmpty(), "scope": enum(auth.ScopeAll, auth.ScopeMember, auth.ScopeUnit, auth.ScopeResource),
		"unit": keyRef(), "resource_type": str(), "resource_id": str()}}
	return object([]string{"name"}, map[string]any{"name": nonEmpty(), "description": str(), "grants": arrayOf(grant)})
}
func (s *rolesSection) Refs(it Item) []Ref {
	var v roleItem
	_ = it.Decode(&v)
	var out []Ref
	for i, g := range v.Grants {
		if g.Unit != "" {
			out = append(out, Ref{Section: "units", Key: g.Unit, Path: fmt.Sprintf("grants[%d].unit", i)})
		}
	}
	return out
}
func (s *rolesSection) Check(items []Item, _ map[string][]Item) []Problem {
	reg := s.m.registry()
	var ps []Problem
	for _, it := range items {
		var v roleItem
		_ = it.Decode(&v)
		for i, g := range v.Grants {
			p := fmt.Sprintf("%s.grants[%d]", it.Path, i)
			if reg != nil && !reg.perms[g.Perm] {
				ps = append(ps, Problem{Path: p + ".perm", Key: "suites.error.unknown_permission", Args: []any{"perm", g.Perm}})
			}
			if g.Scope == auth.ScopeUnit && g.Unit == "" {
				ps = append(ps, Problem{Path: p, Key: "suites.error.unit_required"})
			}
			if g.Scope == auth.ScopeResource && (g.ResourceType == "" || g.ResourceID == "") {
				ps = append(ps, Problem{Path: p, Key: "suites.error.resource_required"})
			}
		}
	}
	return ps
}
func (s *rolesSection) Ident(_ context.Context, _ int64, it Item, _ Resolver) string {
	n, _ := it.Data["name"].(string)
	return strings.ToLower(n)
}
func (s *rolesSection) List(ctx context.Context, org int64) ([]Resource, error) {
	rs, err := s.m.auth.Roles(ctx, s.m.db.Read(), org)
	if err != nil {
		return nil, err
	}
	out := make([]Resource, len(rs))
	for i, r := range rs {
		out[i] = Resource{ID: idStr(r.ID), Key: slug(r.Name), Ident: strings.ToLower(r.Name)}
	}
	return out, nil
}
func (s *rolesSection) Read(ctx context.Context, org int64, id string, r Resolver) (map[string]any, error) {
	role, err := s.m.auth.Role(ctx, s.m.db.Read(), org, id64(id))
	if err != nil {
		return nil, err
	}
	v := roleItem{Name: role.Name, Description: role.Description}
	for _, g := range role.Grants {
		gi := grantItem{Perm: g.Perm, Scope: g.Scope, ResourceType: g.ResourceType, ResourceID: g.ResourceID, Unit: keyOf(r, "units", g.UnitID)}
		v.Grants = append(v.Grants, gi)
	}
	return Normalize(v), nil
}
func (s *rolesSection) Write(ctx context.Context, org int64, id string, it Item, r Resolver) (string, error) {
	var v roleItem
	if err := it.Decode(&v); err != nil {
		return "", err
	}
	role := &auth.Role{ID: id64(id), OrgID: org, Name: v.Name, Description: v.Description}
	for _, g := range v.Grants {
		unit, err := refID(r, "units", g.Unit)
		if err != nil {
			return "", err
		}
		if g.Scope == "" {
			g.Scope = auth.ScopeAll
		}
		role.Grants = append(role.Grants, auth.Grant{Perm: g.Perm, Scope: g.Scope, UnitID: unit, ResourceType: g.ResourceType, ResourceID: g.ResourceID})
	}
	err := s.m.db.InTx(ctx, func(tx *store.Tx) error {
		if id == "" {
			return s.m.auth.CreateRole(ctx, tx, role, s.m.now())
		}
		return s.m.auth.UpdateRole(ctx, tx, role)
	})
	return idStr(role.ID), err
}

// ---- agents (demo agents; never exported unless asked for: they are personal data)

type agentsSection struct{ m *Module }

type agentItem struct {
	Email string   `json:"email"`
	Name  string   `json:"name"`
	Lang  string   `json:"lang,omitempty"`
	Admin bool     `json:"admin,omitempty"`
	Roles []string `json:"roles,omitempty"`
	Units []string `json:"units,omitempty"`
}

func (s *agentsSection) Key() string     { return "agents" }
func (s *agentsSection) Module() string  { return "kernel.auth" }
func (s *agentsSection) Order() int      { return 35 }
func (s *agentsSection) Needs() []string { return []string{"units", "roles"} }
func (s *agentsSection) Schema() map[string]any {
	return object([]string{"email", "name"}, map[string]any{
		"email": map[string]any{"type": "string", "pattern": `^[^@\s]+@[^@\s]+$`}, "name": nonEmpty(), "lang": enum("fr", "en"),
		"admin": boolean(), "roles": arrayOf(keyRef()), "units": arrayOf(keyRef())})
}
func (s *agentsSection) Refs(it Item) []Ref {
	var v agentItem
	_ = it.Decode(&v)
	var out []Ref
	for i, k := range v.Roles {
		out = append(out, Ref{Section: "roles", Key: k, Path: fmt.Sprintf("roles[%d]", i)})
	}
	for i, k := range v.Units {
		out = append(out, Ref{Section: "units", Key: k, Path: fmt.Sprintf("units[%d]", i)})
	}
	return out
}
func (s *agentsSection) Check([]Item, map[string][]Item) []Problem { return nil }
func (s *agentsSection) Ident(_ context.Context, _ int64, it Item, _ Resolver) string {
	e, _ := it.Data["email"].(string)
	return strings.ToLower(strings.TrimSpace(e))
}
func (s *agentsSection) List(ctx context.Context, org int64) ([]Resource, error) {
	as, err := s.m.auth.Agents(ctx, s.m.db.Read(), org)
	if err != nil {
		return nil, err
	}
	out := make([]Resource, len(as))
	for i, a := range as {
		local, _, _ := strings.Cut(a.Email, "@")
		out[i] = Resource{ID: idStr(a.ID), Key: slug(local), Ident: a.Email}
	}
	return out, nil
}
func (s *agentsSection) Read(ctx context.Context, org int64, id string, r Resolver) (map[string]any, error) {
	a, err := s.m.auth.Agent(ctx, s.m.db.Read(), org, id64(id))
	if err != nil {
		return nil, err
	}
	v := agentItem{Email: a.Email, Name: a.Name, Lang: a.Lang, Admin: a.OrgAdmin}
	for _, x := range a.RoleIDs {
		v.Roles = append(v.Roles, keyOf(r, "roles", x))
	}
	for _, x := range a.UnitIDs {
		v.Units = append(v.Units, keyOf(r, "units", x))
	}
	sort.Strings(v.Roles)
	sort.Strings(v.Units)
	return Normalize(v), nil
}
func (s *agentsSection) Write(ctx context.Context, org int64, id string, it Item, r Resolver) (string, error) {
	var v agentItem
	if err := it.Decode(&v); err != nil {
		return "", err
	}
	a := &auth.AgentRecord{OrgID: org, Active: true}
	err := s.m.db.InTx(ctx, func(tx *store.Tx) error {
		if id != "" {
			cur, err := s.m.auth.Agent(ctx, tx, org, id64(id))
			if err != nil {
				return err
			}
			a = &cur
		}
		a.Email, a.Name, a.Lang, a.OrgAdmin = v.Email, v.Name, v.Lang, v.Admin
		if a.Lang == "" {
			a.Lang = "fr"
		}
		a.RoleIDs, a.UnitIDs = nil, nil
		for _, k := range v.Roles {
			x, err := refID(r, "roles", k)
			if err != nil {
				return err
			}
			a.RoleIDs = append(a.RoleIDs, x)
		}
		for _, k := range v.Units {
			x, err := refID(r, "units", k)
			if err != nil {
				return err
			}
			a.UnitIDs = append(a.UnitIDs, x)
		}
		if id == "" {
			return s.m.auth.CreateAgent(ctx, tx, a, s.m.now())
		}
		return s.m.auth.UpdateAgent(ctx, tx, a, s.m.now())
	})
	return idStr(a.ID), err
}
