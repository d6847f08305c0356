package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
)

// CookieName is the back-office session cookie.
const CookieName = "parvis_bo"

// Session stages.
const (
	stageOK   = "ok"
	stageTOTP = "totp" // password checked, second factor awaited
)

// ---- sessions in the database, so they survive restarts and work across nodes

// CreateSession stores a new session and returns its token (only its hash is stored).
func (s *Store) CreateSession(ctx context.Context, tx *store.Tx, agentID int64, stage, ip, ua string, now, expires time.Time) (string, error) {
	token, hash := newToken()
	if len(ua) > 300 {
		ua = ua[:300]
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO auth_sessions (token_hash, agent_id, stage, created_at, last_seen_at, expires_at, client_ip, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, hash, agentID, stage, now, now, expires, ip, ua)
	if err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	return token, nil
}

// sessionByToken returns a live session of the given stage (not expired, not idle too long).
func (s *Store) sessionByToken(ctx context.Context, token, stage string, now, idleSince time.Time) (Session, error) {
	var ss Session
	err := s.DB.Read().QueryRowContext(ctx, `SELECT id, agent_id, stage, created_at, last_seen_at, expires_at, client_ip, user_agent
		FROM auth_sessions WHERE token_hash = ? AND stage = ? AND expires_at > ? AND last_seen_at > ?`,
		hashToken(token), stage, now, idleSince).
		Scan(&ss.ID, &ss.AgentID, &ss.Stage, &ss.CreatedAt, &ss.LastSeen, &ss.ExpiresAt, &ss.ClientIP, &ss.UserAgent)
	return ss, notFound(err, "kernel.auth.error.session")
}

// touchSession records activity; callers limit it to once a minute to spare the writer.
func (s *Store) touchSession(ctx context.Context, id int64, now time.Time) error {
	_, err := s.DB.Write().ExecContext(ctx, `UPDATE auth_sessions SET last_seen_at = ? WHERE id = ?`, now, id)
	return err
}

// DeleteSessionByToken ends one session.
func (s *Store) DeleteSessionByToken(ctx context.Context, q store.Querier, token string) error {
	_, err := q.ExecContext(ctx, `DELETE FROM auth_sessions WHERE token_hash = ?`, hashToken(token))
	return err
}

// DeleteSessions ends every session of an agent ("log out everywhere").
func (s *Store) DeleteSessions(ctx context.Context, q store.Querier, agentID int64) error {
	_, err := q.ExecContext(ctx, `DELETE FROM auth_sessions WHERE agent_id = ?`, agentID)
	return err
}

// Sessions lists an agent's live sessions.
func (s *Store) Sessions(ctx context.Context, agentID int64, now time.Time) ([]Session, error) {
	rows, err := s.DB.Read().QueryContext(ctx, `SELECT id, agent_id, stage, created_at, last_seen_at, expires_at, client_ip, user_agent
		FROM auth_sessions WHERE agent_id = ? AND stage = ? AND expires_at > ? ORDER BY last_seen_at DESC`, agentID, stageOK, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		var ss Session
		if err := rows.Scan(&ss.ID, &ss.AgentID, &ss.Stage, &ss.CreatedAt, &ss.LastSeen, &ss.ExpiresAt, &ss.ClientIP, &ss.UserAgent); err != nil {
			return nil, err
		}
		out = append(out, ss)
	}
	return out, rows.Err()
}

// purgeSessions removes expired sessions.
func (s *Store) purgeSessions(ctx context.Context, q store.Querier, now time.Time) error {
	_, err := q.ExecContext(ctx, `DELETE FROM auth_sessions WHERE expires_at <= ?`, now)
	return err
}

// ---- login throttling, in the database so that it holds across nodes

// attempts keeps the failures (store.Attempts), scoped "kind:key".
var attempts = store.Attempts{Table: "auth_attempts"}

// Failures counts failed logins of kind ("account", "ip" or "reset") for key since a time.
func (s *Store) Failures(ctx context.Context, q store.Querier, kind, key string, since time.Time) (int, error) {
	return attempts.Count(ctx, q, kind+":"+key, since)
}

// AddFailure records a failed login; old records are dropped on the way.
func (s *Store) AddFailure(ctx context.Context, tx *store.Tx, kind, key string, now time.Time) error {
	if err := attempts.Purge(ctx, tx, now.Add(-24*time.Hour)); err != nil {
		return err
	}
	return attempts.Add(ctx, tx, kind+":"+key, now)
}

// ClearFailures forgets failures of key (after a successful login or a password reset).
func (s *Store) ClearFailures(ctx context.Context, tx *store.Tx, kind, key string) error {
	return attempts.Clear(ctx, tx, kind+":"+key)
}

// ---- one-time tokens (password reset, first setup)

const (
	purposeReset = "reset"
	purposeSetup = "setup"
)

// CreateToken stores a one-time token for agentID and returns it.
func (s *Store) CreateToken(ctx context.Context, tx *store.Tx, agentID int64, purpose string, now, expires time.Time) (string, error) {
	token, hash := newToken()
	_, err := tx.ExecContext(ctx, `INSERT INTO auth_tokens (agent_id, purpose, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		agentID, purpose, hash, now, expires)
	if err != nil {
		return "", fmt.Errorf("create token: %w", err)
	}
	return token, nil
}

// TokenAgent returns the agent of a valid, unused token.
func (s *Store) TokenAgent(ctx context.Context, q store.Querier, purpose, token string, now time.Time) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT agent_id FROM auth_tokens WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?`,
		hashToken(token), purpose, now).Scan(&id)
	return id, notFound(err, "kernel.auth.error.token")
}

// UseToken marks a token used (single use) and returns its agent.
func (s *Store) UseToken(ctx context.Context, tx *store.Tx, purpose, token string, now time.Time) (int64, error) {
	id, err := s.TokenAgent(ctx, tx, purpose, token, now)
	if err != nil {
		return 0, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE auth_tokens SET used_at = ? WHERE token_hash = ?`, now, hashToken(token))
	return id, err
}

// ---- API tokens

const apiTokenPrefix = "pvt_"

// CreateAPIToken stores a personal API token limited to perms and returns it (shown once).
func (s *Store) CreateAPIToken(ctx context.Context, tx *store.Tx, agentID int64, name string, perms []string, now, expires time.Time) (string, int64, error) {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", 0, err
	}
	token := apiTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO auth_api_tokens (agent_id, name, token_hash, perms, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		agentID, name, hashToken(token), strings.Join(perms, " "), now, expires).Scan(&id)
	if err != nil {
		return "", 0, fmt.Errorf("create api token: %w", err)
	}
	return token, id, nil
}

// APITokens lists an agent's tokens.
func (s *Store) APITokens(ctx context.Context, agentID int64) ([]APIToken, error) {
	rows, err := s.DB.Read().QueryContext(ctx, `SELECT id, agent_id, name, perms, created_at, expires_at, last_used_at FROM auth_api_tokens WHERE agent_id = ? ORDER BY id`, agentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func scanAPIToken(sc interface{ Scan(...any) error }) (APIToken, error) {
	var t APIToken
	var perms string
	var used sql.NullTime
	if err := sc.Scan(&t.ID, &t.AgentID, &t.Name, &perms, &t.CreatedAt, &t.ExpiresAt, &used); err != nil {
		return t, err
	}
	t.Perms = strings.Fields(perms)
	if used.Valid {
		t.LastUsed = &used.Time
	}
	return t, nil
}

// RevokeAPIToken deletes one of the agent's tokens.
func (s *Store) RevokeAPIToken(ctx context.Context, tx *store.Tx, agentID, id int64) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM auth_api_tokens WHERE id = ? AND agent_id = ?`, id, agentID)
	return affected(res, err, "kernel.auth.error.token")
}

// ---- middleware

type tokenPermsKey struct{}

// tokenLimit restricts an agent authenticated by an API token to the token's permissions.
type tokenLimit struct {
	agentID int64
	perms   map[string]bool
}

// Middleware loads the signed-in agent from the session cookie (or, on API routes, from an
// API bearer token) and puts it in the request context, with a per-request rights cache.
func (m *Module) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		bearer := strings.HasPrefix(h, "Bearer ") && m.isAPI(r)
		c, err := r.Cookie(CookieName)
		if !bearer && (err != nil || c.Value == "") {
			// No credential: no agent, and no rights cache to allocate (anonymous pages
			// are the bulk of the traffic); Authz works without the cache.
			next.ServeHTTP(w, r)
			return
		}
		ctx, rc := newRightsCache(r.Context())
		now := m.now()
		if bearer {
			if a, lim, h := m.bearerAgent(ctx, strings.TrimSpace(strings.TrimPrefix(h, "Bearer ")), now); a != nil {
				rc.heads[a.ID] = h
				ctx = context.WithValue(kernel.WithAgent(ctx, a), tokenPermsKey{}, lim)
			}
		} else if a, h := m.sessionAgent(ctx, c.Value, now); a != nil {
			rc.heads[a.ID] = h
			ctx = kernel.WithAgent(ctx, a)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// sessionAgent returns the agent of a live signed-in session, and its rights head, from one
// query; nil when there is none or the agent is deactivated.
func (m *Module) sessionAgent(ctx context.Context, token string, now time.Time) (*kernel.Agent, rightsHead) {
	id, lastSeen, rec, h, err := m.st.signedIn(ctx, token, now, now.Add(-m.IdleTimeout))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			m.log.Error("session lookup", "err", err)
		}
		return nil, h
	}
	if !rec.Active {
		return nil, h
	}
	if now.Sub(lastSeen) > time.Minute {
		if err := m.st.touchSession(ctx, id, now); err != nil {
			m.log.Warn("session touch", "err", err)
		}
	}
	return toAgent(rec, strconv.FormatInt(id, 10)), h
}

func (m *Module) bearerAgent(ctx context.Context, token string, now time.Time) (*kernel.Agent, *tokenLimit, rightsHead) {
	t, rec, h, err := m.st.bearer(ctx, token, now)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			m.log.Error("api token lookup", "err", err)
		}
		return nil, nil, h
	}
	if !rec.Active {
		return nil, nil, h
	}
	if t.LastUsed == nil || now.Sub(*t.LastUsed) > time.Minute {
		_, _ = m.st.DB.Write().ExecContext(ctx, `UPDATE auth_api_tokens SET last_used_at = ? WHERE id = ?`, now, t.ID)
	}
	lim := &tokenLimit{agentID: rec.ID, perms: map[string]bool{}}
	for _, p := range t.Perms {
		lim.perms[p] = true
	}
	return toAgent(rec, "token:"+strconv.FormatInt(t.ID, 10)), lim, h
}

func toAgent(rec AgentRecord, sessionID string) *kernel.Agent {
	return &kernel.Agent{ID: rec.ID, OrgID: rec.OrgID, Email: rec.Email, Name: rec.Name, Lang: rec.Lang,
		SessionID: sessionID, Superadmin: rec.Superadmin}
}

// isAPI reports whether the request matches an API-area route: bearer tokens are accepted
// there only, never on back-office pages.
func (m *Module) isAPI(r *http.Request) bool {
	if m.apiMux == nil {
		return false
	}
	_, pattern := m.apiMux.Handler(r)
	return pattern != ""
}

func (m *Module) setCookie(w http.ResponseWriter, token string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token, Path: "/", HttpOnly: true,
		Secure: m.env.Config.Secure(), SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge / time.Second)})
}

func (m *Module) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true,
		Secure: m.env.Config.Secure(), SameSite: http.SameSiteLaxMode, MaxAge: -1})
}
