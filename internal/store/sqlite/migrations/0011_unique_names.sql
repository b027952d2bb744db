-- Bot names, and site names within a bot, are unique, compared
-- case-insensitively (issue 11, item 2). Enforced by triggers rather than a
-- unique index so that this migration never fails on a database that
-- already holds duplicates: those rows stay as they are (and can still be
-- updated without renaming); only a new row, or a rename, that would
-- duplicate a name is refused. SQLite's lower() folds ASCII letters only;
-- the CLI also compares with full Unicode case folding before it writes.
-- Empty names (only written by internal callers) are not compared.
CREATE TRIGGER bots_name_unique_insert BEFORE INSERT ON bots
WHEN NEW.name <> '' AND EXISTS (SELECT 1 FROM bots WHERE lower(name) = lower(NEW.name) AND id <> NEW.id)
BEGIN SELECT RAISE(ABORT, 'parley: duplicate bot name'); END;

CREATE TRIGGER bots_name_unique_update BEFORE UPDATE OF name ON bots
WHEN NEW.name <> '' AND lower(NEW.name) <> lower(OLD.name) AND EXISTS (SELECT 1 FROM bots WHERE lower(name) = lower(NEW.name) AND id <> NEW.id)
BEGIN SELECT RAISE(ABORT, 'parley: duplicate bot name'); END;

CREATE TRIGGER sites_name_unique_insert BEFORE INSERT ON sites
WHEN NEW.name <> '' AND EXISTS (SELECT 1 FROM sites WHERE bot_id = NEW.bot_id AND lower(name) = lower(NEW.name) AND id <> NEW.id)
BEGIN SELECT RAISE(ABORT, 'parley: duplicate site name'); END;

CREATE TRIGGER sites_name_unique_update BEFORE UPDATE OF name, bot_id ON sites
WHEN NEW.name <> '' AND (lower(NEW.name) <> lower(OLD.name) OR NEW.bot_id <> OLD.bot_id) AND EXISTS (SELECT 1 FROM sites WHERE bot_id = NEW.bot_id AND lower(name) = lower(NEW.name) AND id <> NEW.id)
BEGIN SELECT RAISE(ABORT, 'parley: duplicate site name'); END;
