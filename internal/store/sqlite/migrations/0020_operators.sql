-- Operator identity (issue 13): operators, their recovery codes,
-- enrollment codes, console sessions and API tokens. No secret is stored
-- in the clear: password_hash is an argon2id PHC string, totp_sealed is
-- sealed by the keyring envelope (scope "operators"), every code, session
-- id and token is a SHA-256 hash.
CREATE TABLE operators (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role           TEXT NOT NULL,
    bots           TEXT NOT NULL DEFAULT '[]',
    sso_subject    TEXT,
    password_hash  TEXT NOT NULL DEFAULT '',
    totp_sealed    BLOB,
    totp_confirmed INTEGER NOT NULL DEFAULT 0,
    totp_step      INTEGER NOT NULL DEFAULT 0,
    enroll_hash    BLOB,
    enroll_until   INTEGER NOT NULL DEFAULT 0,
    failures       INTEGER NOT NULL DEFAULT 0,
    locked_until   INTEGER NOT NULL DEFAULT 0,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX operators_sso ON operators (sso_subject) WHERE sso_subject IS NOT NULL;
CREATE UNIQUE INDEX operators_enroll ON operators (enroll_hash) WHERE enroll_hash IS NOT NULL;

CREATE TABLE operator_recovery_codes (
    operator_id TEXT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    hash        BLOB NOT NULL,
    PRIMARY KEY (operator_id, hash)
);

CREATE TABLE operator_enrollments (
    hash       BLOB PRIMARY KEY,
    role       TEXT NOT NULL,
    bots       TEXT NOT NULL DEFAULT '[]',
    bootstrap  INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE admin_sessions (
    id_hash     BLOB PRIMARY KEY,
    operator_id TEXT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    reauth_at   INTEGER NOT NULL DEFAULT 0,
    client      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX admin_sessions_operator ON admin_sessions (operator_id);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    hash         BLOB NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    bots         TEXT NOT NULL DEFAULT '[]',
    created_by   TEXT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_created_by ON api_tokens (created_by, created_at);
