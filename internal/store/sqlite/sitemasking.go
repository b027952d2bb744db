package sqlite

import (
	"context"
	"fmt"

	"github.com/parley-gw/parley/internal/store"
)

// SetSiteMasking changes a site's masking policy.
func (s *Store) SetSiteMasking(ctx context.Context, id string, p store.MaskingPolicy) error {
	if p == "" {
		return fmt.Errorf("update site %s: empty masking policy", id)
	}
	if _, err := store.ParseMaskingPolicy(string(p)); err != nil {
		return fmt.Errorf("update site %s: %w", id, err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE sites SET masking = ? WHERE id = ?`, string(p), id)
	return affected(res, err, "update site "+id)
}
