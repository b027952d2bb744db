package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// AuthFailureSeries answers one offender's failures in time buckets.
func (s *Store) AuthFailureSeries(ctx context.Context, since time.Time, bucket time.Duration, site, client, userAgent string) ([]store.AuthFailureCount, error) {
	if bucket < time.Minute || bucket%time.Minute != 0 {
		return nil, fmt.Errorf("auth failure series: bucket %v is not a whole number of minutes", bucket)
	}
	b := int64(bucket)
	rows, err := s.r.QueryContext(ctx, `SELECT (minute / ?) * ? AS b, SUM(count) FROM auth_failures
		WHERE minute >= ? AND site = ? AND client = ? AND user_agent = ? GROUP BY b ORDER BY b`,
		b, b, nanos(since.Truncate(time.Minute)), site, client, userAgent)
	if err != nil {
		return nil, fmt.Errorf("auth failure series: %w", err)
	}
	defer rows.Close()
	var out []store.AuthFailureCount
	for rows.Next() {
		var at int64
		c := store.AuthFailureCount{Site: site, Client: client, UserAgent: userAgent}
		if err := rows.Scan(&at, &c.Count); err != nil {
			return nil, fmt.Errorf("scan auth failure series: %w", err)
		}
		c.Minute = fromNanos(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
