-- One key lifecycle for every purpose: Direct Line token keys made before
-- it were never marked active (the newest one signed, all verified). They
-- sign from their creation, as the channel and sts keys did in 0003, so
-- the newest keeps signing and tokens it signed stay valid.
UPDATE signing_keys SET activated_at = created_at WHERE purpose = 'directline-token' AND activated_at IS NULL;
