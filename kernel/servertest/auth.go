package servertest

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
)

// Password is the password of agents made by NewAgent and NewOrgAdmin.
const Password = "correct horse battery staple"

// Auth returns the back-office identity module of the server.
func (s *Server) Auth() *auth.Module {
	s.T.Helper()
	for _, in := range s.Modules {
		if m, ok := in.Module.(*auth.Module); ok {
			return m
		}
	}
	s.T.Fatalf("servertest: module %s is not compiled in", auth.ID)
	return nil
}

// DefaultOrg returns the ID of the default organisation ("Ma commune").
func (s *Server) DefaultOrg() int64 {
	s.T.Helper()
	id, err := s.Auth().DefaultOrg(context.Background())
	if err != nil {
		s.T.Fatalf("servertest: default org: %v", err)
	}
	return id
}

// NewOrg creates an organisation without agents.
func (s *Server) NewOrg(name string) int64 {
	s.T.Helper()
	id, err := s.Auth().CreateOrgOnly(context.Background(), name)
	if err != nil {
		s.T.Fatalf("servertest: new org: %v", err)
	}
	return id
}

// NewUnit creates a unit of orgID under parent (0: top level).
func (s *Server) NewUnit(orgID, parent int64, name string) int64 {
	s.T.Helper()
	id, err := s.Auth().CreateUnit(context.Background(), orgID, parent, name)
	if err != nil {
		s.T.Fatalf("servertest: new unit: %v", err)
	}
	return id
}

// NewAgent creates an agent of orgID with password Password, holding perms on every
// resource of its organisation (through a role of its own).
func (s *Server) NewAgent(orgID int64, email string, perms ...string) *kernel.Agent {
	s.T.Helper()
	return s.NewAgentWith(auth.NewAgent{OrgID: orgID, Email: email, Password: Password, Perms: perms})
}

// NewOrgAdmin creates an administrator of orgID with password Password.
func (s *Server) NewOrgAdmin(orgID int64, email string) *kernel.Agent {
	s.T.Helper()
	return s.NewAgentWith(auth.NewAgent{OrgID: orgID, Email: email, Password: Password, OrgAdmin: true})
}

// NewAgentWith creates an agent as described (units, scoped grants, no password…).
func (s *Server) NewAgentWith(n auth.NewAgent) *kernel.Agent {
	s.T.Helper()
	a, err := s.Auth().CreateAgent(context.Background(), n)
	if err != nil {
		s.T.Fatalf("servertest: new agent: %v", err)
	}
	return a
}

// ClientAs returns a client already signed in as a (a session is opened directly, without
// the login form), with a CSRF token ready for posts.
func (s *Server) ClientAs(a *kernel.Agent) *Client {
	s.T.Helper()
	token, err := s.Auth().SessionToken(context.Background(), a.ID, "127.0.0.1", "servertest")
	if err != nil {
		s.T.Fatalf("servertest: session: %v", err)
	}
	c := s.Client()
	u, _ := url.Parse(s.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: auth.CookieName, Value: token, Path: "/"}})
	c.Get("/admin/login") // picks a CSRF token
	return c
}

// APIToken creates a personal API token of a limited to perms.
func (s *Server) APIToken(a *kernel.Agent, perms ...string) string {
	s.T.Helper()
	t, err := s.Auth().APIToken(context.Background(), a.ID, "test", perms, 24*time.Hour)
	if err != nil {
		s.T.Fatalf("servertest: api token: %v", err)
	}
	return t
}

// LoginAgent signs in through the login form and fails the test unless it succeeds.
func (c *Client) LoginAgent(email, password string) {
	c.s.T.Helper()
	c.Get("/admin/login")
	res := c.Post("/admin/login", url.Values{"email": {email}, "password": {password}})
	if res.Status != http.StatusSeeOther {
		c.s.T.Fatalf("servertest: login as %s: status %d, want 303\n%s", email, res.Status, res.Body)
	}
	c.Get("/admin/")
}
