package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// This file holds the key tables' lifecycle beyond rotation: destroying a
// key and the wrapped data keys of envelope encryption.

func (s *Store) DestroyKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE signing_keys SET sealed = x'', destroyed_at = COALESCE(destroyed_at, ?) WHERE kid = ?`, nanos(at), id)
	if err != nil {
		return fmt.Errorf("destroy key %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("destroy key %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (s *Store) PutDataKey(ctx context.Context, k store.DataKey) error {
	// A conversation's key only while the conversation exists (not after
	// its deletion: a racing append must not leave an orphan key).
	res, err := s.w.ExecContext(ctx, `INSERT INTO data_keys (scope, kek_id, wrapped, created_at)
		SELECT ?, ?, ?, ? WHERE (substr(?, 1, 5) != 'conv:' OR EXISTS (SELECT 1 FROM conversations WHERE id = substr(?, 6)))
		AND NOT EXISTS (`+qKEKRetired+`)`,
		k.Scope, k.KEKID, k.Wrapped, nanos(k.CreatedAt), k.Scope, k.Scope, k.KEKID)
	if isUnique(err) {
		return fmt.Errorf("put data key %s: %w", k.Scope, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("put data key %s: %w", k.Scope, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if s.kekRetired(ctx, k.KEKID) {
			return fmt.Errorf("put data key %s under %s: %w", k.Scope, k.KEKID, store.ErrKEKRetired)
		}
		return fmt.Errorf("put data key %s: no such conversation: %w", k.Scope, store.ErrNotFound)
	}
	return nil
}

// qKEKRetired selects a row when the key-encryption key (one argument)
// is retired or destroyed.
const qKEKRetired = `SELECT 1 FROM signing_keys WHERE kid = ? AND (retired_at IS NOT NULL OR destroyed_at IS NOT NULL)`

func (s *Store) kekRetired(ctx context.Context, kekID string) bool {
	var one int
	return s.w.QueryRowContext(ctx, qKEKRetired, kekID).Scan(&one) == nil
}

func (s *Store) GetDataKey(ctx context.Context, scope string) (store.DataKey, error) {
	k := store.DataKey{Scope: scope}
	var created int64
	err := s.queryRow(ctx, `SELECT kek_id, wrapped, created_at FROM data_keys WHERE scope = ?`, scope).Scan(&k.KEKID, &k.Wrapped, &created)
	if err != nil {
		return store.DataKey{}, notFound(err, "get data key "+scope)
	}
	k.CreatedAt = fromNanos(created)
	return k, nil
}

func (s *Store) RewrapDataKey(ctx context.Context, oldKEK string, k store.DataKey) error {
	res, err := s.w.ExecContext(ctx, `UPDATE data_keys SET kek_id = ?, wrapped = ? WHERE scope = ? AND kek_id = ? AND NOT EXISTS (`+qKEKRetired+`)`,
		k.KEKID, k.Wrapped, k.Scope, oldKEK, k.KEKID)
	if err != nil {
		return fmt.Errorf("rewrap data key %s: %w", k.Scope, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if s.kekRetired(ctx, k.KEKID) {
			return fmt.Errorf("rewrap data key %s under %s: %w", k.Scope, k.KEKID, store.ErrKEKRetired)
		}
		return fmt.Errorf("rewrap data key %s: %w", k.Scope, store.ErrNotFound)
	}
	return nil
}

func (s *Store) ListDataKeys(ctx context.Context, kekID, afterScope string, limit int) ([]store.DataKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT scope, kek_id, wrapped, created_at FROM data_keys WHERE kek_id = ? AND scope > ? ORDER BY scope LIMIT ?`, kekID, afterScope, limit)
	if err != nil {
		return nil, fmt.Errorf("list data keys: %w", err)
	}
	defer rows.Close()
	var out []store.DataKey
	for rows.Next() {
		var k store.DataKey
		var created int64
		if err := rows.Scan(&k.Scope, &k.KEKID, &k.Wrapped, &created); err != nil {
			return nil, fmt.Errorf("list data keys: %w", err)
		}
		k.CreatedAt = fromNanos(created)
		out = append(out, k)
	}
	return out, rows.Err()
}

func (s *Store) CountDataKeys(ctx context.Context, kekID string) (int, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM data_keys WHERE kek_id = ?`, kekID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count data keys: %w", err)
	}
	return n, nil
}

func (s *Store) DeleteDataKey(ctx context.Context, scope string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM data_keys WHERE scope = ?`, scope)
	if err != nil {
		return fmt.Errorf("delete data key %s: %w", scope, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete data key %s: %w", scope, store.ErrNotFound)
	}
	return nil
}
