-- +goose Up
CREATE TABLE mail_messages (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL DEFAULT 0,
    template TEXT NOT NULL,
    lang TEXT NOT NULL,
    recipients TEXT NOT NULL, -- JSON array of addresses
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued', -- queued, sent, outbox, failed
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX mail_messages_org ON mail_messages (org_id, id);
CREATE TABLE mail_attachments (
    id INTEGER PRIMARY KEY,
    mail_id INTEGER NOT NULL REFERENCES mail_messages (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX mail_attachments_mail ON mail_attachments (mail_id);

-- +goose Down
DROP TABLE mail_attachments;
DROP TABLE mail_messages;
