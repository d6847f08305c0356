package auth

import (
	"context"
	"slices"
	"testing"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

func rightsVersion(t *testing.T, db *store.DB, org int64) int64 {
	t.Helper()
	var v int64
	if err := db.Read().QueryRowContext(context.Background(), `SELECT rights_version FROM auth_orgs WHERE id = ?`, org).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// Every change to what an organisation's agents may do raises its rights version in the
// same transaction, and nothing else does; another organisation's version stays.
func TestRightsVersion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := newStore(t, db)
		org, _ := st.DefaultOrgID(ctx, db.Read())
		var org2, unit, unit2, agent int64
		var role Role
		inTx(t, db, func(tx *store.Tx) (err error) {
			org2, err = st.CreateOrg(ctx, tx, "Org 2", t0)
			return err
		})
		changes := []struct {
			name   string
			bumps  bool
			change func(tx *store.Tx) error
		}{
			{"unit created", true, func(tx *store.Tx) (err error) {
				unit, err = st.CreateUnit(ctx, tx, org, 0, "Ville", t0)
				return err
			}},
			{"second unit", true, func(tx *store.Tx) (err error) {
				unit2, err = st.CreateUnit(ctx, tx, org, 0, "Annexe", t0)
				return err
			}},
			{"unit moved", true, func(tx *store.Tx) error { return st.UpdateUnit(ctx, tx, org, unit2, unit, "Annexe") }},
			{"role without grants created", false, func(tx *store.Tx) error {
				role = Role{OrgID: org, Name: "Accueil"}
				return st.CreateRole(ctx, tx, &role, t0)
			}},
			{"grant added", true, func(tx *store.Tx) error {
				role.Grants = []Grant{{Perm: "forms.view", Scope: ScopeAll}}
				return st.UpdateRole(ctx, tx, &role)
			}},
			{"agent without roles or units created", false, func(tx *store.Tx) error {
				a := &AgentRecord{OrgID: org, Email: "a@x", Name: "A", Active: true}
				err := st.CreateAgent(ctx, tx, a, t0)
				agent = a.ID
				return err
			}},
			{"role given", true, func(tx *store.Tx) error {
				a, err := st.Agent(ctx, tx, org, agent)
				if err != nil {
					return err
				}
				a.RoleIDs = []int64{role.ID}
				return st.UpdateAgent(ctx, tx, &a, t0)
			}},
			{"unit joined", true, func(tx *store.Tx) error {
				a, err := st.Agent(ctx, tx, org, agent)
				if err != nil {
					return err
				}
				a.UnitIDs = []int64{unit}
				return st.UpdateAgent(ctx, tx, &a, t0)
			}},
			{"session opened", false, func(tx *store.Tx) error {
				_, err := st.CreateSession(ctx, tx, agent, stageOK, "", "", t0, t0.Add(3600e9))
				return err
			}},
			{"role deleted", true, func(tx *store.Tx) error { return st.DeleteRole(ctx, tx, org, role.ID) }},
		}
		for _, c := range changes {
			before, before2 := rightsVersion(t, db, org), rightsVersion(t, db, org2)
			inTx(t, db, c.change)
			after, after2 := rightsVersion(t, db, org), rightsVersion(t, db, org2)
			if c.bumps && after <= before {
				t.Errorf("%s: rights version %d → %d, want it raised", c.name, before, after)
			}
			if !c.bumps && after != before {
				t.Errorf("%s: rights version %d → %d, want it kept", c.name, before, after)
			}
			if after2 != before2 {
				t.Errorf("%s: the other organisation's version moved %d → %d", c.name, before2, after2)
			}
		}
	})
}

// Two nodes (two stores, each with its own memory) on one database: a change made through
// one applies on the other from its next question on, even though the other answered from
// memory just before.
func TestRightsAcrossNodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := newStore(t, db)
		other := &Store{DB: db}
		z := &Authz{st: other}
		org, _ := st.DefaultOrgID(ctx, db.Read())
		var city, district, annex int64
		role := Role{OrgID: org, Name: "Accueil", Grants: []Grant{{Perm: "forms.view", Scope: ScopeMember}}}
		rec := &AgentRecord{OrgID: org, Email: "a@x", Name: "A", Active: true}
		inTx(t, db, func(tx *store.Tx) error {
			city, _ = st.CreateUnit(ctx, tx, org, 0, "Ville", t0)
			district, _ = st.CreateUnit(ctx, tx, org, city, "Mairie du 5e", t0)
			annex, _ = st.CreateUnit(ctx, tx, org, 0, "Annexe", t0)
			if err := st.CreateRole(ctx, tx, &role, t0); err != nil {
				return err
			}
			rec.RoleIDs, rec.UnitIDs = []int64{role.ID}, []int64{city}
			return st.CreateAgent(ctx, tx, rec, t0)
		})
		a := toAgent(*rec, "")
		scope := func() []int64 {
			t.Helper()
			sc, err := z.Scope(withRightsCache(ctx), a, "forms.view") // a fresh request each time
			if err != nil {
				t.Fatal(err)
			}
			return sc.UnitIDs
		}
		can := func(perm string) bool { return z.Can(withRightsCache(ctx), a, perm, nil) }

		if got := scope(); !slices.Equal(got, []int64{city, district}) {
			t.Fatalf("scope %v, want %v", got, []int64{city, district})
		}
		if other.memo.agent(a.ID, org, rightsVersion(t, db, org)) == nil {
			t.Fatal("the other node did not keep the agent's rights")
		}
		steps := []struct {
			name   string
			change func(tx *store.Tx) error
			check  func() bool
		}{
			{"unit moved under the agent's unit", func(tx *store.Tx) error {
				return st.UpdateUnit(ctx, tx, org, annex, district, "Annexe")
			}, func() bool { return slices.Equal(scope(), []int64{city, district, annex}) }},
			{"grant added to the role", func(tx *store.Tx) error {
				role.Grants = append(role.Grants, Grant{Perm: "forms.edit", Scope: ScopeAll})
				return st.UpdateRole(ctx, tx, &role)
			}, func() bool { return can("forms.edit") }},
			{"agent moved to another unit", func(tx *store.Tx) error {
				r, err := st.Agent(ctx, tx, org, a.ID)
				if err != nil {
					return err
				}
				r.UnitIDs = []int64{annex}
				return st.UpdateAgent(ctx, tx, &r, t0)
			}, func() bool { return slices.Equal(scope(), []int64{annex}) }},
			{"made organisation administrator (a flag, read with the agent)", func(tx *store.Tx) error {
				_, err := tx.ExecContext(ctx, `UPDATE auth_agents SET org_admin = ? WHERE id = ?`, true, a.ID)
				return err
			}, func() bool { return can("anything.at_all") }},
			{"no longer administrator", func(tx *store.Tx) error {
				_, err := tx.ExecContext(ctx, `UPDATE auth_agents SET org_admin = ? WHERE id = ?`, false, a.ID)
				return err
			}, func() bool { return !can("anything.at_all") && can("forms.edit") }},
			{"role taken away", func(tx *store.Tx) error {
				r, err := st.Agent(ctx, tx, org, a.ID)
				if err != nil {
					return err
				}
				r.RoleIDs = nil
				return st.UpdateAgent(ctx, tx, &r, t0)
			}, func() bool { return !can("forms.view") && !can("forms.edit") }},
			{"role given back, then deleted", func(tx *store.Tx) error {
				r, err := st.Agent(ctx, tx, org, a.ID)
				if err != nil {
					return err
				}
				r.RoleIDs = []int64{role.ID}
				if err := st.UpdateAgent(ctx, tx, &r, t0); err != nil {
					return err
				}
				return st.DeleteRole(ctx, tx, org, role.ID)
			}, func() bool { return !can("forms.view") }},
			{"deactivated", func(tx *store.Tx) error {
				return st.SetActive(ctx, tx, org, a.ID, false, t0)
			}, func() bool { return !can(kernel.PermAnyAgent) }},
		}
		for _, s := range steps {
			can(kernel.PermAnyAgent) // the other node answers from memory right before the change
			inTx(t, db, s.change)
			if !s.check() {
				t.Errorf("%s: not seen by the other node", s.name)
			}
		}
	})
}
