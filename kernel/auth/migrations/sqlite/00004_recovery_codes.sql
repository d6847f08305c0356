-- +goose Up
-- One-time recovery codes for an agent's second factor (recovery.go): only their SHA-256 is
-- kept; used_at is set when one signs the agent in.
CREATE TABLE auth_recovery_codes (
    id        INTEGER PRIMARY KEY,
    agent_id  INTEGER NOT NULL REFERENCES auth_agents (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   TIMESTAMP
);
CREATE UNIQUE INDEX auth_recovery_codes_agent ON auth_recovery_codes (agent_id, code_hash);

-- +goose Down
DROP TABLE auth_recovery_codes;
