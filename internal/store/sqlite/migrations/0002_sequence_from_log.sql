-- The next sequence number of a conversation is derived from its log
-- (MAX(seq) + 1) and kept in the single writer's memory; the counter
-- column is no longer maintained.
ALTER TABLE conversations DROP COLUMN next_seq;
