-- +goose Up
CREATE TABLE example_greetings (id INTEGER PRIMARY KEY, lang TEXT NOT NULL);
-- +goose Down
DROP TABLE example_greetings;
