-- +goose Up
-- Organisations are the roots: one instance may host several towns, and nothing crosses
-- between them. The default one is created here so that a newcomer has nothing to set up.
CREATE TABLE auth_orgs (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO auth_orgs (name, created_at) VALUES ('Ma commune', '2000-01-01 00:00:00');

CREATE TABLE auth_units (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL REFERENCES auth_orgs (id),
    parent_id  INTEGER REFERENCES auth_units (id),
    name       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX auth_units_org ON auth_units (org_id);

CREATE TABLE auth_agents (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES auth_orgs (id),
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    lang          TEXT NOT NULL DEFAULT 'fr',
    password_hash TEXT NOT NULL DEFAULT '',
    totp_secret   TEXT NOT NULL DEFAULT '',
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    org_admin     BOOLEAN NOT NULL DEFAULT FALSE,
    superadmin    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    UNIQUE (org_id, email)
);
CREATE INDEX auth_agents_email ON auth_agents (email);

CREATE TABLE auth_roles (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES auth_orgs (id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    UNIQUE (org_id, name)
);

-- A grant gives a permission on all resources (scope 'all'), on one resource ('resource'),
-- on those of a unit and its sub-units ('unit'), or on those of the units the agent
-- belongs to ('member').
CREATE TABLE auth_grants (
    id            INTEGER PRIMARY KEY,
    role_id       INTEGER NOT NULL REFERENCES auth_roles (id) ON DELETE CASCADE,
    perm          TEXT NOT NULL,
    scope         TEXT NOT NULL,
    resource_type TEXT NOT NULL DEFAULT '',
    resource_id   TEXT NOT NULL DEFAULT '',
    unit_id       INTEGER REFERENCES auth_units (id) ON DELETE CASCADE
);
CREATE INDEX auth_grants_role ON auth_grants (role_id);

CREATE TABLE auth_agent_roles (
    agent_id INTEGER NOT NULL REFERENCES auth_agents (id) ON DELETE CASCADE,
    role_id  INTEGER NOT NULL REFERENCES auth_roles (id) ON DELETE CASCADE,
    PRIMARY KEY (agent_id, role_id)
);

CREATE TABLE auth_agent_units (
    agent_id INTEGER NOT NULL REFERENCES auth_agents (id) ON DELETE CASCADE,
    unit_id  INTEGER NOT NULL REFERENCES auth_units (id) ON DELETE CASCADE,
    PRIMARY KEY (agent_id, unit_id)
);

-- stage is 'ok' for a signed-in session, 'totp' while the second factor is awaited.
CREATE TABLE auth_sessions (
    id           INTEGER PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    agent_id     INTEGER NOT NULL REFERENCES auth_agents (id) ON DELETE CASCADE,
    stage        TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    client_ip    TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX auth_sessions_agent ON auth_sessions (agent_id);

-- Failed logins, per account (kind 'account', key = email) and per client address
-- (kind 'ip'): in the database so that throttling holds across nodes.
CREATE TABLE auth_login_failures (
    id   INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    at   TIMESTAMP NOT NULL
);
CREATE INDEX auth_login_failures_key ON auth_login_failures (kind, key, at);

-- One-time tokens: password reset ('reset', 1 hour) and first setup ('setup', 24 hours).
CREATE TABLE auth_tokens (
    id         INTEGER PRIMARY KEY,
    agent_id   INTEGER NOT NULL REFERENCES auth_agents (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);

-- Personal API tokens, limited to a list of permissions (space-separated).
CREATE TABLE auth_api_tokens (
    id           INTEGER PRIMARY KEY,
    agent_id     INTEGER NOT NULL REFERENCES auth_agents (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    perms        TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP
);
CREATE INDEX auth_api_tokens_agent ON auth_api_tokens (agent_id);

-- +goose Down
DROP TABLE auth_api_tokens;
DROP TABLE auth_tokens;
DROP TABLE auth_login_failures;
DROP TABLE auth_sessions;
DROP TABLE auth_agent_units;
DROP TABLE auth_agent_roles;
DROP TABLE auth_grants;
DROP TABLE auth_roles;
DROP TABLE auth_agents;
DROP TABLE auth_units;
DROP TABLE auth_orgs;
