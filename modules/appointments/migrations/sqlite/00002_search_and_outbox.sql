-- +goose Up
-- Slot bounds as Unix seconds (UTC): the free-slot searches compare and return integers
-- instead of parsing a timestamp text per row.
ALTER TABLE appt_slots ADD COLUMN start_s INTEGER NOT NULL DEFAULT 0;
ALTER TABLE appt_slots ADD COLUMN end_s INTEGER NOT NULL DEFAULT 0;
UPDATE appt_slots SET start_s = CAST(strftime('%s', substr(starts_at, 1, 19)) AS INTEGER),
    end_s = CAST(strftime('%s', substr(ends_at, 1, 19)) AS INTEGER);
CREATE INDEX appt_slots_start ON appt_slots (place_id, service_id, start_s);
-- Set once what follows a cancellation is done (mail, ANTS, waiting list): a retried job
-- does it no second time.
ALTER TABLE appt_appointments ADD COLUMN cancel_notified_at TIMESTAMP;

-- +goose Down
ALTER TABLE appt_appointments DROP COLUMN cancel_notified_at;
DROP INDEX appt_slots_start;
ALTER TABLE appt_slots DROP COLUMN end_s;
ALTER TABLE appt_slots DROP COLUMN start_s;
