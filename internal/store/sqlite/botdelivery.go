package sqlite

import (
	"context"
	"fmt"
	"time"
)

// SetBotDeliveryTimeout changes a bot's per-attempt delivery timeout.
func (s *Store) SetBotDeliveryTimeout(ctx context.Context, id string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("update bot %s: negative delivery timeout", id)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE bots SET delivery_timeout_ms = ? WHERE id = ?`, d.Milliseconds(), id)
	s.bots.Delete(id)
	return affected(res, err, "update bot "+id)
}
