-- +goose Up
CREATE TABLE citizen_accounts (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL DEFAULT '',
    lang          TEXT NOT NULL DEFAULT 'fr',
    verified_at   TIMESTAMP NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

-- Accounts linked to an OpenID Connect provider (FranceConnect…), by the provider's subject.
CREATE TABLE citizen_identities (
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES citizen_accounts (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX citizen_identities_account ON citizen_identities (account_id);

-- id is the SHA-256 of the cookie value: a stolen database gives no usable session.
CREATE TABLE citizen_sessions (
    id          TEXT PRIMARY KEY,
    account_id  INTEGER NULL REFERENCES citizen_accounts (id) ON DELETE CASCADE,
    guest_email TEXT NULL,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL
);
CREATE INDEX citizen_sessions_account ON citizen_sessions (account_id);
CREATE INDEX citizen_sessions_expires ON citizen_sessions (expires_at);

-- Single-use tokens sent by mail; hash is the SHA-256 of the token.
CREATE TABLE citizen_tokens (
    hash       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    account_id INTEGER NULL REFERENCES citizen_accounts (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    return_to  TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP NULL
);
CREATE INDEX citizen_tokens_account ON citizen_tokens (account_id);
CREATE INDEX citizen_tokens_expires ON citizen_tokens (expires_at);

-- Failed logins and mails asked for, per account and per address, for throttling.
CREATE TABLE citizen_attempts (
    id    INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    at    TIMESTAMP NOT NULL
);
CREATE INDEX citizen_attempts_scope ON citizen_attempts (scope, at);

-- +goose Down
DROP TABLE citizen_attempts;
DROP TABLE citizen_tokens;
DROP TABLE citizen_sessions;
DROP TABLE citizen_identities;
DROP TABLE citizen_accounts;
