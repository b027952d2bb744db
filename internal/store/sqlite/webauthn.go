package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// --- Operators' WebAuthn passkeys (issue 13) ---

const webauthnColumns = `id, operator_id, credential_id, public_key, sign_count, aaguid, transports, attestation_format,
	backup_eligible, backup_state, name, created_at, last_used_at`

func scanWebAuthn(sc interface{ Scan(...any) error }) (store.WebAuthnCredential, error) {
	var c store.WebAuthnCredential
	var transports string
	var count, created, used int64
	var be, bs int
	if err := sc.Scan(&c.ID, &c.OperatorID, &c.CredentialID, &c.PublicKey, &count, &c.AAGUID, &transports, &c.AttestationFormat,
		&be, &bs, &c.Name, &created, &used); err != nil {
		return c, err
	}
	_ = json.Unmarshal([]byte(transports), &c.Transports)
	c.SignCount = uint32(count)
	c.BackupEligible, c.BackupState = be != 0, bs != 0
	c.CreatedAt, c.LastUsedAt = fromNanos(created), fromZeroNanos(used)
	return c, nil
}

func (s *Store) AddWebAuthnCredential(ctx context.Context, c store.WebAuthnCredential) error {
	tr := "[]"
	if len(c.Transports) > 0 {
		b, _ := json.Marshal(c.Transports)
		tr = string(b)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO operator_webauthn (`+webauthnColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.OperatorID, c.CredentialID, c.PublicKey, int64(c.SignCount), optBytes(c.AAGUID), tr, c.AttestationFormat,
		b2i(c.BackupEligible), b2i(c.BackupState), c.Name, nanos(c.CreatedAt), zeroNanos(c.LastUsedAt))
	switch {
	case isUnique(err):
		return fmt.Errorf("add passkey %s: %w", c.ID, store.ErrExists)
	case isForeignKey(err):
		return fmt.Errorf("add passkey %s: operator %s: %w", c.ID, c.OperatorID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("add passkey %s: %w", c.ID, err)
	}
	return nil
}

func (s *Store) ListWebAuthnCredentials(ctx context.Context, operatorID string) ([]store.WebAuthnCredential, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+webauthnColumns+` FROM operator_webauthn WHERE operator_id = ? ORDER BY created_at, id`, operatorID)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	defer rows.Close()
	out := []store.WebAuthnCredential{}
	for rows.Next() {
		c, err := scanWebAuthn(rows)
		if err != nil {
			return nil, fmt.Errorf("list passkeys: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	return out, nil
}

func (s *Store) WebAuthnCredentialByCredentialID(ctx context.Context, credentialID []byte) (store.WebAuthnCredential, error) {
	c, err := scanWebAuthn(s.r.QueryRowContext(ctx, `SELECT `+webauthnColumns+` FROM operator_webauthn WHERE credential_id = ?`, credentialID))
	if err != nil {
		return store.WebAuthnCredential{}, notFound(err, "get passkey by credential id")
	}
	return c, nil
}

func (s *Store) UseWebAuthnCredential(ctx context.Context, operatorID, id string, signCount uint32, now time.Time) (bool, error) {
	n := int64(signCount)
	res, err := s.w.ExecContext(ctx, `UPDATE operator_webauthn SET sign_count = ?, last_used_at = ?
		WHERE id = ? AND operator_id = ? AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`, n, nanos(now), id, operatorID, n, n)
	if err != nil {
		return false, fmt.Errorf("use passkey: %w", err)
	}
	k, _ := res.RowsAffected()
	return k == 1, nil
}

func (s *Store) DeleteWebAuthnCredential(ctx context.Context, operatorID, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM operator_webauthn WHERE id = ? AND operator_id = ?`, id, operatorID)
	if err != nil {
		return fmt.Errorf("delete passkey %s: %w", id, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("delete passkey %s: %w", id, store.ErrNotFound)
	}
	return nil
}
