-- OAuth connections per bot and the user tokens obtained through them
-- (issue 12). client_secret and user_tokens.sealed are sealed by the
-- token service under the bot's data key (scope "bot:" + bot id); the
-- store never sees them in the clear.
CREATE TABLE oauth_connections (
    bot_id        TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    issuer        TEXT NOT NULL DEFAULT '',
    auth_url      TEXT NOT NULL DEFAULT '',
    token_url     TEXT NOT NULL DEFAULT '',
    tenant        TEXT NOT NULL DEFAULT '',
    client_id     TEXT NOT NULL,
    client_secret BLOB NOT NULL,
    scopes        TEXT NOT NULL DEFAULT '',
    max_login     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (bot_id, name)
);

CREATE TABLE user_tokens (
    bot_id       TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    connection   TEXT NOT NULL,
    sealed       BLOB NOT NULL,
    signed_in_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (bot_id, user_id, connection),
    FOREIGN KEY (bot_id, connection) REFERENCES oauth_connections(bot_id, name) ON DELETE CASCADE
);
CREATE INDEX user_tokens_user ON user_tokens (user_id);
