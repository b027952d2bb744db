package sqlite

import (
	"context"
	"strings"

	"github.com/parley-gw/parley/internal/store"
)

// nameTaken turns the unique-name triggers' abort (migration 0011) into
// store.ErrNameTaken naming the existing object; nil when err is not one.
func (s *Store) nameTaken(ctx context.Context, err error, table, botID, name, id string) error {
	if err == nil || !strings.Contains(err.Error(), "parley: duplicate "+strings.TrimSuffix(table, "s")+" name") {
		return nil
	}
	q := `SELECT id FROM bots WHERE lower(name) = lower(?) AND id <> ? LIMIT 1`
	args := []any{name, id}
	if table == "sites" {
		q = `SELECT id FROM sites WHERE bot_id = ? AND lower(name) = lower(?) AND id <> ? LIMIT 1`
		args = []any{botID, name, id}
	}
	var existing string
	_ = s.w.QueryRowContext(ctx, q, args...).Scan(&existing)
	return &store.NameTakenError{Kind: strings.TrimSuffix(table, "s"), Name: name, ExistingID: existing}
}
