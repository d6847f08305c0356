-- +goose Up
-- Failed sign-ins and password-reset requests, counted per scope ("account:EMAIL",
-- "ip:ADDRESS", "reset:EMAIL") by store.Attempts, as the citizens' attempts are: the same
-- table shape and code for both. The failures of the last day come along.
CREATE TABLE auth_attempts (
    id    INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    at    TIMESTAMP NOT NULL
);
CREATE INDEX auth_attempts_scope ON auth_attempts (scope, at);
INSERT INTO auth_attempts (scope, at) SELECT kind || ':' || key, at FROM auth_login_failures;
DROP TABLE auth_login_failures;

-- +goose Down
CREATE TABLE auth_login_failures (
    id   INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    at   TIMESTAMP NOT NULL
);
CREATE INDEX auth_login_failures_key ON auth_login_failures (kind, key, at);
DROP TABLE auth_attempts;
