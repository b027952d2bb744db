-- The log as a rowid table with a small (conversation_id, seq) index,
-- instead of a WITHOUT ROWID table clustered on that key. Clustered,
-- every append went into the middle of the b-tree (its conversation's
-- range), and with bodies of about 600 bytes a leaf holds a handful of
-- rows: appends of concurrent conversations kept splitting and
-- rebalancing leaves, about 6.7 WAL pages per round trip of the 7.7 in
-- all. With rowids, appends of every conversation go to the table's last
-- leaf (one page shared by a commit's appends), and only the index entry
-- (about 40 bytes) goes into the conversation's range. Every query
-- names (conversation_id, seq) and is answered by the index.
-- The upgrade copies the log once (time and free space in proportion to
-- its size), in one transaction like every migration.
CREATE TABLE activities_rowid (
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    visibility      INTEGER NOT NULL,
    body            BLOB NOT NULL,
    created_at      INTEGER NOT NULL
);
INSERT INTO activities_rowid (conversation_id, seq, visibility, body, created_at)
    SELECT conversation_id, seq, visibility, body, created_at FROM activities ORDER BY created_at, conversation_id, seq;
DROP TABLE activities;
ALTER TABLE activities_rowid RENAME TO activities;
CREATE UNIQUE INDEX activities_log ON activities(conversation_id, seq);
