-- +goose Up
-- Each saved edit of a workflow is a new version; resources keep the version they started in.
CREATE TABLE workflow_defs (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL,
    key        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    title      TEXT NOT NULL,
    doc        TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, key, version)
);

-- seq counts transitions: a timer or a concurrent action carrying an older seq is stale.
CREATE TABLE workflow_resources (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL,
    rtype         TEXT NOT NULL,
    rid           TEXT NOT NULL,
    wf_key        TEXT NOT NULL,
    wf_version    INTEGER NOT NULL,
    state         TEXT NOT NULL,
    seq           INTEGER NOT NULL DEFAULT 0,
    unit_id       INTEGER NOT NULL DEFAULT 0,
    agent_id      INTEGER NOT NULL DEFAULT 0,
    citizen_id    INTEGER NOT NULL DEFAULT 0,
    citizen_email TEXT NOT NULL DEFAULT '',
    lang          TEXT NOT NULL DEFAULT 'fr',
    title         TEXT NOT NULL DEFAULT '',
    fields        TEXT NOT NULL DEFAULT '{}',
    labels        TEXT NOT NULL DEFAULT '[]',
    archived      BOOLEAN NOT NULL DEFAULT FALSE,
    state_since   TIMESTAMP NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    UNIQUE (rtype, rid)
);
CREATE INDEX workflow_resources_inbox ON workflow_resources (org_id, unit_id, state);
CREATE INDEX workflow_resources_agent ON workflow_resources (org_id, agent_id);

CREATE TABLE workflow_history (
    id          INTEGER PRIMARY KEY,
    resource_id INTEGER NOT NULL REFERENCES workflow_resources (id) ON DELETE CASCADE,
    at          TIMESTAMP NOT NULL,
    kind        TEXT NOT NULL,
    action      TEXT NOT NULL DEFAULT '',
    from_state  TEXT NOT NULL DEFAULT '',
    to_state    TEXT NOT NULL DEFAULT '',
    task        TEXT NOT NULL DEFAULT '',
    actor_id    INTEGER NOT NULL DEFAULT 0,
    actor_name  TEXT NOT NULL DEFAULT '',
    public      BOOLEAN NOT NULL DEFAULT FALSE,
    message     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX workflow_history_resource ON workflow_history (resource_id, id);

-- A delayed action, armed when its resource entered a state (seq); done_at makes it run once.
CREATE TABLE workflow_timers (
    id          INTEGER PRIMARY KEY,
    resource_id INTEGER NOT NULL REFERENCES workflow_resources (id) ON DELETE CASCADE,
    action      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    due_at      TIMESTAMP NOT NULL,
    done_at     TIMESTAMP,
    UNIQUE (resource_id, action, seq)
);
CREATE INDEX workflow_timers_due ON workflow_timers (due_at) WHERE done_at IS NULL;

CREATE TABLE workflow_corrections (
    id           INTEGER PRIMARY KEY,
    resource_id  INTEGER NOT NULL REFERENCES workflow_resources (id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    fields       TEXT NOT NULL,
    message      TEXT NOT NULL DEFAULT '',
    return_state TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    used_at      TIMESTAMP
);

CREATE TABLE workflow_files (
    id           INTEGER PRIMARY KEY,
    resource_id  INTEGER NOT NULL REFERENCES workflow_resources (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL,
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX workflow_files_resource ON workflow_files (resource_id);

-- Outgoing HTTP endpoints of an organisation: webhook subscribers (events, space-separated)
-- and business applications called by tasks (by key). The secret signs requests (HMAC), so
-- it is kept, not hashed.
CREATE TABLE workflow_endpoints (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL,
    key        TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    events     TEXT NOT NULL DEFAULT '',
    active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, key)
);

-- One row per request to send; its body and idempotency key never change across retries.
CREATE TABLE workflow_deliveries (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL,
    endpoint_id   INTEGER NOT NULL REFERENCES workflow_endpoints (id) ON DELETE CASCADE,
    resource_id   INTEGER REFERENCES workflow_resources (id) ON DELETE SET NULL,
    kind          TEXT NOT NULL,
    event         TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    body          TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'pending',
    last_code     INTEGER NOT NULL DEFAULT 0,
    last_response TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    UNIQUE (endpoint_id, idem_key)
);
CREATE INDEX workflow_deliveries_resource ON workflow_deliveries (resource_id);

-- +goose Down
DROP TABLE workflow_deliveries;
DROP TABLE workflow_endpoints;
DROP TABLE workflow_files;
DROP TABLE workflow_corrections;
DROP TABLE workflow_timers;
DROP TABLE workflow_history;
DROP TABLE workflow_resources;
DROP TABLE workflow_defs;
