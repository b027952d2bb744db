-- Drop the outbox's index on next_attempt_at. Every round trip inserts an
-- outbox item and deletes it once the bot took it, so the index cost a
-- b-tree insert and delete (two WAL pages, with secure_delete) per round
-- trip. Its only reader, the due-items poll, reads outbox heads in id
-- order with a LIMIT: a scan in rowid order answers it without a sort,
-- and under a backlog the index scanned the same rows (items behind a
-- head are due from their creation).
DROP INDEX IF EXISTS outbox_due;
