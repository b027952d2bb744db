package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// OutboxStats counts the pending outbox items and dates the oldest (one
// scan of the outbox; the metrics take it at most every 10 s).
func (s *Store) OutboxStats(ctx context.Context) (int, time.Time, error) {
	var (
		n      int
		oldest sql.NullInt64
	)
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM outbox`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("count outbox: %w", err)
	}
	if !oldest.Valid {
		return n, time.Time{}, nil
	}
	return n, fromNanos(oldest.Int64), nil
}
