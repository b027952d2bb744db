-- What a site masks in its users' activities before they are stored and
-- forwarded (issue 10, item 7): off (the default, also for existing
-- sites), cards, or all-pii.
ALTER TABLE sites ADD COLUMN masking TEXT NOT NULL DEFAULT 'off';
