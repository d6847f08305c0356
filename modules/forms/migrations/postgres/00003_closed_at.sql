-- +goose Up
-- closed_at: when the request reached a final state of its workflow (NULL while it is open);
-- retention counts its months from there for a form that stays open.
ALTER TABLE forms_responses ADD COLUMN closed_at TIMESTAMPTZ;
CREATE INDEX forms_responses_closed ON forms_responses (form_id, closed_at);

-- +goose Down
DROP INDEX forms_responses_closed;
ALTER TABLE forms_responses DROP COLUMN closed_at;
