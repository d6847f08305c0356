package citizen

import (
	"context"
	"net/http"
	"strings"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// Guests serves people known only by a verified email, for services that need no account
// (book an appointment, submit a form). Fetch it with kernel.Service[citizen.Guests](env).
//
// Start mails a link to email; following it (and pressing the button of the page it opens,
// so that mail scanners fetching links do not consume it) remembers the email in the
// browser's session for two hours and sends the browser to returnTo. From then on Verified
// reports the email, and kernel.CitizenFrom gives a Citizen{ID: 0, Email, Verified: true}.
// A signed-in citizen counts as verified with the account's email.
type Guests interface {
	// Start mails a verification link. returnTo is a local path ("/rdv/42/confirmer").
	// Errors: Invalid (on field "email", or a returnTo that is not a local path), TooMany.
	Start(ctx context.Context, email, returnTo, lang string) error
	// Verified returns the email the request's browser has proven to own.
	Verified(r *http.Request) (email string, ok bool)
}

type guests struct{ m *Module }

func (g guests) Start(ctx context.Context, email, returnTo, lang string) error {
	email, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	if !localPath(returnTo) {
		return errs.New(errs.Invalid, errReturnTo)
	}
	return g.m.db.InTx(ctx, func(tx *store.Tx) error {
		if err := g.m.mailAllowed(ctx, tx, email, ""); err != nil {
			return err
		}
		return g.m.sendToken(ctx, tx, token{Kind: kindGuest, Email: email, ReturnTo: returnTo}, guestTTL, "/compte/invite", "guest", lang, "")
	})
}

func (g guests) Verified(r *http.Request) (string, bool) {
	cur := currentFrom(r)
	switch {
	case cur == nil:
		return "", false
	case cur.s.GuestEmail != "":
		return cur.s.GuestEmail, true
	case cur.acct != nil && cur.acct.VerifiedAt != nil:
		return cur.acct.Email, true
	}
	return "", false
}

// localPath accepts paths of this site only, never "//host" or "/\host" (open redirects).
func localPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "/\\") &&
		len(p) <= 2000 && !strings.ContainsFunc(p, func(c rune) bool { return c < ' ' || c == 0x7f })
}

// UseGuestLink proves the guest's email with the mailed token; it returns the token's
// email and return path.
func (m *Module) UseGuestLink(ctx context.Context, raw string) (email, returnTo string, err error) {
	err = m.db.InTx(ctx, func(tx *store.Tx) error {
		t, err := m.claim(ctx, tx, raw, kindGuest)
		if err != nil {
			return err
		}
		email, returnTo = t.Email, t.ReturnTo
		return nil
	})
	return email, returnTo, err
}
