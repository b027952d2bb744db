-- Operators' WebAuthn passkeys (issue 13). No secret here: the credential
-- public key (COSE), the authenticator's signature counter and facts
-- about the authenticator. Removing an operator removes its passkeys.
CREATE TABLE operator_webauthn (
    id                 TEXT PRIMARY KEY,
    operator_id        TEXT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
    credential_id      BLOB NOT NULL UNIQUE,
    public_key         BLOB NOT NULL,
    sign_count         INTEGER NOT NULL DEFAULT 0,
    aaguid             BLOB,
    transports         TEXT NOT NULL DEFAULT '[]',
    attestation_format TEXT NOT NULL DEFAULT '',
    backup_eligible    INTEGER NOT NULL DEFAULT 0,
    backup_state       INTEGER NOT NULL DEFAULT 0,
    name               TEXT NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX operator_webauthn_operator ON operator_webauthn (operator_id, created_at);
