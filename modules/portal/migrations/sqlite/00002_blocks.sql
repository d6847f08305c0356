-- +goose Up
-- Shared blocks: a portlet written once on a site and shown on pages of other sites.
CREATE TABLE portal_blocks (
    id         INTEGER PRIMARY KEY,
    site_id    INTEGER NOT NULL REFERENCES portal_sites(id) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    title      TEXT NOT NULL,
    config     TEXT NOT NULL DEFAULT '{}',
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE portal_block_sites (
    block_id INTEGER NOT NULL REFERENCES portal_blocks(id) ON DELETE CASCADE,
    site_id  INTEGER NOT NULL REFERENCES portal_sites(id) ON DELETE CASCADE,
    PRIMARY KEY (block_id, site_id)
);

CREATE INDEX portal_block_sites_site ON portal_block_sites (site_id);

-- +goose Down
DROP TABLE portal_block_sites;
DROP TABLE portal_blocks;
