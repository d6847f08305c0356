package standard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
	_ "parvis.org/parvis/modules/standard" // every module of the distribution
)

// TestPermissionWalk requests EVERY back-office route (and every API route that declares a
// permission) of the distribution — including routes that modules add later, since it
// iterates over the server's routes — as:
//
//	(a) an anonymous visitor: redirected to the login page (GET) or 401, never served;
//	(b) an agent without any role: 403 (routes open to any agent excepted);
//	(c) an agent holding exactly the route's permission: neither 401 nor 403, nor a 5xx;
//	(d) an administrator of another organisation: 403 or 404 on organisation A's resources,
//	    and none of A's names on any page it can see; nothing of A changed afterwards.
func TestPermissionWalk(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			walk(t, d)
		})
	}
}

// Names of organisation A's resources: they must never appear to organisation B.
var secretsA = []string{"Commune-Alpha-Secrète", "Unité-Secrète-Alpha", "Rôle-Secret-Alpha", "Agent-Secret-Alpha", "agent-secret@alpha.test"}

func walk(t *testing.T, d store.Dialect) {
	s := servertest.New(t, d, servertest.Options{})
	ctx := context.Background()
	st := s.Auth().Store()
	orgA := s.DefaultOrg()
	if err := s.DB.InTx(ctx, func(tx *store.Tx) error { return st.RenameOrg(ctx, tx, orgA, secretsA[0]) }); err != nil {
		t.Fatal(err)
	}
	orgB := s.NewOrg("Commune-Beta")

	// Organisation A's resources are made through the pages, so that modules recording
	// changes (the audit log) hold A's names too.
	adminA := s.NewOrgAdmin(orgA, "admin@alpha.test")
	ca := s.ClientAs(adminA)
	mustPost := func(path string, form url.Values) {
		t.Helper()
		if res := ca.Post(path, form); res.Status >= 400 {
			t.Fatalf("seeding %s: %d\n%s", path, res.Status, res.Body)
		}
	}
	ca.Get("/admin/units/new")
	mustPost("/admin/units", url.Values{"name": {secretsA[1]}})
	units, _ := st.Units(ctx, s.DB.Read(), orgA)
	unitA := units[0].ID
	ca.Get("/admin/roles/new")
	mustPost("/admin/roles", url.Values{"name": {secretsA[2]}, "scope": {auth.ScopeAll}, "perms": {auth.PermUnits}})
	roles, _ := st.Roles(ctx, s.DB.Read(), orgA)
	roleA := roles[0].ID
	ca.Get("/admin/users/new")
	mustPost("/admin/users", url.Values{"name": {secretsA[3]}, "email": {secretsA[4]}, "lang": {"fr"},
		"roles": {strconv.FormatInt(roleA, 10)}, "units": {strconv.FormatInt(unitA, 10)}})
	var targetA auth.AgentRecord
	agents, _ := st.Agents(ctx, s.DB.Read(), orgA)
	for _, a := range agents {
		if a.Email == secretsA[4] {
			targetA = a
		}
	}
	tokenA := apiTokenID(t, s, targetA.ID)

	// Values for path wildcards, by the path segment before them. A route of a module not
	// listed here gets "1", a dummy ID; a module whose routes take IDs may add its own
	// resources of organisation A here.
	wild := map[string]string{
		"users":  strconv.FormatInt(targetA.ID, 10),
		"roles":  strconv.FormatInt(roleA, 10),
		"units":  strconv.FormatInt(unitA, 10),
		"orgs":   strconv.FormatInt(orgA, 10),
		"tokens": strconv.FormatInt(tokenA, 10),
	}

	var routes []server.RouteInfo
	for _, r := range s.Routes {
		if r.Area == kernel.BackOffice || (r.Area == kernel.API && r.Perm != "") {
			routes = append(routes, r)
		}
	}
	if len(routes) < 20 {
		t.Fatalf("only %d guarded routes: is the distribution complete?", len(routes))
	}

	noRole := s.NewAgentWith(auth.NewAgent{OrgID: orgA, Email: "no-role@alpha.test"})
	adminB := s.NewOrgAdmin(orgB, "admin@beta.test")
	holders := map[string]*kernel.Agent{}
	holder := func(perm string) *kernel.Agent {
		if a, ok := holders[perm]; ok {
			return a
		}
		n := auth.NewAgent{OrgID: orgA, Email: "holder-" + strings.ReplaceAll(perm, ".", "-") + "@alpha.test"}
		if perm != kernel.PermAnyAgent {
			n.Perms = []string{perm}
		}
		holders[perm] = s.NewAgentWith(n)
		return holders[perm]
	}

	send := func(c *servertest.Client, r server.RouteInfo, path string) *servertest.Response {
		if r.Method == http.MethodGet {
			return c.Get(path)
		}
		return c.Post(path, url.Values{})
	}

	// (a), (b), (d) first: they must change nothing.
	for _, r := range routes {
		path := fill(r.Pattern, wild)
		name := r.Method + " " + path + " (" + r.Module + ")"

		anon := s.Client()
		anon.Get("/admin/login") // a CSRF token, so that posts are refused for the right reason
		res := send(anon, r, path)
		switch {
		case r.Area == kernel.API && res.Status != http.StatusUnauthorized:
			t.Errorf("(a) anonymous %s: %d, want 401", name, res.Status)
		case r.Area == kernel.BackOffice && r.Method == http.MethodGet && (res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location, "/admin/login")):
			t.Errorf("(a) anonymous %s: %d %s, want 303 to the login page", name, res.Status, res.Location)
		case r.Area == kernel.BackOffice && r.Method != http.MethodGet && res.Status != http.StatusUnauthorized:
			t.Errorf("(a) anonymous %s: %d, want 401", name, res.Status)
		}

		res = send(s.ClientAs(noRole), r, path)
		if r.Perm == kernel.PermAnyAgent {
			if res.Status == 401 || res.Status == 403 || res.Status >= 500 {
				t.Errorf("(b) agent without role on %s (open to any agent): %d", name, res.Status)
			}
		} else if res.Status != http.StatusForbidden {
			t.Errorf("(b) agent without role on %s: %d, want 403", name, res.Status)
		}

		res = send(s.ClientAs(adminB), r, path)
		switch {
		case res.Status >= 500:
			t.Errorf("(d) admin of another org on %s: %d", name, res.Status)
		case strings.Contains(r.Pattern, "{") && res.Status != 403 && res.Status != 404:
			t.Errorf("(d) admin of another org on %s (a resource of org A): %d, want 403 or 404", name, res.Status)
		}
		for _, secret := range secretsA {
			if strings.Contains(res.Body, secret) {
				t.Errorf("(d) admin of another org sees %q on %s", secret, name)
			}
		}
	}

	// Nothing of organisation A changed.
	if a, err := st.Agent(ctx, s.DB.Read(), orgA, targetA.ID); err != nil || !a.Active || a.Name != secretsA[3] || len(a.RoleIDs) != 1 {
		t.Errorf("org A's agent changed by the walk: %+v %v", a, err)
	}
	if ro, err := st.Role(ctx, s.DB.Read(), orgA, roleA); err != nil || ro.Name != secretsA[2] || len(ro.Grants) != 1 {
		t.Errorf("org A's role changed by the walk: %+v %v", ro, err)
	}
	if u, err := st.Unit(ctx, s.DB.Read(), orgA, unitA); err != nil || u.Name != secretsA[1] {
		t.Errorf("org A's unit changed by the walk: %+v %v", u, err)
	}
	if o, err := st.Org(ctx, s.DB.Read(), orgA); err != nil || o.Name != secretsA[0] {
		t.Errorf("org A changed by the walk: %+v %v", o, err)
	}

	t.Logf("walked %d guarded routes", len(routes))

	// (c) last, since posting with the right permission may change things.
	for _, r := range routes {
		path := fill(r.Pattern, wild)
		res := send(s.ClientAs(holder(r.Perm)), r, path)
		if res.Status == 401 || res.Status == 403 || res.Status >= 500 {
			t.Errorf("(c) agent holding %s on %s %s (%s): %d", r.Perm, r.Method, path, r.Module, res.Status)
		}
	}
}

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// fill replaces path wildcards: {$} by nothing, others by the value for the preceding
// segment, or "1".
func fill(pattern string, values map[string]string) string {
	segs := strings.Split(pattern, "/")
	for i, sg := range segs {
		if !wildcard.MatchString(sg) {
			continue
		}
		if sg == "{$}" {
			segs[i] = ""
			continue
		}
		v := "1"
		if i > 0 {
			if w, ok := values[segs[i-1]]; ok {
				v = w
			}
		}
		segs[i] = wildcard.ReplaceAllString(sg, v)
	}
	return strings.Join(segs, "/")
}

func apiTokenID(t *testing.T, s *servertest.Server, agentID int64) int64 {
	t.Helper()
	if _, err := s.Auth().APIToken(context.Background(), agentID, "walk", []string{auth.PermUnits}, 1<<40); err != nil {
		t.Fatal(err)
	}
	toks, err := s.Auth().Store().APITokens(context.Background(), agentID)
	if err != nil || len(toks) == 0 {
		t.Fatal(fmt.Errorf("api token: %v", err))
	}
	return toks[0].ID
}
