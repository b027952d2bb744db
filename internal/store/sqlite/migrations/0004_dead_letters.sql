-- Outbox dead letters: items the bot refused for good or that were not
-- delivered within bots.delivery_retry_for. They keep their body (readable,
-- redeliverable with 'parley deliveries dead redeliver') and why they died.
-- The id is the outbox id, kept on redelivery so order per conversation holds.
ALTER TABLE outbox ADD COLUMN first_attempt_at INTEGER;
CREATE TABLE dead_letters (
    id               INTEGER PRIMARY KEY,
    conversation_id  TEXT NOT NULL,
    bot_id           TEXT NOT NULL,
    activity_id      TEXT NOT NULL,
    body             BLOB NOT NULL,
    attempts         INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    first_attempt_at INTEGER,
    last_attempt_at  INTEGER NOT NULL,
    last_status      INTEGER NOT NULL,
    last_error       TEXT NOT NULL,
    dead_at          INTEGER NOT NULL
);
CREATE INDEX dead_letters_bot ON dead_letters(bot_id, id);
