-- +goose Up
CREATE TABLE fake_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
-- +goose Down
DROP TABLE fake_items;
