package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// --- Operators, enrollment codes, console sessions, API tokens (issue 13) ---

const operatorColumns = `id, name, role, bots, sso_subject, password_hash, totp_sealed, totp_confirmed, totp_step,
	enroll_hash, enroll_until, failures, locked_until, disabled, created_at, updated_at`

func botsJSON(bots []string) string {
	if len(bots) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(bots)
	return string(b)
}

func botsFrom(s string) []string {
	var out []string
	_ = json.Unmarshal([]byte(s), &out)
	if len(out) == 0 {
		return nil
	}
	return out
}

func optString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func optBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func zeroNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return nanos(t)
}

func fromZeroNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return fromNanos(n)
}

func scanOperator(sc interface{ Scan(...any) error }) (store.Operator, error) {
	var o store.Operator
	var bots string
	var sso sql.NullString
	var confirmed, disabled int
	var enrollUntil, locked, created, updated int64
	if err := sc.Scan(&o.ID, &o.Name, &o.Role, &bots, &sso, &o.PasswordHash, &o.TOTPSealed, &confirmed, &o.TOTPStep,
		&o.EnrollHash, &enrollUntil, &o.Failures, &locked, &disabled, &created, &updated); err != nil {
		return o, err
	}
	o.Bots, o.SSOSubject = botsFrom(bots), sso.String
	o.TOTPConfirmed, o.Disabled = confirmed != 0, disabled != 0
	o.EnrollUntil, o.LockedUntil = fromZeroNanos(enrollUntil), fromZeroNanos(locked)
	o.CreatedAt, o.UpdatedAt = fromNanos(created), fromNanos(updated)
	return o, nil
}

func insertOperator(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, o store.Operator) error {
	_, err := ex.ExecContext(ctx, `INSERT INTO operators (`+operatorColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 0, 0, ?, ?, ?)`,
		o.ID, o.Name, o.Role, botsJSON(o.Bots), optString(o.SSOSubject), o.PasswordHash, optBytes(o.TOTPSealed), b2i(o.TOTPConfirmed),
		optBytes(o.EnrollHash), zeroNanos(o.EnrollUntil), b2i(o.Disabled), nanos(o.CreatedAt), nanos(o.UpdatedAt))
	if isUnique(err) {
		return fmt.Errorf("create operator %s: %w", o.ID, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create operator %s: %w", o.ID, err)
	}
	return nil
}

func (s *Store) CreateOperator(ctx context.Context, o store.Operator) error {
	return insertOperator(ctx, s.w, o)
}

func (s *Store) operatorWhere(ctx context.Context, what, where string, arg any) (store.Operator, error) {
	o, err := scanOperator(s.r.QueryRowContext(ctx, `SELECT `+operatorColumns+` FROM operators WHERE `+where, arg))
	if err != nil {
		return store.Operator{}, notFound(err, what)
	}
	return o, nil
}

func (s *Store) GetOperator(ctx context.Context, id string) (store.Operator, error) {
	return s.operatorWhere(ctx, "get operator", "id = ?", id)
}

func (s *Store) OperatorByName(ctx context.Context, name string) (store.Operator, error) {
	return s.operatorWhere(ctx, "get operator by name", "name = ?", name)
}

func (s *Store) OperatorBySSOSubject(ctx context.Context, subject string) (store.Operator, error) {
	if subject == "" {
		return store.Operator{}, fmt.Errorf("get operator by SSO subject: %w", store.ErrNotFound)
	}
	return s.operatorWhere(ctx, "get operator by SSO subject", "sso_subject = ?", subject)
}

func (s *Store) OperatorByEnrollHash(ctx context.Context, hash []byte) (store.Operator, error) {
	if len(hash) == 0 {
		return store.Operator{}, fmt.Errorf("get operator by enrollment: %w", store.ErrNotFound)
	}
	return s.operatorWhere(ctx, "get operator by enrollment", "enroll_hash = ?", hash)
}

func (s *Store) ListOperators(ctx context.Context) ([]store.Operator, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+operatorColumns+` FROM operators ORDER BY name COLLATE NOCASE, id`)
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	defer rows.Close()
	var out []store.Operator
	for rows.Next() {
		o, err := scanOperator(rows)
		if err != nil {
			return nil, fmt.Errorf("list operators: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	return out, nil
}

// usableOwners counts the owners that keep the gateway administrable.
const usableOwners = `SELECT COUNT(*) FROM operators WHERE role = 'owner' AND disabled = 0 AND bots = '[]'
	AND (totp_confirmed = 1 OR sso_subject IS NOT NULL)`

// guardOwners runs change in a transaction and refuses it with
// ErrLastOwner when it takes the usable owners from some to none.
func (s *Store) guardOwners(ctx context.Context, what string, change func(tx *sql.Tx) (sql.Result, error)) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = tx.Rollback() }()
	var before, after int
	if err := tx.QueryRowContext(ctx, usableOwners).Scan(&before); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	res, err := change(tx)
	if isUnique(err) {
		return fmt.Errorf("%s: %w", what, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if err := tx.QueryRowContext(ctx, usableOwners).Scan(&after); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if before > 0 && after == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrLastOwner)
	}
	if err := s.storageFailure(tx.Commit()); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (s *Store) UpdateOperator(ctx context.Context, o store.Operator) error {
	return s.guardOwners(ctx, "update operator "+o.ID, func(tx *sql.Tx) (sql.Result, error) {
		return tx.ExecContext(ctx, `UPDATE operators SET name = ?, role = ?, bots = ?, sso_subject = ?, password_hash = ?,
		totp_sealed = ?, totp_confirmed = ?, enroll_hash = ?, enroll_until = ?, disabled = ?, updated_at = ? WHERE id = ?`,
			o.Name, o.Role, botsJSON(o.Bots), optString(o.SSOSubject), o.PasswordHash, optBytes(o.TOTPSealed), b2i(o.TOTPConfirmed),
			optBytes(o.EnrollHash), zeroNanos(o.EnrollUntil), b2i(o.Disabled), nanos(o.UpdatedAt), o.ID)
	})
}

func (s *Store) DeleteOperator(ctx context.Context, id string) error {
	// ON DELETE CASCADE removes recovery codes, sessions and tokens in
	// the same transaction.
	return s.guardOwners(ctx, "delete operator "+id, func(tx *sql.Tx) (sql.Result, error) {
		return tx.ExecContext(ctx, `DELETE FROM operators WHERE id = ?`, id)
	})
}

func (s *Store) AcceptTOTPStep(ctx context.Context, id string, step int64) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE operators SET totp_step = ? WHERE id = ? AND totp_step < ?`, step, id, step)
	if err != nil {
		return false, fmt.Errorf("accept TOTP step: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (s *Store) SetRecoveryCodes(ctx context.Context, id string, hashes [][]byte) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set recovery codes: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM operators WHERE id = ?`, id).Scan(&exists); err != nil {
		return notFound(err, "set recovery codes of "+id)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM operator_recovery_codes WHERE operator_id = ?`, id); err != nil {
		return fmt.Errorf("set recovery codes: %w", err)
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO operator_recovery_codes (operator_id, hash) VALUES (?, ?)`, id, h); err != nil {
			return fmt.Errorf("set recovery codes: %w", err)
		}
	}
	if err := s.storageFailure(tx.Commit()); err != nil {
		return fmt.Errorf("set recovery codes: %w", err)
	}
	return nil
}

func (s *Store) UseRecoveryCode(ctx context.Context, id string, hash []byte) (bool, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM operator_recovery_codes WHERE operator_id = ? AND hash = ?`, id, hash)
	if err != nil {
		return false, fmt.Errorf("use recovery code: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (s *Store) RecoveryCodesLeft(ctx context.Context, id string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM operator_recovery_codes WHERE operator_id = ?`, id).Scan(&n); err != nil {
		return 0, fmt.Errorf("count recovery codes: %w", err)
	}
	return n, nil
}

func (s *Store) LoginFailed(ctx context.Context, id string, now time.Time, max int, lockFor time.Duration) (time.Time, error) {
	// A write through QueryRowContext (RETURNING): writerDB cannot check
	// the file for it, so this does.
	if err := s.checkFile(); err != nil {
		return time.Time{}, fmt.Errorf("count failed sign-in of %s: %w", id, err)
	}
	var locked int64
	err := s.w.QueryRowContext(ctx, `UPDATE operators SET
		locked_until = CASE WHEN failures + 1 >= ? THEN ? ELSE locked_until END,
		failures = CASE WHEN failures + 1 >= ? THEN 0 ELSE failures + 1 END
		WHERE id = ? RETURNING locked_until`, max, nanos(now.Add(lockFor)), max, id).Scan(&locked)
	if err != nil {
		return time.Time{}, notFound(err, "count failed sign-in of "+id)
	}
	if t := fromZeroNanos(locked); t.After(now) {
		return t, nil
	}
	return time.Time{}, nil
}

func (s *Store) LoginSucceeded(ctx context.Context, id string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE operators SET failures = 0, locked_until = 0 WHERE id = ?`, id); err != nil {
		return fmt.Errorf("clear failed sign-ins of %s: %w", id, err)
	}
	return nil
}

// --- enrollment codes ---

func (s *Store) CreateEnrollment(ctx context.Context, e store.Enrollment) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO operator_enrollments (hash, role, bots, bootstrap, created_by, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, e.Hash, e.Role, botsJSON(e.Bots), b2i(e.Bootstrap), e.CreatedBy, nanos(e.CreatedAt), nanos(e.ExpiresAt))
	if isUnique(err) {
		return fmt.Errorf("create enrollment code: %w", store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create enrollment code: %w", err)
	}
	return nil
}

func (s *Store) EnrollOperator(ctx context.Context, codeHash []byte, now time.Time, o store.Operator) (store.Operator, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.Operator{}, fmt.Errorf("enroll operator: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var role, bots string
	err = tx.QueryRowContext(ctx, `DELETE FROM operator_enrollments WHERE hash = ? AND expires_at > ? RETURNING role, bots`,
		codeHash, nanos(now)).Scan(&role, &bots)
	if err != nil {
		return store.Operator{}, notFound(err, "enroll operator: use code")
	}
	o.Role, o.Bots = role, botsFrom(bots)
	if err := insertOperator(ctx, tx, o); err != nil {
		return store.Operator{}, fmt.Errorf("enroll operator: %w", err)
	}
	if err := s.storageFailure(tx.Commit()); err != nil {
		return store.Operator{}, fmt.Errorf("enroll operator: %w", err)
	}
	return o, nil
}

func (s *Store) DeleteBootstrapEnrollments(ctx context.Context) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM operator_enrollments WHERE bootstrap = 1`)
	if err != nil {
		return 0, fmt.Errorf("delete bootstrap codes: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (s *Store) DeleteEnrollmentsBy(ctx context.Context, createdBy string) (int, error) {
	if createdBy == "" {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM operator_enrollments WHERE created_by = ?`, createdBy)
	if err != nil {
		return 0, fmt.Errorf("delete enrollment codes of %s: %w", createdBy, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (s *Store) ListEnrollments(ctx context.Context, now time.Time) ([]store.Enrollment, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT hash, role, bots, bootstrap, created_by, created_at, expires_at
		FROM operator_enrollments WHERE expires_at > ? ORDER BY created_at, hash`, nanos(now))
	if err != nil {
		return nil, fmt.Errorf("list enrollment codes: %w", err)
	}
	defer rows.Close()
	var out []store.Enrollment
	for rows.Next() {
		var e store.Enrollment
		var bots string
		var boot int
		var created, expires int64
		if err := rows.Scan(&e.Hash, &e.Role, &bots, &boot, &e.CreatedBy, &created, &expires); err != nil {
			return nil, fmt.Errorf("list enrollment codes: %w", err)
		}
		e.Bots, e.Bootstrap, e.CreatedAt, e.ExpiresAt = botsFrom(bots), boot == 1, fromNanos(created), fromNanos(expires)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list enrollment codes: %w", err)
	}
	return out, nil
}

func (s *Store) DeleteEnrollment(ctx context.Context, hash []byte) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM operator_enrollments WHERE hash = ?`, hash)
	return affected(res, err, "delete enrollment code")
}

// --- console sessions ---

func (s *Store) CreateAdminSession(ctx context.Context, a store.AdminSession) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO admin_sessions (id_hash, operator_id, created_at, last_seen, expires_at, reauth_at, client)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, a.IDHash, a.OperatorID, nanos(a.CreatedAt), nanos(a.LastSeen), nanos(a.ExpiresAt), zeroNanos(a.ReauthAt), a.Client)
	if isUnique(err) {
		return fmt.Errorf("create session: %w", store.ErrExists)
	}
	if isForeignKey(err) {
		return fmt.Errorf("create session: no such operator: %w", store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

func (s *Store) GetAdminSession(ctx context.Context, idHash []byte) (store.AdminSession, error) {
	var a store.AdminSession
	var created, seen, exp, reauth int64
	err := s.r.QueryRowContext(ctx, `SELECT id_hash, operator_id, created_at, last_seen, expires_at, reauth_at, client FROM admin_sessions WHERE id_hash = ?`,
		idHash).Scan(&a.IDHash, &a.OperatorID, &created, &seen, &exp, &reauth, &a.Client)
	if err != nil {
		return store.AdminSession{}, notFound(err, "get session")
	}
	a.CreatedAt, a.LastSeen, a.ExpiresAt, a.ReauthAt = fromNanos(created), fromNanos(seen), fromNanos(exp), fromZeroNanos(reauth)
	return a, nil
}

func (s *Store) TouchAdminSession(ctx context.Context, idHash []byte, now time.Time) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE admin_sessions SET last_seen = ? WHERE id_hash = ?`, nanos(now), idHash); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

func (s *Store) ReauthAdminSession(ctx context.Context, idHash []byte, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE admin_sessions SET reauth_at = ? WHERE id_hash = ?`, nanos(at), idHash)
	if err != nil {
		return fmt.Errorf("re-authenticate session: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("re-authenticate session: %w", store.ErrNotFound)
	}
	return nil
}

func (s *Store) DeleteAdminSession(ctx context.Context, idHash []byte) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM admin_sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

func (s *Store) DeleteOperatorSessions(ctx context.Context, operatorID string) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM admin_sessions WHERE operator_id = ?`, operatorID)
	if err != nil {
		return 0, fmt.Errorf("delete sessions of %s: %w", operatorID, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (s *Store) PruneAdminSessions(ctx context.Context, before time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM admin_sessions WHERE expires_at < ?`, nanos(before))
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// --- API tokens ---

const apiTokenColumns = `id, hash, prefix, name, role, bots, created_by, created_at, expires_at, revoked_at, last_used_at`

func scanAPIToken(sc interface{ Scan(...any) error }) (store.APIToken, error) {
	var t store.APIToken
	var bots string
	var created, exp, revoked, used int64
	if err := sc.Scan(&t.ID, &t.Hash, &t.Prefix, &t.Name, &t.Role, &bots, &t.CreatedBy, &created, &exp, &revoked, &used); err != nil {
		return t, err
	}
	t.Bots = botsFrom(bots)
	t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.LastUsedAt = fromNanos(created), fromNanos(exp), fromZeroNanos(revoked), fromZeroNanos(used)
	return t, nil
}

func (s *Store) CreateAPIToken(ctx context.Context, t store.APIToken) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO api_tokens (`+apiTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)`,
		t.ID, t.Hash, t.Prefix, t.Name, t.Role, botsJSON(t.Bots), t.CreatedBy, nanos(t.CreatedAt), nanos(t.ExpiresAt))
	if isUnique(err) {
		return fmt.Errorf("create API token: %w", store.ErrExists)
	}
	if err != nil && isForeignKey(err) {
		return fmt.Errorf("create API token: no such operator: %w", store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create API token: %w", err)
	}
	return nil
}

func isForeignKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

func (s *Store) GetAPIToken(ctx context.Context, id string) (store.APIToken, error) {
	t, err := scanAPIToken(s.r.QueryRowContext(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE id = ?`, id))
	if err != nil {
		return store.APIToken{}, notFound(err, "get API token")
	}
	return t, nil
}

func (s *Store) APITokenByHash(ctx context.Context, hash []byte) (store.APIToken, error) {
	t, err := scanAPIToken(s.r.QueryRowContext(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE hash = ?`, hash))
	if err != nil {
		return store.APIToken{}, notFound(err, "get API token")
	}
	return t, nil
}

func (s *Store) ListAPITokens(ctx context.Context, createdBy string) ([]store.APIToken, error) {
	q, args := `SELECT `+apiTokenColumns+` FROM api_tokens ORDER BY created_at, id`, []any{}
	if createdBy != "" {
		q, args = `SELECT `+apiTokenColumns+` FROM api_tokens WHERE created_by = ? ORDER BY created_at, id`, []any{createdBy}
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	defer rows.Close()
	var out []store.APIToken
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list API tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	return out, nil
}

func (s *Store) RevokeAPIToken(ctx context.Context, id string, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id = ?`, nanos(now), id)
	if err != nil {
		return fmt.Errorf("revoke API token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke API token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (s *Store) TouchAPIToken(ctx context.Context, id string, now time.Time) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, nanos(now), id); err != nil {
		return fmt.Errorf("touch API token: %w", err)
	}
	return nil
}
