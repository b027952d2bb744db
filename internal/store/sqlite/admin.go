package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/parley-gw/parley/internal/store"
)

// GetDeadLetter returns dead letter id.
func (s *Store) GetDeadLetter(ctx context.Context, id int64) (store.DeadLetter, error) {
	var d store.DeadLetter
	var created, last, dead int64
	var first sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT id, conversation_id, bot_id, activity_id, body, attempts, created_at, first_attempt_at, last_attempt_at, last_status, last_error, dead_at
		FROM dead_letters WHERE id = ?`, id).
		Scan(&d.ID, &d.ConversationID, &d.BotID, &d.ActivityID, &d.Body, &d.Attempts, &created, &first, &last, &d.LastStatus, &d.LastError, &dead)
	if err != nil {
		return store.DeadLetter{}, notFound(err, fmt.Sprintf("get dead letter %d", id))
	}
	d.CreatedAt, d.LastAttemptAt, d.DeadAt = fromNanos(created), fromNanos(last), fromNanos(dead)
	if first.Valid {
		d.FirstAttemptAt = fromNanos(first.Int64)
	}
	return d, nil
}

// DropDeadLetter deletes dead letter id for good.
func (s *Store) DropDeadLetter(ctx context.Context, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM dead_letters WHERE id = ?`, id)
	return affected(res, err, fmt.Sprintf("drop dead letter %d", id))
}
