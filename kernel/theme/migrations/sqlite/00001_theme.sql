-- +goose Up
-- One look per organisation; an organisation without a row uses the default theme.
CREATE TABLE kernel_theme (
    org_id     INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    logo_url   TEXT NOT NULL DEFAULT '',
    primary_colour TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by INTEGER
);

-- +goose Down
DROP TABLE kernel_theme;
