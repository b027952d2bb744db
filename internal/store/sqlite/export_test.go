package sqlite

import (
	"context"
	"strconv"
	"time"
)

// LimitPages sets the writer's max_page_count: 0 pins it to the current
// size (any commit that needs a new page fails with SQLITE_FULL, as on a
// full disk), a large value lifts it.
func (s *Store) LimitPages(ctx context.Context, pages int64) error {
	if pages == 0 {
		if err := s.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
			return err
		}
	}
	var got int64
	return s.w.QueryRowContext(ctx, `PRAGMA max_page_count = `+itoa(pages)).Scan(&got)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// SetProbeEvery changes the probe interval.
func (s *Store) SetProbeEvery(d time.Duration) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	s.health.probeEvery = d
}

// SetStaleAfter changes how long a success stands without a probe.
func (s *Store) SetStaleAfter(d time.Duration) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	s.health.staleAfter = d
}

// Probes counts the probes started.
func (s *Store) Probes() int {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return s.health.probes
}
