-- +goose Up
-- The last 30-second step whose TOTP code signed the agent in: a code is accepted once.
ALTER TABLE auth_agents ADD COLUMN totp_step BIGINT NOT NULL DEFAULT 0;
-- +goose Down
ALTER TABLE auth_agents DROP COLUMN totp_step;
