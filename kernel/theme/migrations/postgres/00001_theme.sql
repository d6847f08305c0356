-- +goose Up
-- One look per organisation; an organisation without a row uses the default theme.
CREATE TABLE kernel_theme (
    org_id     BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    logo_url   TEXT NOT NULL DEFAULT '',
    primary_colour TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by BIGINT
);

-- +goose Down
DROP TABLE kernel_theme;
