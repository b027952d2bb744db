-- Retention (issue 10): a policy per site, the time of each conversation's
-- last activity (kept by every append) and whether its log holds an
-- endOfConversation, so that the sweeper finds what to delete by index
-- without reading any activity.
ALTER TABLE sites ADD COLUMN retention_mode TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN retention_after INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN last_activity_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN ended_at INTEGER;
-- Existing conversations count from the upgrade: earlier versions kept
-- everything, and an upgrade must not delete a deployment's history at its
-- first sweep; each gets one full retention period from now.
UPDATE conversations SET last_activity_at = MAX(created_at,
    COALESCE((SELECT MAX(a.created_at) FROM activities a WHERE a.conversation_id = conversations.id), 0),
    CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
CREATE INDEX conversations_idle ON conversations(site_id, last_activity_at);
CREATE INDEX conversations_ended ON conversations(site_id, ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX conversations_user ON conversations(user_id) WHERE user_id <> '';
-- Content rows found by conversation when a conversation is deleted.
CREATE INDEX attachments_conversation ON attachments(conversation_id);
CREATE INDEX sessions_conversation ON sessions(conversation_id);
CREATE INDEX dead_letters_conversation ON dead_letters(conversation_id);
-- Ids of deleted conversations: a token minted before the deletion cannot
-- start the conversation again. Pruned after retention.tombstones_for.
CREATE TABLE conversation_tombstones (
    id         TEXT PRIMARY KEY,
    deleted_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX conversation_tombstones_at ON conversation_tombstones(deleted_at);
