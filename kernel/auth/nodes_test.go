package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
)

// Two nodes on one database: what one node changes — rights, a logout, a revoked API token
// — applies on the other from its very next request, although that node keeps agents'
// rights in memory between requests.
func TestCredentialsAcrossNodes(t *testing.T) {
	each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		dsn := servertest.SharedURL(t, d)
		one := servertest.NewNode(t, dsn, servertest.Options{})
		two := servertest.NewNode(t, dsn, servertest.Options{})
		org := one.DefaultOrg()
		a := one.NewAgent(org, "agent@mairie.fr", "test.things.view", auth.PermUsers)
		session, err := one.Auth().SessionToken(ctx, a.ID, "127.0.0.1", "test")
		if err != nil {
			t.Fatal(err)
		}
		token := one.APIToken(a, "test.things.view")
		get := func(s *servertest.Server, path string, cookie bool) int {
			req := httptest.NewRequest("GET", path, nil)
			if cookie {
				req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: session})
			} else {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			rec := httptest.NewRecorder()
			s.Handler.ServeHTTP(rec, req)
			return rec.Code
		}
		for _, s := range []*servertest.Server{one, two} {
			if c := get(s, "/admin/users", true); c != 200 {
				t.Fatalf("users page before the change: %d", c)
			}
			if c := get(s, "/api/test/things", false); c != 200 {
				t.Fatalf("API before the change: %d", c)
			}
		}
		st := one.Auth().Store()
		roles, err := st.Roles(ctx, st.DB.Read(), org)
		if err != nil || len(roles) != 1 {
			t.Fatalf("roles: %v %v", roles, err)
		}
		role := roles[0]
		role.Grants = []auth.Grant{{Perm: "test.things.view", Scope: auth.ScopeAll}}
		if err := st.DB.InTx(ctx, func(tx *store.Tx) error { return st.UpdateRole(ctx, tx, &role) }); err != nil {
			t.Fatal(err)
		}
		if c := get(two, "/admin/users", true); c != 403 {
			t.Errorf("users page on the other node after the permission was withdrawn: %d, want 403", c)
		}
		if c := get(two, "/admin/account", true); c != 200 {
			t.Errorf("account page on the other node: %d, want 200", c)
		}
		role.Grants = nil
		if err := st.DB.InTx(ctx, func(tx *store.Tx) error { return st.UpdateRole(ctx, tx, &role) }); err != nil {
			t.Fatal(err)
		}
		if c := get(two, "/api/test/things", false); c != 403 {
			t.Errorf("API on the other node after the permission was withdrawn: %d, want 403", c)
		}
		tokens, err := st.APITokens(ctx, a.ID)
		if err != nil || len(tokens) != 1 {
			t.Fatalf("tokens: %v %v", tokens, err)
		}
		if err := st.DB.InTx(ctx, func(tx *store.Tx) error { return st.RevokeAPIToken(ctx, tx, a.ID, tokens[0].ID) }); err != nil {
			t.Fatal(err)
		}
		if c := get(two, "/api/test/things", false); c != 401 {
			t.Errorf("revoked API token on the other node: %d, want 401", c)
		}
		if err := st.DeleteSessionByToken(ctx, st.DB.Write(), session); err != nil {
			t.Fatal(err)
		}
		if c := get(two, "/admin/account", true); c != 303 {
			t.Errorf("ended session on the other node: %d, want 303 to the login page", c)
		}
	})
}
