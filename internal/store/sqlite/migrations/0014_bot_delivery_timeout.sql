-- A bot's per-attempt delivery timeout in milliseconds (issue 14, item 3):
-- 0, the default also for existing bots, means the gateway's default.
ALTER TABLE bots ADD COLUMN delivery_timeout_ms INTEGER NOT NULL DEFAULT 0;
