-- What a site does with attachment links its clients supply (issue 9):
-- refuse them (the default, also for existing sites) or pass them to the
-- bot marked untrusted.
ALTER TABLE sites ADD COLUMN client_attachment_urls TEXT NOT NULL DEFAULT 'refuse';
