-- +goose Up
-- The receipt mail (with its PDF) is made by a job queued in the submission's transaction;
-- receipt_sent_at makes the job's mail go once, whatever the retries.
ALTER TABLE forms_responses ADD COLUMN receipt_sent_at TIMESTAMP;

-- +goose Down
ALTER TABLE forms_responses DROP COLUMN receipt_sent_at;
