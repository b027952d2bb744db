CREATE TABLE bots (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    endpoint         TEXT NOT NULL,
    insecure_no_auth INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);

CREATE TABLE sites (
    id              TEXT PRIMARY KEY,
    bot_id          TEXT NOT NULL REFERENCES bots(id),
    name            TEXT NOT NULL,
    enhanced_auth   INTEGER NOT NULL,
    trusted_origins TEXT NOT NULL,
    secret1         BLOB,
    secret2         BLOB,
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX sites_secret1 ON sites(secret1) WHERE secret1 IS NOT NULL;
CREATE UNIQUE INDEX sites_secret2 ON sites(secret2) WHERE secret2 IS NOT NULL;

CREATE TABLE conversations (
    id         TEXT PRIMARY KEY,
    bot_id     TEXT NOT NULL REFERENCES bots(id),
    site_id    TEXT NOT NULL REFERENCES sites(id),
    user_id    TEXT NOT NULL,
    next_seq   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE activities (
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    visibility      INTEGER NOT NULL,
    body            BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    bot_id          TEXT NOT NULL,
    activity_id     TEXT NOT NULL,
    body            BLOB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox(next_attempt_at);
CREATE INDEX outbox_conversation ON outbox(conversation_id, id);

CREATE TABLE attachments (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    name            TEXT NOT NULL,
    data            BLOB NOT NULL,
    created_at      INTEGER NOT NULL
);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    expires_at      INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
