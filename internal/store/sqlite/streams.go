package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/parley-gw/parley/internal/store"
)

// supersede empties, inside an append's transaction, the stream records
// (VisibleStream) of conv that a new record replaces. Other records are
// left alone whatever the caller asks.
func (s *Store) supersede(ctx context.Context, tx *sql.Tx, conv string, seqs []int64) error {
	for _, seq := range seqs {
		if _, err := tx.ExecContext(ctx, `UPDATE activities SET visibility = ?, body = x'' WHERE conversation_id = ? AND seq = ? AND visibility = ?`,
			int(store.VisibleNone), conv, seq, int(store.VisibleStream)); err != nil {
			return fmt.Errorf("append: supersede record %d: %w", seq, err)
		}
	}
	return nil
}
