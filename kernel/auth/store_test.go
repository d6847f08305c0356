package auth

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

func newStore(t *testing.T, db *store.DB) *Store {
	t.Helper()
	if _, err := store.Migrate(context.Background(), db, ID, sub("migrations"), nil); err != nil {
		t.Fatal(err)
	}
	return &Store{DB: db}
}

func inTx(t *testing.T, db *store.DB, f func(tx *store.Tx) error) {
	t.Helper()
	if err := db.InTx(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

var t0 = time.Date(2026, 3, 2, 9, 30, 0, 123456000, time.UTC)

func TestDefaultOrgAndRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := newStore(t, db)
		org, err := st.DefaultOrgID(ctx, db.Read())
		if err != nil {
			t.Fatal(err)
		}
		o, err := st.Org(ctx, db.Read(), org)
		if err != nil || o.Name != "Ma commune" {
			t.Fatalf("default org = %+v, %v", o, err)
		}
		a := &AgentRecord{OrgID: org, Email: " Alice@Example.ORG ", Name: "Alice", Active: true}
		inTx(t, db, func(tx *store.Tx) error { return st.CreateAgent(ctx, tx, a, t0) })
		got, err := st.Agent(ctx, db.Read(), org, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Email != "alice@example.org" || !got.CreatedAt.Equal(t0) || !got.Active || got.OrgAdmin || got.Lang != "fr" {
			t.Fatalf("agent round trip: %+v", got)
		}
		// Same email in the same org: conflict on the email field.
		err = db.InTx(ctx, func(tx *store.Tx) error {
			return st.CreateAgent(ctx, tx, &AgentRecord{OrgID: org, Email: "alice@example.org", Name: "A2"}, t0)
		})
		if e, ok := errs.As(err); !ok || e.Code != errs.Conflict || e.Field != "email" {
			t.Fatalf("duplicate email: %v", err)
		}
		// Same email in another org is another account.
		var other int64
		inTx(t, db, func(tx *store.Tx) error {
			other, err = st.CreateOrg(ctx, tx, "Autre", t0)
			if err != nil {
				return err
			}
			return st.CreateAgent(ctx, tx, &AgentRecord{OrgID: other, Email: "alice@example.org", Name: "Alice B", Active: true}, t0)
		})
		if _, err := st.Agent(ctx, db.Read(), other, a.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("agent read through another org: %v", err)
		}
		list, _ := st.AgentsByEmail(ctx, db.Read(), "ALICE@example.org")
		if len(list) != 2 {
			t.Fatalf("agents by email: %d", len(list))
		}
	})
}

func TestUnitTree(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := newStore(t, db)
		org, _ := st.DefaultOrgID(ctx, db.Read())
		var city, district, service, other, foreign int64
		inTx(t, db, func(tx *store.Tx) error {
			city, _ = st.CreateUnit(ctx, tx, org, 0, "Ville", t0)
			district, _ = st.CreateUnit(ctx, tx, org, city, "Mairie du 5e", t0)
			service, _ = st.CreateUnit(ctx, tx, org, district, "État civil", t0)
			other, _ = st.CreateUnit(ctx, tx, org, 0, "Autre", t0)
			o2, _ := st.CreateOrg(ctx, tx, "Org 2", t0)
			foreign, _ = st.CreateUnit(ctx, tx, o2, 0, "Étrangère", t0)
			return nil
		})
		tree, err := st.Units(ctx, db.Read(), org)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, u := range tree {
			names = append(names, u.Name)
		}
		if want := []string{"Autre", "Ville", "Mairie du 5e", "État civil"}; !slices.Equal(names, want) || tree[3].Depth != 2 {
			t.Fatalf("tree = %v", names)
		}
		tests := []struct {
			name   string
			id     int64
			parent int64
			want   string // error key, "" for success
		}{
			{"under itself", city, city, "kernel.auth.error.unit_cycle"},
			{"under its grandchild", city, service, "kernel.auth.error.unit_cycle"},
			{"under a unit of another org", district, foreign, "kernel.auth.error.unit_parent"},
			{"unit of another org", foreign, 0, "kernel.auth.error.unit_not_found"},
			{"move to another branch", district, other, ""},
			{"move to top level", district, 0, ""},
		}
		for _, tc := range tests {
			err := db.InTx(ctx, func(tx *store.Tx) error { return st.UpdateUnit(ctx, tx, org, tc.id, tc.parent, "X") })
			e, _ := errs.As(err)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s: %v", tc.name, err)
			case tc.want != "" && (e == nil || e.Key != tc.want):
				t.Errorf("%s: got %v, want %s", tc.name, err, tc.want)
			}
		}
	})
}

func TestAuthorizer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := newStore(t, db)
		z := &Authz{st: st}
		org, _ := st.DefaultOrgID(ctx, db.Read())
		var city, district, service, other, org2 int64
		mk := func(a *AgentRecord, grants ...Grant) *kernel.Agent {
			inTx(t, db, func(tx *store.Tx) error {
				if len(grants) > 0 {
					ro := Role{OrgID: a.OrgID, Name: "r " + a.Email, Grants: grants}
					if err := st.CreateRole(ctx, tx, &ro, t0); err != nil {
						return err
					}
					a.RoleIDs = []int64{ro.ID}
				}
				a.Active = true
				return st.CreateAgent(ctx, tx, a, t0)
			})
			return toAgent(*a, "")
		}
		inTx(t, db, func(tx *store.Tx) error {
			city, _ = st.CreateUnit(ctx, tx, org, 0, "Ville", t0)
			district, _ = st.CreateUnit(ctx, tx, org, city, "Mairie du 5e", t0)
			service, _ = st.CreateUnit(ctx, tx, org, district, "État civil", t0)
			other, _ = st.CreateUnit(ctx, tx, org, 0, "Autre", t0)
			org2, _ = st.CreateOrg(ctx, tx, "Org 2", t0)
			return nil
		})
		const p = "forms.edit"
		admin := mk(&AgentRecord{OrgID: org, Email: "admin@x", OrgAdmin: true})
		super := mk(&AgentRecord{OrgID: org, Email: "super@x", Superadmin: true})
		none := mk(&AgentRecord{OrgID: org, Email: "none@x"})
		all := mk(&AgentRecord{OrgID: org, Email: "all@x"}, Grant{Perm: p, Scope: ScopeAll})
		unit := mk(&AgentRecord{OrgID: org, Email: "unit@x"}, Grant{Perm: p, Scope: ScopeUnit, UnitID: district})
		member := mk(&AgentRecord{OrgID: org, Email: "member@x", UnitIDs: []int64{district}}, Grant{Perm: p, Scope: ScopeMember})
		one := mk(&AgentRecord{OrgID: org, Email: "one@x"}, Grant{Perm: p, Scope: ScopeResource, ResourceType: "form", ResourceID: "42"})
		admin2 := mk(&AgentRecord{OrgID: org2, Email: "admin@y", OrgAdmin: true})
		gone := mk(&AgentRecord{OrgID: org, Email: "gone@x", OrgAdmin: true})
		inTx(t, db, func(tx *store.Tx) error { return st.SetActive(ctx, tx, org, gone.ID, false, t0) })
		liar := *admin2
		liar.OrgID = org // claims another organisation than its own

		res := func(id string, unit int64) *kernel.Resource {
			return &kernel.Resource{Type: "form", ID: id, UnitID: unit, OrgID: org}
		}
		inOrg2 := &kernel.Resource{Type: "form", ID: "42", OrgID: org2}
		tests := []struct {
			name string
			a    *kernel.Agent
			perm string
			res  *kernel.Resource
			want bool
		}{
			{"nil agent", nil, p, nil, false},
			{"no role", none, p, nil, false},
			{"no role, any agent", none, kernel.PermAnyAgent, nil, true},
			{"org admin holds everything", admin, p, res("1", service), true},
			{"org admin: not organisations", admin, PermOrgs, nil, false},
			{"org admin of org 2 on org 1 resource", admin2, p, res("1", 0), false},
			{"org admin of org 2 on own resource", admin2, p, inOrg2, true},
			{"agent claiming another org", &liar, p, nil, false},
			{"superadmin manages orgs", super, PermOrgs, nil, true},
			{"superadmin: not content", super, p, nil, false},
			{"deactivated admin", gone, p, nil, false},
			{"all: anything", all, p, res("7", other), true},
			{"all: other perm", all, "forms.delete", nil, false},
			{"all: other org", all, p, inOrg2, false},
			{"unit: held somewhere", unit, p, nil, true},
			{"unit: own unit", unit, p, res("1", district), true},
			{"unit: sub-unit", unit, p, res("1", service), true},
			{"unit: parent unit", unit, p, res("1", city), false},
			{"unit: unrelated unit", unit, p, res("1", other), false},
			{"unit: resource without unit", unit, p, res("1", 0), false},
			{"member: sub-unit of own unit", member, p, res("1", service), true},
			{"member: other unit", member, p, res("1", other), false},
			{"resource: that one", one, p, res("42", other), true},
			{"resource: another one", one, p, res("43", other), false},
			{"resource: type only", one, p, &kernel.Resource{Type: "form", OrgID: org}, true},
		}
		for _, tc := range tests {
			if got := z.Can(withRightsCache(ctx), tc.a, tc.perm, tc.res); got != tc.want {
				t.Errorf("%s: Can = %v, want %v", tc.name, got, tc.want)
			}
		}
		scopes := []struct {
			name string
			a    *kernel.Agent
			want kernel.Scope
		}{
			{"admin", admin, kernel.Scope{All: true}},
			{"none", none, kernel.Scope{}},
			{"all", all, kernel.Scope{All: true}},
			{"unit", unit, kernel.Scope{UnitIDs: []int64{district, service}}},
			{"member", member, kernel.Scope{UnitIDs: []int64{district, service}}},
			{"one", one, kernel.Scope{ResourceIDs: []string{"42"}}},
			{"superadmin", super, kernel.Scope{}},
		}
		for _, tc := range scopes {
			got, err := z.Scope(ctx, tc.a, p)
			if err != nil || got.All != tc.want.All || !slices.Equal(got.UnitIDs, tc.want.UnitIDs) || !slices.Equal(got.ResourceIDs, tc.want.ResourceIDs) {
				t.Errorf("Scope %s = %+v, %v; want %+v", tc.name, got, err, tc.want)
			}
		}
		if u, _ := z.UnitsOf(ctx, member); !slices.Equal(u, []int64{district, service}) {
			t.Errorf("UnitsOf = %v", u)
		}
		// An API token limits the agent to the token's permissions.
		tctx := context.WithValue(withRightsCache(ctx), tokenPermsKey{}, &tokenLimit{agentID: admin.ID, perms: map[string]bool{"forms.view": true}})
		if z.Can(tctx, admin, p, nil) || !z.Can(tctx, admin, "forms.view", nil) {
			t.Error("API token limits not applied")
		}
		// A role cannot grant the instance permission.
		err := db.InTx(ctx, func(tx *store.Tx) error {
			return st.CreateRole(ctx, tx, &Role{OrgID: org, Name: "escalate", Grants: []Grant{{Perm: PermOrgs, Scope: ScopeAll}}}, t0)
		})
		if e, ok := errs.As(err); !ok || e.Key != "kernel.auth.error.perm_reserved" {
			t.Errorf("role granting %s: %v", PermOrgs, err)
		}
	})
}

func TestPasswords(t *testing.T) {
	h, err := HashPassword("un mot de passe assez long")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashPassword("un mot de passe assez long")
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt?")
	}
	tests := []struct {
		hash, pw string
		want     bool
	}{
		{h, "un mot de passe assez long", true},
		{h, "un mot de passe assez lonG", false},
		{h, "", false},
		{dummyHash, "anything", false},
		{"$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$a2V5", "x", false},
		{"garbage", "x", false},
		{"", "", false},
	}
	for _, tc := range tests {
		if got := CheckPassword(tc.hash, tc.pw); got != tc.want {
			t.Errorf("CheckPassword(%q, %q) = %v", tc.hash, tc.pw, got)
		}
	}
	if want := "$argon2id$v=19$m=19456,t=2,p=1$"; h[:len(want)] != want {
		t.Errorf("hash %s does not carry the parameters", h)
	}
	problems := []struct{ pw, email, want string }{
		{"short", "", "kernel.auth.error.password_short"},
		{"motdepasse123", "", "kernel.auth.error.password_common"},
		{"AZERTYUIOP123", "", "kernel.auth.error.password_common"},
		{"jean.dupont-2026!", "jean.dupont@mairie.fr", "kernel.auth.error.password_common"},
		{"correct horse battery staple", "a@b.fr", ""},
	}
	for _, tc := range problems {
		if got := PasswordProblem(tc.pw, tc.email); got != tc.want {
			t.Errorf("PasswordProblem(%q) = %q, want %q", tc.pw, got, tc.want)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "/admin/",
		"/admin/users":         "/admin/users",
		"//evil.example/admin": "/admin/",
		"https://evil.example": "/admin/",
		"/admin/\\evil":        "/admin/",
		"/compte":              "/admin/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
