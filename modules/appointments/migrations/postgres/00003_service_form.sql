-- +goose Up
-- A service may ask the questions of a published form of the forms module (its key) in
-- place of its inline list; '' keeps the inline list.
ALTER TABLE appt_services ADD COLUMN form_key TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE appt_services DROP COLUMN form_key;
