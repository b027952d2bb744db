-- Bot Connector authentication: two client-secret slots per bot (hashes
-- only) and a lifecycle for signing keys (published ahead of use, retired
-- keys published for a while, then removed).
ALTER TABLE bots ADD COLUMN secret1 BLOB;
ALTER TABLE bots ADD COLUMN secret2 BLOB;
ALTER TABLE signing_keys ADD COLUMN activated_at INTEGER;
ALTER TABLE signing_keys ADD COLUMN retired_at INTEGER;
-- Keys that existed before sign from their creation.
UPDATE signing_keys SET activated_at = created_at;
