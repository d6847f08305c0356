-- +goose Up
CREATE TABLE portal_sites (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL DEFAULT 0,
    unit_id     INTEGER NOT NULL DEFAULT 0,
    name        TEXT NOT NULL,
    host        TEXT NOT NULL DEFAULT '',
    prefix      TEXT NOT NULL DEFAULT '',
    lang        TEXT NOT NULL DEFAULT 'fr',
    theme       TEXT NOT NULL DEFAULT '{}',
    contact     TEXT NOT NULL DEFAULT '{}',
    legal       TEXT NOT NULL DEFAULT '',
    generation  INTEGER NOT NULL DEFAULT 1,
    created_at  TIMESTAMP NOT NULL,
    UNIQUE (host, prefix)
);

CREATE TABLE portal_pages (
    id                INTEGER PRIMARY KEY,
    site_id           INTEGER NOT NULL REFERENCES portal_sites(id) ON DELETE CASCADE,
    parent_id         INTEGER NOT NULL DEFAULT 0,
    slug              TEXT NOT NULL,
    position          INTEGER NOT NULL DEFAULT 0,
    visibility        TEXT NOT NULL DEFAULT 'public',
    in_menu           BOOLEAN NOT NULL DEFAULT TRUE,
    draft_version     INTEGER NOT NULL DEFAULT 0,
    published_version INTEGER NOT NULL DEFAULT 0,
    scheduled_version INTEGER NOT NULL DEFAULT 0,
    publish_at        TIMESTAMP,
    unpublish_at      TIMESTAMP,
    updated_at        TIMESTAMP NOT NULL,
    UNIQUE (site_id, parent_id, slug)
);

CREATE TABLE portal_page_versions (
    page_id      INTEGER NOT NULL REFERENCES portal_pages(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    title        TEXT NOT NULL,
    seo_title    TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL DEFAULT '',
    social_image TEXT NOT NULL DEFAULT '',
    layout       TEXT NOT NULL DEFAULT 'one',
    content      TEXT NOT NULL DEFAULT '[]',
    created_at   TIMESTAMP NOT NULL,
    created_by   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (page_id, version)
);

CREATE TABLE portal_menu_links (
    id        INTEGER PRIMARY KEY,
    site_id   INTEGER NOT NULL REFERENCES portal_sites(id) ON DELETE CASCADE,
    menu      TEXT NOT NULL,
    title     TEXT NOT NULL,
    url       TEXT NOT NULL DEFAULT '',
    page_id   INTEGER NOT NULL DEFAULT 0,
    position  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE portal_news (
    id           INTEGER PRIMARY KEY,
    site_id      INTEGER NOT NULL REFERENCES portal_sites(id) ON DELETE CASCADE,
    slug         TEXT NOT NULL,
    title        TEXT NOT NULL,
    summary      TEXT NOT NULL DEFAULT '',
    body         TEXT NOT NULL DEFAULT '',
    image_id     INTEGER NOT NULL DEFAULT 0,
    tags         TEXT NOT NULL DEFAULT '',
    published    BOOLEAN NOT NULL DEFAULT FALSE,
    published_at TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    UNIQUE (site_id, slug)
);

CREATE TABLE portal_news_sites (
    news_id INTEGER NOT NULL REFERENCES portal_news(id) ON DELETE CASCADE,
    site_id INTEGER NOT NULL REFERENCES portal_sites(id) ON DELETE CASCADE,
    PRIMARY KEY (news_id, site_id)
);

CREATE TABLE portal_media (
    id         INTEGER PRIMARY KEY,
    site_id    INTEGER NOT NULL REFERENCES portal_sites(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    title      TEXT NOT NULL,
    mime       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    width      INTEGER NOT NULL DEFAULT 0,
    height     INTEGER NOT NULL DEFAULT 0,
    variants   TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);

CREATE VIRTUAL TABLE portal_search USING fts5(
    site_id UNINDEXED, kind UNINDEXED, ref UNINDEXED, url UNINDEXED, title, body,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- +goose Down
DROP TABLE portal_search;
DROP TABLE portal_media;
DROP TABLE portal_news_sites;
DROP TABLE portal_news;
DROP TABLE portal_menu_links;
DROP TABLE portal_page_versions;
DROP TABLE portal_pages;
DROP TABLE portal_sites;
