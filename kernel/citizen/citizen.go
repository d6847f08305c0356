// Package citizen is the built-in module "kernel.citizen": citizen accounts and sessions.
//
// A citizen signs up with an email, a name and a password (argon2id), confirms the email by
// a link, then signs in with the password or with a one-time link sent by mail. Sessions live
// in the database (table citizen_sessions, cookie "parvis_session"), so they survive restarts
// and work across nodes. The profile pages let a citizen change name, email (confirmed again)
// and password, download personal data as JSON and delete the account.
//
// What other modules use:
//
//   - kernel.CitizenFrom(ctx) gives the signed-in citizen, set by this module's Middleware;
//     for a guest known only by a verified email it gives a Citizen with ID 0.
//   - Guests (kernel.Service[citizen.Guests](env)) proves that a guest owns an email, for
//     services that need no account (an appointment, a form).
//   - DataProvider, contributed as kernel.Extension{Point: kernel.PointCitizenData}: the
//     module's share of a citizen's personal data, exported with the account and deleted
//     in the same transaction as the account.
//   - IdentityProvider, contributed as kernel.Extension{Point: PointIdentityProvider}: an
//     OpenID Connect provider (FranceConnect…), shown as a button on the login page.
package citizen

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// ID is the module ID; locale keys start with "kernel.citizen.", mail templates with
// "kernel.citizen/".
const ID = "kernel.citizen"

// PointIdentityProvider is the extension point for OpenID Connect providers.
const PointIdentityProvider = "citizen.idp"

// DataProvider is a module's share of a citizen's personal data (RGPD rights of access and
// erasure). Contribute one as kernel.Extension{Point: kernel.PointCitizenData, Value: p}.
type DataProvider interface {
	// Export returns the citizen's data held by the module, JSON-encodable; nil when none.
	Export(ctx context.Context, citizenID int64) (any, error)
	// Delete erases (or anonymises) the citizen's data in tx, the transaction that deletes
	// the account: if any provider fails, nothing is deleted.
	Delete(ctx context.Context, tx *store.Tx, citizenID int64) error
}

// IdentityProvider is an OpenID Connect provider citizens may sign in with — FranceConnect
// for instance. None ships with the kernel; a module contributes one as
// kernel.Extension{Point: PointIdentityProvider, Value: p}, typically built on
// github.com/coreos/go-oidc/v3 and golang.org/x/oauth2 (both in go.mod).
//
// The flow, all handled here: the login page shows a button per provider, linking to
// /compte/oidc/{Name}; that page remembers a random state and nonce in a signed cookie and
// redirects to AuthCodeURL; the provider sends the browser back to
// /compte/oidc/{Name}/retour?code=…&state=…, where the state is checked and Exchange is
// called. The claims are linked to an account by (provider, subject), else by a verified
// email matching an account, else a new verified account is created; then a session starts.
type IdentityProvider interface {
	// Name is the provider's stable key, used in URLs and stored with linked accounts:
	// "franceconnect". Lower-case letters, digits and dashes.
	Name() string
	// Title is the locale key of the button's text ("S'identifier avec FranceConnect").
	Title() string
	// AuthCodeURL returns where to send the browser, carrying state and nonce, with
	// redirectURL (the callback above, absolute) as redirect_uri. PKCE, if used, is the
	// provider's business (derive the verifier from state).
	AuthCodeURL(state, nonce, redirectURL string) string
	// Exchange trades the code for tokens, verifies the ID token (signature, audience,
	// nonce) and returns its claims.
	Exchange(ctx context.Context, code, nonce, redirectURL string) (Claims, error)
}

// Claims is who an identity provider says the citizen is.
type Claims struct {
	Subject       string // "sub", stable per provider
	Email         string
	EmailVerified bool
	Name          string // given and family names, as shown
}

// Account is a citizen account.
type Account struct {
	ID         int64      `json:"id"`
	Email      string     `json:"email"`
	Name       string     `json:"name"`
	Lang       string     `json:"lang"`
	VerifiedAt *time.Time `json:"email_verified_at"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`

	passwordHash string
}

// HasPassword reports whether the account has a password (accounts made through an
// identity provider have none).
func (a *Account) HasPassword() bool { return a.passwordHash != "" }

// Module is the kernel.citizen module.
type Module struct {
	db    *store.DB
	log   *slog.Logger
	clock kernel.Clock
	mail  kernel.Mailer
	views *web.Views
	cfg   *config.Config

	providers []namedProvider
	// space lists the pages modules add to the citizen's space, by Order.
	space []kernel.SpaceLink
	idps  []IdentityProvider
	// dummyHash is checked when no account matches, so that a login for an unknown email
	// takes as long as one for a known email (no enumeration by timing).
	dummyHash string
}

type namedProvider struct {
	module string
	p      DataProvider
}

var (
	_ kernel.Module      = (*Module)(nil)
	_ kernel.Provisioner = (*Module)(nil)
	_ kernel.Declarer    = (*Module)(nil)
	_ kernel.Assembler   = (*Module)(nil)
)

func init() { kernel.Register(&Module{}) }

// Info identifies the module.
func (*Module) Info() kernel.Info {
	return kernel.Info{ID: ID, Title: "kernel.citizen.title", Builtin: true, Priority: 50,
		New: func() kernel.Module { return new(Module) }}
}

// Provision keeps the kernel services and publishes Guests.
func (m *Module) Provision(ctx context.Context, env *kernel.Env) error {
	m.db, m.log, m.clock, m.views, m.cfg = env.DB, env.Log, env.Clock, env.Views, env.Config
	m.mail = env.Mail
	if m.mail == nil {
		// Only in a build without kernel.mail: say so loudly rather than fail.
		m.log.Warn("no mailer: citizen mails (verification, login links) are dropped")
		m.mail = dropMailer{m.log}
	}
	h, err := hashPassword("parvis-dummy-password")
	if err != nil {
		return err
	}
	m.dummyHash = h
	kernel.Provide[Guests](env, guests{m})
	return nil
}

type dropMailer struct{ log *slog.Logger }

func (d dropMailer) Send(ctx context.Context, _ *store.Tx, ml kernel.Mail) error {
	d.log.WarnContext(ctx, "mail dropped: no mailer", "template", ml.Template)
	return nil
}

// Assemble collects the data providers and identity providers of every module.
func (m *Module) Assemble(all []kernel.Declared) error {
	seen := map[string]string{}
	for _, d := range all {
		for _, e := range d.Parts.Extensions {
			switch e.Point {
			case kernel.PointCitizenData:
				p, ok := e.Value.(DataProvider)
				if !ok {
					return fmt.Errorf("module %s contributes a %T to %s, which expects a citizen.DataProvider", d.ID, e.Value, e.Point)
				}
				m.providers = append(m.providers, namedProvider{module: d.ID, p: p})
			case kernel.PointCitizenSpace:
				l, ok := e.Value.(kernel.SpaceLink)
				if !ok {
					return fmt.Errorf("module %s contributes a %T to %s, which expects a kernel.SpaceLink", d.ID, e.Value, e.Point)
				}
				m.space = append(m.space, l)
			case PointIdentityProvider:
				p, ok := e.Value.(IdentityProvider)
				if !ok {
					return fmt.Errorf("module %s contributes a %T to %s, which expects a citizen.IdentityProvider", d.ID, e.Value, e.Point)
				}
				if !idpName.MatchString(p.Name()) {
					return fmt.Errorf("module %s: identity provider name %q must be lower-case letters, digits and dashes", d.ID, p.Name())
				}
				if prev, dup := seen[p.Name()]; dup {
					return fmt.Errorf("identity provider %q contributed by both %s and %s", p.Name(), prev, d.ID)
				}
				seen[p.Name()] = d.ID
				m.idps = append(m.idps, p)
			}
		}
	}
	sort.SliceStable(m.space, func(a, b int) bool { return m.space[a].Order < m.space[b].Order })
	return nil
}

// Declare lists the module's routes, migrations, templates, locales and mails.
func (m *Module) Declare() kernel.Parts {
	pub := func(method, pattern string, h http.HandlerFunc) kernel.Route {
		return kernel.Route{Area: kernel.Public, Method: method, Pattern: pattern, Handler: h}
	}
	return kernel.Parts{
		Migrations: sub("migrations"),
		Templates:  sub("templates"),
		Locales:    sub("locales"),
		Mail:       sub("mail"),
		Routes: []kernel.Route{
			pub("GET", "/compte", m.account),
			pub("GET", "/compte/inscription", m.signupForm),
			pub("POST", "/compte/inscription", m.signup),
			pub("GET", "/compte/verifier", m.verify),
			pub("GET", "/compte/connexion", m.loginForm),
			pub("POST", "/compte/connexion", m.login),
			pub("GET", "/compte/lien", m.magicForm),
			pub("POST", "/compte/lien", m.magicRequest),
			pub("GET", "/compte/lien/ouvrir", m.magicConfirm),
			pub("POST", "/compte/lien/ouvrir", m.magicUse),
			pub("POST", "/compte/deconnexion", m.logout),
			pub("GET", "/compte/profil", m.profileForm),
			pub("POST", "/compte/profil", m.profile),
			pub("GET", "/compte/email", m.emailForm),
			pub("POST", "/compte/email", m.emailRequest),
			pub("GET", "/compte/email/confirmer", m.emailConfirm),
			pub("GET", "/compte/mot-de-passe", m.passwordForm),
			pub("POST", "/compte/mot-de-passe", m.password),
			pub("GET", "/compte/export", m.export),
			pub("GET", "/compte/supprimer", m.deleteForm),
			pub("POST", "/compte/supprimer", m.delete),
			pub("GET", "/compte/invite", m.guestConfirm),
			pub("POST", "/compte/invite", m.guestUse),
			pub("GET", "/compte/oidc/{provider}", m.oidcStart),
			pub("GET", "/compte/oidc/{provider}/retour", m.oidcCallback),
		},
	}
}
