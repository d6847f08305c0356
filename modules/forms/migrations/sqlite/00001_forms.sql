-- +goose Up
-- A form is a key per organisation; each edit of a published form makes a new draft version.
CREATE TABLE forms_forms (
    id           INTEGER PRIMARY KEY,
    org_id       INTEGER NOT NULL,
    key          TEXT NOT NULL,
    title        TEXT NOT NULL,
    published    INTEGER NOT NULL DEFAULT 0, -- version citizens fill, 0 when none
    closed_at    TIMESTAMP,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    UNIQUE (org_id, key)
);

-- Versions: the draft is the highest unfrozen one; a frozen version never changes.
CREATE TABLE forms_versions (
    id         INTEGER PRIMARY KEY,
    form_id    INTEGER NOT NULL REFERENCES forms_forms (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    doc        TEXT NOT NULL,
    frozen     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (form_id, version)
);

-- Drafts being filled; token_hash is the SHA-256 of the browser's or resume link's token.
CREATE TABLE forms_drafts (
    id         INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    form_id    INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    citizen_id INTEGER,
    email      TEXT NOT NULL DEFAULT '',
    answers    TEXT NOT NULL DEFAULT '{}',
    done       TEXT NOT NULL DEFAULT '[]',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX forms_drafts_citizen ON forms_drafts (citizen_id, form_id);
CREATE INDEX forms_drafts_expiry ON forms_drafts (expires_at);

-- Responses: answers as JSON, search the folded text used by full-text search. submit_key
-- makes a submission idempotent (a draft, or an API Idempotency-Key); owner_key enforces
-- "one response per citizen" where the form asks for it.
CREATE TABLE forms_responses (
    id           INTEGER PRIMARY KEY,
    org_id       INTEGER NOT NULL,
    form_id      INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    ref          TEXT NOT NULL UNIQUE,
    submit_key   TEXT UNIQUE,
    owner_key    TEXT,
    citizen_id   INTEGER,
    email        TEXT NOT NULL DEFAULT '',
    lang         TEXT NOT NULL DEFAULT 'fr',
    unit_id      INTEGER NOT NULL DEFAULT 0,
    state        TEXT NOT NULL DEFAULT '',
    public_label TEXT NOT NULL DEFAULT '',
    answers      TEXT NOT NULL,
    search       TEXT NOT NULL DEFAULT '',
    anonymised   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    UNIQUE (form_id, owner_key)
);
CREATE INDEX forms_responses_list ON forms_responses (form_id, created_at, id);
CREATE INDEX forms_responses_state ON forms_responses (form_id, state, created_at, id);
CREATE INDEX forms_responses_unit ON forms_responses (form_id, unit_id, created_at, id);
CREATE INDEX forms_responses_citizen ON forms_responses (citizen_id);
CREATE INDEX forms_responses_email ON forms_responses (email);
CREATE VIRTUAL TABLE forms_search USING fts5 (search, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2');

-- Uploaded files live under the data folder with random names; the row ties them to a draft,
-- then to the response.
CREATE TABLE forms_files (
    id          TEXT PRIMARY KEY,
    draft_id    INTEGER,
    response_id INTEGER,
    question    TEXT NOT NULL,
    name        TEXT NOT NULL,
    ctype       TEXT NOT NULL,
    size        INTEGER NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX forms_files_draft ON forms_files (draft_id);
CREATE INDEX forms_files_response ON forms_files (response_id);

-- The thread between the citizen and the agents about a response.
CREATE TABLE forms_messages (
    id          INTEGER PRIMARY KEY,
    response_id INTEGER NOT NULL REFERENCES forms_responses (id) ON DELETE CASCADE,
    from_agent  BOOLEAN NOT NULL,
    author      TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX forms_messages_response ON forms_messages (response_id, id);

-- +goose Down
DROP TABLE forms_messages;
DROP TABLE forms_files;
DROP TABLE forms_search;
DROP TABLE forms_responses;
DROP TABLE forms_drafts;
DROP TABLE forms_versions;
DROP TABLE forms_forms;
