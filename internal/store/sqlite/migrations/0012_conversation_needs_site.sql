-- A conversation can only start on a site that exists (issue 11, item 1:
-- deleting a site or a bot). A running server trusts its cached site for a
-- few seconds after another process deleted it; a token of that site then
-- reaches CreateConversation, and instead of failing the foreign key (an
-- internal error) the insert is skipped, which CreateConversation answers
-- as for a deleted conversation: not found.
CREATE TRIGGER conversations_need_site BEFORE INSERT ON conversations
WHEN NOT EXISTS (SELECT 1 FROM sites WHERE id = NEW.site_id)
BEGIN SELECT RAISE(IGNORE); END;
