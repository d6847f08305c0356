-- +goose Up
-- The responses list ordered by last change (state, correction), newest first.
CREATE INDEX forms_responses_changed ON forms_responses (form_id, updated_at, id);

-- +goose Down
DROP INDEX forms_responses_changed;
