-- Threat detection (issue 11, item 11): authentication failures counted
-- per minute by site, client pseudonym (a keyed HMAC of the address, never
-- the address), user-agent family, status and reason; and the alerts
-- fired, so that each rule fires once per key and window across replicas.
CREATE TABLE auth_failures (
  minute     INTEGER NOT NULL,
  site       TEXT NOT NULL,
  client     TEXT NOT NULL,
  user_agent TEXT NOT NULL,
  status     INTEGER NOT NULL,
  reason     TEXT NOT NULL,
  count      INTEGER NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL,
  PRIMARY KEY (minute, site, client, user_agent, status, reason)
) WITHOUT ROWID;

CREATE TABLE security_alerts (
  rule     TEXT NOT NULL,
  key      TEXT NOT NULL,
  fired_at INTEGER NOT NULL,
  PRIMARY KEY (rule, key)
) WITHOUT ROWID;
