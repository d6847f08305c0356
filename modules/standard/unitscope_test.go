package standard_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/browsertest"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/modules/workflow"
)

// requests is a test module owning a resource type run through the workflow engine, so that
// the browser test below has unit-owned resources to see or not to see.
type requests struct {
	mu    sync.Mutex
	names map[string]string
}

func init() { kernel.Register(&requests{}) }

func (*requests) Info() kernel.Info {
	return kernel.Info{ID: "stdtest", Version: "1", Title: "stdtest", New: func() kernel.Module { return &requests{names: map[string]string{}} }}
}

func (q *requests) Declare() kernel.Parts {
	return kernel.Parts{Extensions: []kernel.Extension{{Point: workflow.PointResourceType,
		Value: workflow.ResourceType{Name: "stdtest.request", Title: "stdtest", Provider: q}}}}
}

func (q *requests) Describe(_ context.Context, id string) (workflow.Description, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, ok := q.names[id]
	if !ok {
		return workflow.Description{}, errs.New(errs.NotFound, "stdtest.not_found")
	}
	return workflow.Description{Title: n}, nil
}

const pickup = `
key: pickup
title: Encombrants
states:
  - {key: received, title: Reçue, public_label: Demande reçue, initial: true}
  - {key: done, title: Terminée, public_label: Terminée, final: true}
actions:
  - {key: finish, title: Terminer, from: [received], to: done}
`

// TestBrowserAgentSeesOnlyItsUnit: an administrator gives a district agent a role scoped to
// the agent's own units; in the inbox the agent sees the district's requests and not the
// other district's, and cannot open the other one by its address.
func TestBrowserAgentSeesOnlyItsUnit(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	ctx := context.Background()
	org := s.DefaultOrg()
	unitA := s.NewUnit(org, 0, "Mairie du 11e")
	unitB := s.NewUnit(org, 0, "Mairie du 12e")
	var q *requests
	var eng workflow.Engine
	for _, in := range s.Modules {
		if m, ok := in.Module.(*requests); ok {
			q = m
		}
		if e, ok := kernel.Service[workflow.Engine](in.Env); ok {
			eng = e
		}
	}
	if q == nil || eng == nil {
		t.Fatal("test module or workflow engine missing")
	}
	boss := s.NewOrgAdmin(org, "boss@example.org")
	bctx := kernel.WithAgent(ctx, boss)
	err := s.DB.InTx(bctx, func(tx *store.Tx) error {
		if _, err := eng.Import(bctx, tx, org, []byte(pickup), "yaml"); err != nil {
			return err
		}
		for id, unit := range map[string]int64{"A1": unitA, "B1": unitB} {
			name := map[string]string{"A1": "Canapé rue Oberkampf", "B1": "Armoire avenue Daumesnil"}[id]
			q.names[id] = name
			if _, err := eng.Attach(bctx, tx, workflow.NewResource{Ref: workflow.Ref{Type: "stdtest.request", ID: id},
				OrgID: org, UnitID: unit, Title: name}, "pickup"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	admin := browsertest.New(t)
	admin.Base = s.URL
	const adminEmail, password = "maire@example.org", "un mot de passe bien long"
	setUpAccount(t, admin, adminSetupLink(t, s, adminEmail), "Camille Martin", password)
	login(t, admin, adminEmail, password)

	// A role limited to the agent's own units.
	checkPage(t, admin, "role-new", "/admin/roles/new", "/admin/roles/new")
	admin.Fill(`input[name="name"]`, "Instruction de quartier")
	admin.Click(`input[name="perms"][value="workflow.inbox"]`)
	admin.Click(`input[name="scope"][value="member"]`)
	admin.SubmitForm(`input[name="name"]`)
	if !strings.Contains(admin.Text("main"), "Instruction de quartier") {
		t.Fatalf("role not created (at %s)", admin.Path())
	}

	checkPage(t, admin, "user-new", "/admin/users/new", "/admin/users/new")
	const agentEmail = "instructeur@example.org"
	admin.Fill(`input[name="email"]`, agentEmail)
	admin.Fill(`input[name="name"]`, "Alex Instructeur")
	admin.Click(checkboxLabelled(t, admin, "roles", "Instruction de quartier"))
	admin.Click(checkboxLabelled(t, admin, "units", "Mairie du 11e"))
	admin.SubmitForm(`input[name="email"]`)
	link := setupPath.FindString(admin.Text("main"))
	if link == "" {
		t.Fatalf("no setup link shown after creating the agent (at %s)", admin.Path())
	}

	agent := browsertest.New(t)
	agent.Base = s.URL
	setUpAccount(t, agent, link, "Alex Instructeur", password)
	login(t, agent, agentEmail, password)
	if got := agent.Go("/admin/workflow/inbox"); got != http.StatusOK {
		t.Fatalf("inbox: %d", got)
	}
	agent.Axe()
	inbox := agent.Text("main")
	if !strings.Contains(inbox, "Canapé rue Oberkampf") {
		t.Errorf("the agent does not see its unit's request:\n%s", inbox)
	}
	if strings.Contains(inbox, "Armoire avenue Daumesnil") {
		t.Errorf("the agent sees the other unit's request:\n%s", inbox)
	}
	if got := agent.Go("/admin/workflow/r/stdtest.request/B1"); got != http.StatusForbidden && got != http.StatusNotFound {
		t.Errorf("the other unit's request by its address: %d, want 403 or 404", got)
	}
	if got := agent.Go("/admin/workflow/r/stdtest.request/A1"); got != http.StatusOK {
		t.Errorf("its own unit's request: %d", got)
	}
	// The administrator, on every resource, sees both.
	admin.Go("/admin/workflow/inbox")
	if all := admin.Text("main"); !strings.Contains(all, "Canapé rue Oberkampf") || !strings.Contains(all, "Armoire avenue Daumesnil") {
		t.Errorf("the administrator does not see both requests:\n%s", all)
	}
}
