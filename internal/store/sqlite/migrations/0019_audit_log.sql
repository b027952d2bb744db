-- The tamper-evident audit log (issue 13, item 4). audit_entries is a hash
-- chain: each row's hash covers its seq, time, event fields and the
-- previous row's hash, and mac authenticates that hash under the
-- audit-checkpoint key key_id (internal/audit computes both; the store
-- keeps them opaque). audit_checkpoints are signed (seq, hash) heads of the chain.
-- Both are append-only: the store has no method that updates or deletes
-- them, and these triggers refuse it at the SQL level too. They are a cheap
-- extra layer, not the protection: whoever can write the file can drop
-- them; the chain, the signed checkpoints and the external anchor are what
-- detect that. Entries hold no message text and no raw user id or client
-- address (pseudonyms only), so erasure never needs to touch them.
CREATE TABLE audit_entries (
  seq     INTEGER PRIMARY KEY,
  time    INTEGER NOT NULL,
  actor   TEXT NOT NULL,
  role    TEXT NOT NULL,
  action  TEXT NOT NULL,
  target  TEXT NOT NULL,
  outcome TEXT NOT NULL,
  client  TEXT NOT NULL,
  detail  TEXT NOT NULL,
  prev    BLOB NOT NULL,
  hash    BLOB NOT NULL,
  key_id  TEXT NOT NULL,
  mac     BLOB NOT NULL
);

CREATE TABLE audit_checkpoints (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  seq        INTEGER NOT NULL,
  hash       BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  key_id     TEXT NOT NULL,
  signature  BLOB NOT NULL
);

CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'parley: the audit log is append-only'); END;

CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'parley: the audit log is append-only'); END;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'parley: audit checkpoints are append-only'); END;

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'parley: audit checkpoints are append-only'); END;
