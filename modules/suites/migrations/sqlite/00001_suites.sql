-- +goose Up
-- What each suite created: item key → resource id, with the hash of the item as the suite
-- said it (applied_hash) and of the resource as it stood right after (state_hash).
CREATE TABLE suites_items (
    org_id       INTEGER NOT NULL,
    section      TEXT NOT NULL,
    item_key     TEXT NOT NULL,
    suite        TEXT NOT NULL,
    resource_id  TEXT NOT NULL,
    applied_hash TEXT NOT NULL,
    state_hash   TEXT NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, section, item_key)
);
CREATE TABLE suites_applied (
    org_id     INTEGER NOT NULL,
    name       TEXT NOT NULL,
    version    TEXT NOT NULL,
    title      TEXT NOT NULL,
    document   TEXT NOT NULL,
    applied_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, name)
);
CREATE TABLE suites_uploads (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    document    TEXT NOT NULL,
    uploaded_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, name)
);
-- +goose Down
DROP TABLE suites_uploads;
DROP TABLE suites_applied;
DROP TABLE suites_items;
