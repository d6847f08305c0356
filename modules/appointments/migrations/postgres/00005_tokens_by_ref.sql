-- +goose Up
-- Capability tokens (hold, cancel, manage) now start with the appointment's reference
-- ("ABCDE-FGHJK.<secret>"): they are found through the reference's unique index and their
-- stored hash compared, so a booking no longer writes three indexes of random hashes (a
-- random page each, the largest share of a booking's writes on SQLite). Tokens mailed
-- before this migration have no reference: the rows they belong to are marked
-- legacy_tokens = 1 and stay findable by hash through partial indexes that new rows never
-- enter.
ALTER TABLE appt_appointments ADD COLUMN legacy_tokens INTEGER NOT NULL DEFAULT 1;
DROP INDEX appt_appointments_cancel;
DROP INDEX appt_appointments_manage;
DROP INDEX appt_appointments_hold;
CREATE INDEX appt_appointments_cancel_legacy ON appt_appointments (cancel_hash) WHERE legacy_tokens = 1;
CREATE INDEX appt_appointments_manage_legacy ON appt_appointments (manage_hash) WHERE legacy_tokens = 1;
CREATE INDEX appt_appointments_hold_legacy ON appt_appointments (hold_hash) WHERE legacy_tokens = 1;

-- +goose Down
DROP INDEX appt_appointments_cancel_legacy;
DROP INDEX appt_appointments_manage_legacy;
DROP INDEX appt_appointments_hold_legacy;
CREATE INDEX appt_appointments_cancel ON appt_appointments (cancel_hash);
CREATE INDEX appt_appointments_manage ON appt_appointments (manage_hash);
CREATE INDEX appt_appointments_hold ON appt_appointments (hold_hash);
ALTER TABLE appt_appointments DROP COLUMN legacy_tokens;
