package citizen

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	ktoken "parvis.org/parvis/kernel/token"
	"strings"
	"time"
	"unicode/utf8"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// Limits and lifetimes.
const (
	maxPassword = 1024 // argon2 hashes anything, but a megabyte password is an attack
	maxEmail    = 254
	maxName     = 100

	verifyTTL = 24 * time.Hour
	magicTTL  = 15 * time.Minute
	guestTTL  = time.Hour // the mailed link of a guest
	// Sessions: an idle citizen is signed out after a week, everyone after 30 days.
	sessionIdle    = 7 * 24 * time.Hour
	sessionMax     = 30 * 24 * time.Hour
	guestSessionTT = 2 * time.Hour

	// Throttles: failed logins per account and per address, and mails asked for.
	throttleWindow  = 15 * time.Minute
	maxFailsAccount = 5
	maxFailsAddress = 20
	mailWindow      = time.Hour
	maxMailsEmail   = 5
	maxMailsAddress = 30
)

// Error keys shown to people.
const (
	errEmailInvalid   = "kernel.citizen.error.email_invalid"
	errPasswordShort  = "kernel.citizen.error.password_short"
	errPasswordLong   = "kernel.citizen.error.password_long"
	errBadCredentials = "kernel.citizen.error.bad_credentials"
	errWrongPassword  = "kernel.citizen.error.wrong_password"
	errNotVerified    = "kernel.citizen.error.not_verified"
	errThrottled      = "kernel.citizen.error.throttled"
	errTokenInvalid   = "kernel.citizen.error.token_invalid"
	errTokenUsed      = "kernel.citizen.error.token_used"
	errTokenExpired   = "kernel.citizen.error.token_expired"
	errEmailTaken     = "kernel.citizen.error.email_taken"
	errReturnTo       = "kernel.citizen.error.return_to"
)

func (m *Module) now() time.Time { return m.clock.Now().UTC() }

// NormalizeEmail checks an address and returns it lower-cased, or an Invalid error on
// field "email".
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	bad := errs.OnField(errs.Invalid, "email", errEmailInvalid)
	if s == "" || len(s) > maxEmail {
		return "", bad
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", bad
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || !strings.Contains(s[at+1:], ".") || strings.HasSuffix(s, ".") {
		return "", bad
	}
	return strings.ToLower(s), nil
}

// checkPassword enforces the length rules of a new password.
func checkPassword(field, pw string) error {
	n := utf8.RuneCountInString(pw)
	if n < MinPassword {
		return errs.OnField(errs.Invalid, field, errPasswordShort, "min", MinPassword)
	}
	if len(pw) > maxPassword {
		return errs.OnField(errs.Invalid, field, errPasswordLong, "max", maxPassword)
	}
	return nil
}

// newToken returns a random 256-bit token and its stored hash.
func newToken() (raw, hash string, err error) {
	raw, hash = ktoken.New(32)
	return raw, hash, nil
}

func hashToken(raw string) string { return ktoken.Hash(raw) }

// throttle refuses with TooMany when scope had max attempts or more within window.
func (m *Module) throttle(ctx context.Context, q store.Querier, scope string, max int, window time.Duration) error {
	now := m.now()
	n, err := attempts.Count(ctx, q, scope, now.Add(-window))
	if err != nil || n < max {
		return err
	}
	oldest, err := attempts.Oldest(ctx, q, scope, now.Add(-window))
	if err != nil {
		return err
	}
	wait := oldest.Add(window).Sub(now)
	mins := int((wait + time.Minute - 1) / time.Minute)
	if mins < 1 {
		mins = 1
	}
	return errs.New(errs.TooMany, errThrottled, "minutes", mins)
}

// mailAllowed counts a mail asked for to email from addr, refusing past the limits. It
// counts whether or not an account exists, so its answer reveals nothing.
func (m *Module) mailAllowed(ctx context.Context, tx *store.Tx, email, addr string) error {
	if err := m.throttle(ctx, tx, "mail:"+email, maxMailsEmail, mailWindow); err != nil {
		return err
	}
	if addr != "" {
		if err := m.throttle(ctx, tx, "mailip:"+addr, maxMailsAddress, mailWindow); err != nil {
			return err
		}
		if err := attempts.Add(ctx, tx, "mailip:"+addr, m.now()); err != nil {
			return err
		}
	}
	return attempts.Add(ctx, tx, "mail:"+email, m.now())
}

func (m *Module) link(path, raw string) string {
	return strings.TrimRight(m.cfg.BaseURL, "/") + path + "?t=" + raw
}

// sendToken stores a new token and queues its mail, in tx.
func (m *Module) sendToken(ctx context.Context, tx *store.Tx, t token, ttl time.Duration, path, tmpl, lang, name string) error {
	raw, hash, err := newToken()
	if err != nil {
		return err
	}
	now := m.now()
	t.Hash, t.CreatedAt, t.ExpiresAt = hash, now, now.Add(ttl)
	if err := insertToken(ctx, tx, t); err != nil {
		return err
	}
	return m.sendMail(ctx, tx, t.Email, lang, tmpl, map[string]any{
		"Link": m.link(path, raw), "Name": name, "Minutes": int(ttl / time.Minute), "Hours": int(ttl / time.Hour)})
}

func (m *Module) sendMail(ctx context.Context, tx *store.Tx, to, lang, tmpl string, data map[string]any) error {
	if lang == "" {
		lang = "fr"
	}
	if err := m.mail.Send(ctx, tx, kernel.Mail{To: []string{to}, Lang: lang, Template: ID + "/" + tmpl, Data: data}); err != nil {
		return fmt.Errorf("mail %s: %w", tmpl, err)
	}
	return nil
}

// SignUp creates an unverified account and mails a verification link. If the email already
// has an account, its owner gets a notice instead and the caller sees the same success, so
// sign-up does not reveal who has an account.
func (m *Module) SignUp(ctx context.Context, email, name, password, lang, addr string) error {
	email, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	if err := checkPassword("password", password); err != nil {
		return err
	}
	// Hash before the transaction: it takes tens of milliseconds, too long to hold the writer.
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		if err := m.mailAllowed(ctx, tx, email, addr); err != nil {
			return err
		}
		now := m.now()
		_ = purge(ctx, tx, now)
		existing, err := accountByEmail(ctx, tx, email)
		switch {
		case err == nil:
			return m.sendMail(ctx, tx, email, existing.Lang, "signup_exists", map[string]any{
				"Link": strings.TrimRight(m.cfg.BaseURL, "/") + "/compte/connexion", "Name": existing.Name})
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		a := &Account{Email: email, Name: name, Lang: lang, CreatedAt: now, UpdatedAt: now, passwordHash: hash}
		if err := insertAccount(ctx, tx, a); err != nil {
			if store.IsUniqueViolation(err) { // a concurrent sign-up won
				return nil
			}
			return err
		}
		return m.sendToken(ctx, tx, token{Kind: kindVerify, AccountID: a.ID, Email: email}, verifyTTL, "/compte/verifier", "verify", lang, name)
	})
}

// claim checks a mailed token of kind and marks it used, in tx.
func (m *Module) claim(ctx context.Context, tx *store.Tx, raw, kind string) (token, error) {
	if raw == "" || len(raw) > 100 {
		return token{}, errs.New(errs.Invalid, errTokenInvalid)
	}
	t, err := tokenByHash(ctx, tx, hashToken(raw))
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Kind != kind) {
		return token{}, errs.New(errs.Invalid, errTokenInvalid)
	}
	if err != nil {
		return token{}, err
	}
	now := m.now()
	if t.UsedAt != nil {
		return token{}, errs.New(errs.Conflict, errTokenUsed)
	}
	if !now.Before(t.ExpiresAt) {
		return token{}, errs.New(errs.Conflict, errTokenExpired)
	}
	if err := useToken(ctx, tx, t.Hash, now); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return token{}, errs.New(errs.Conflict, errTokenUsed)
		}
		return token{}, err
	}
	return t, nil
}

// peek checks a token without using it (for the confirmation page of mailed links, which
// mail scanners may fetch).
func (m *Module) peek(ctx context.Context, raw, kind string) error {
	if raw == "" || len(raw) > 100 {
		return errs.New(errs.Invalid, errTokenInvalid)
	}
	t, err := tokenByHash(ctx, m.db.Read(), hashToken(raw))
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && t.Kind != kind):
		return errs.New(errs.Invalid, errTokenInvalid)
	case err != nil:
		return err
	case t.UsedAt != nil:
		return errs.New(errs.Conflict, errTokenUsed)
	case !m.now().Before(t.ExpiresAt):
		return errs.New(errs.Conflict, errTokenExpired)
	}
	return nil
}

// Verify confirms the email of a new account with the mailed token and returns the account.
func (m *Module) Verify(ctx context.Context, raw string) (Account, error) {
	var a Account
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		t, err := m.claim(ctx, tx, raw, kindVerify)
		if err != nil {
			return err
		}
		if a, err = accountByID(ctx, tx, t.AccountID); err != nil {
			return err
		}
		if a.VerifiedAt == nil {
			now := m.now()
			a.VerifiedAt, a.UpdatedAt = &now, now
			return updateAccount(ctx, tx, a)
		}
		return nil
	})
	return a, err
}

// Login checks an email and password, throttled per account and per address.
func (m *Module) Login(ctx context.Context, email, password, addr string) (Account, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	acctScope, addrScope := "login:"+email, "loginip:"+addr
	if err := m.throttle(ctx, m.db.Read(), acctScope, maxFailsAccount, throttleWindow); err != nil {
		return Account{}, err
	}
	if err := m.throttle(ctx, m.db.Read(), addrScope, maxFailsAddress, throttleWindow); err != nil {
		return Account{}, err
	}
	a, err := accountByEmail(ctx, m.db.Read(), email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Account{}, err
	}
	hash := a.passwordHash
	if err != nil || hash == "" {
		hash = m.dummyHash
	}
	ok := passwordMatches(password, hash)
	if err != nil || a.passwordHash == "" || !ok {
		now := m.now()
		werr := m.db.InTx(ctx, func(tx *store.Tx) error {
			if err := attempts.Add(ctx, tx, acctScope, now); err != nil {
				return err
			}
			return attempts.Add(ctx, tx, addrScope, now)
		})
		if werr != nil {
			return Account{}, werr
		}
		return Account{}, errs.OnField(errs.Unauthenticated, "email", errBadCredentials)
	}
	if a.VerifiedAt == nil {
		// The password is right, so saying so reveals nothing; send a fresh link.
		err := m.db.InTx(ctx, func(tx *store.Tx) error {
			if err := m.mailAllowed(ctx, tx, email, addr); err != nil {
				return err
			}
			return m.sendToken(ctx, tx, token{Kind: kindVerify, AccountID: a.ID, Email: a.Email}, verifyTTL, "/compte/verifier", "verify", a.Lang, a.Name)
		})
		if err != nil && errs.CodeOf(err) != errs.TooMany {
			return Account{}, err
		}
		return Account{}, errs.OnField(errs.Forbidden, "email", errNotVerified)
	}
	if err := attempts.Clear(ctx, m.db.Write(), acctScope); err != nil {
		return Account{}, err
	}
	return a, nil
}

// RequestMagicLink mails a one-time login link when email has an account, and does nothing
// otherwise; the caller shows the same answer either way.
func (m *Module) RequestMagicLink(ctx context.Context, email, lang, addr string) error {
	email, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		if err := m.mailAllowed(ctx, tx, email, addr); err != nil {
			return err
		}
		a, err := accountByEmail(ctx, tx, email)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return m.sendToken(ctx, tx, token{Kind: kindMagic, AccountID: a.ID, Email: a.Email}, magicTTL, "/compte/lien/ouvrir", "magic_link", a.Lang, a.Name)
	})
}

// UseMagicLink signs in with a mailed login link. Following it proves the email, so an
// unverified account becomes verified.
func (m *Module) UseMagicLink(ctx context.Context, raw string) (Account, error) {
	var a Account
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		t, err := m.claim(ctx, tx, raw, kindMagic)
		if err != nil {
			return err
		}
		if a, err = accountByID(ctx, tx, t.AccountID); err != nil {
			return err
		}
		if a.Email != t.Email { // the email changed since the link was sent
			return errs.New(errs.Invalid, errTokenInvalid)
		}
		if a.VerifiedAt == nil {
			now := m.now()
			a.VerifiedAt, a.UpdatedAt = &now, now
			return updateAccount(ctx, tx, a)
		}
		return nil
	})
	return a, err
}

// StartSession creates a session for accountID (0 with guestEmail for a guest), replacing
// the session old (the cookie value before login, so the session ID rotates), and returns
// the new cookie value.
func (m *Module) StartSession(ctx context.Context, accountID int64, guestEmail, old string) (string, time.Time, error) {
	raw, hash, err := newToken()
	if err != nil {
		return "", time.Time{}, err
	}
	now := m.now()
	s := session{ID: hash, AccountID: accountID, GuestEmail: guestEmail, CreatedAt: now, ExpiresAt: now.Add(sessionIdle)}
	if accountID == 0 {
		s.ExpiresAt = now.Add(guestSessionTT)
	}
	err = m.db.InTx(ctx, func(tx *store.Tx) error {
		_ = purge(ctx, tx, now)
		if old != "" {
			if err := deleteSession(ctx, tx, hashToken(old)); err != nil {
				return err
			}
		}
		return insertSession(ctx, tx, s)
	})
	return raw, s.ExpiresAt, err
}

// EndSession deletes the session of cookie value raw.
func (m *Module) EndSession(ctx context.Context, raw string) error {
	return deleteSession(ctx, m.db.Write(), hashToken(raw))
}

// UpdateName changes the name of an account.
func (m *Module) UpdateName(ctx context.Context, id int64, name string) error {
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		a, err := accountByID(ctx, tx, id)
		if err != nil {
			return err
		}
		a.Name, a.UpdatedAt = name, m.now()
		return updateAccount(ctx, tx, a)
	})
}

// checkCurrent verifies the account's current password for a sensitive change.
func (m *Module) checkCurrent(a Account, field, password string) error {
	if a.passwordHash == "" {
		return nil // accounts made by an identity provider have none; the session suffices
	}
	if !passwordMatches(password, a.passwordHash) {
		return errs.OnField(errs.Unauthenticated, field, errWrongPassword)
	}
	return nil
}

// RequestEmailChange mails a confirmation link to the new address; the account keeps its
// email until the link is followed. If the new address belongs to another account, that
// account's owner gets a notice instead: the answer reveals nothing.
func (m *Module) RequestEmailChange(ctx context.Context, id int64, newEmail, password, lang, addr string) error {
	newEmail, err := NormalizeEmail(newEmail)
	if err != nil {
		return errs.OnField(errs.Invalid, "new_email", errEmailInvalid)
	}
	a, err := accountByID(ctx, m.db.Read(), id)
	if err != nil {
		return err
	}
	if err := m.checkCurrent(a, "password", password); err != nil {
		return err
	}
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		if err := m.mailAllowed(ctx, tx, newEmail, addr); err != nil {
			return err
		}
		other, err := accountByEmail(ctx, tx, newEmail)
		switch {
		case err == nil && other.ID == a.ID:
			return nil
		case err == nil:
			return m.sendMail(ctx, tx, newEmail, other.Lang, "signup_exists", map[string]any{
				"Link": strings.TrimRight(m.cfg.BaseURL, "/") + "/compte/connexion", "Name": other.Name})
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		return m.sendToken(ctx, tx, token{Kind: kindEmailChange, AccountID: a.ID, Email: newEmail}, verifyTTL, "/compte/email/confirmer", "email_change", lang, a.Name)
	})
}

// ConfirmEmailChange applies the change confirmed by the mailed token.
func (m *Module) ConfirmEmailChange(ctx context.Context, raw string) (Account, error) {
	var a Account
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		t, err := m.claim(ctx, tx, raw, kindEmailChange)
		if err != nil {
			return err
		}
		if a, err = accountByID(ctx, tx, t.AccountID); err != nil {
			return err
		}
		now := m.now()
		a.Email, a.VerifiedAt, a.UpdatedAt = t.Email, &now, now
		if err := updateAccount(ctx, tx, a); err != nil {
			if store.IsUniqueViolation(err) {
				return errs.New(errs.Conflict, errEmailTaken)
			}
			return err
		}
		return nil
	})
	return a, err
}

// ChangePassword sets a new password after checking the current one, and signs out every
// other session of the account (keep is the hash of the current session).
func (m *Module) ChangePassword(ctx context.Context, id int64, current, next, keep string) error {
	a, err := accountByID(ctx, m.db.Read(), id)
	if err != nil {
		return err
	}
	if err := m.checkCurrent(a, "current", current); err != nil {
		return err
	}
	if err := checkPassword("new", next); err != nil {
		return err
	}
	hash, err := hashPassword(next)
	if err != nil {
		return err
	}
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		a, err := accountByID(ctx, tx, id)
		if err != nil {
			return err
		}
		a.passwordHash, a.UpdatedAt = hash, m.now()
		if err := updateAccount(ctx, tx, a); err != nil {
			return err
		}
		return deleteSessionsOf(ctx, tx, id, keep)
	})
}

// Export gathers everything Parvis holds about a citizen: the account and what every module
// contributes through a DataProvider.
func (m *Module) Export(ctx context.Context, id int64) (map[string]any, error) {
	a, err := accountByID(ctx, m.db.Read(), id)
	if err != nil {
		return nil, err
	}
	ids, err := identitiesOf(ctx, m.db.Read(), id)
	if err != nil {
		return nil, err
	}
	mods := map[string]any{}
	for _, p := range m.providers {
		v, err := p.p.Export(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("export of %s: %w", p.module, err)
		}
		if v != nil {
			mods[p.module] = v
		}
	}
	return map[string]any{
		"exported_at":        m.now(),
		"account":            a,
		"identity_providers": ids,
		"modules":            mods,
		"has_password":       a.passwordHash != "",
	}, nil
}

// Delete erases an account after checking its password: every module's data, its sessions,
// tokens and linked identities, in one transaction.
func (m *Module) Delete(ctx context.Context, id int64, password string) error {
	a, err := accountByID(ctx, m.db.Read(), id)
	if err != nil {
		return err
	}
	if err := m.checkCurrent(a, "password", password); err != nil {
		return err
	}
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		for _, p := range m.providers {
			if err := p.p.Delete(ctx, tx, id); err != nil {
				return fmt.Errorf("deletion by %s: %w", p.module, err)
			}
		}
		// Sessions, tokens and identities go with the account (ON DELETE CASCADE); sessions
		// are deleted explicitly too, so a session can never outlive its account.
		if err := deleteSessionsOf(ctx, tx, id, ""); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM citizen_tokens WHERE account_id = ?`, `DELETE FROM citizen_identities WHERE account_id = ?`} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("delete account data: %w", err)
			}
		}
		return deleteAccount(ctx, tx, id)
	})
}
