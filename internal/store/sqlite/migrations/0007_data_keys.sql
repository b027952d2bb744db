-- Envelope encryption: one data key per scope (a conversation, a bot),
-- wrapped by a key-encryption key (a signing_keys row of purpose "kek").
-- Deleting the row crypto-shreds what was sealed under it.
CREATE TABLE data_keys (
    scope      TEXT PRIMARY KEY,
    kek_id     TEXT NOT NULL,
    wrapped    BLOB NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX data_keys_kek ON data_keys(kek_id, scope);
-- Keys are destroyed only on request; a destroyed key keeps its row.
ALTER TABLE signing_keys ADD COLUMN destroyed_at INTEGER;
-- Content written before encryption at rest is sealed once, at the next
-- start (the server does it: the store has no keys). The marker says
-- there may be some.
CREATE TABLE legacy_plain (pending INTEGER NOT NULL);
INSERT INTO legacy_plain (pending)
    SELECT 1 WHERE EXISTS (SELECT 1 FROM activities) OR EXISTS (SELECT 1 FROM outbox)
        OR EXISTS (SELECT 1 FROM dead_letters) OR EXISTS (SELECT 1 FROM attachments);
