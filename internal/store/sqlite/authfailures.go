package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// AddAuthFailures adds per-minute counts in one transaction.
func (s *Store) AddAuthFailures(ctx context.Context, counts []store.AuthFailureCount) error {
	if len(counts) == 0 {
		return nil
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO auth_failures (minute, site, client, user_agent, status, reason, count, first_seen, last_seen)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (minute, site, client, user_agent, status, reason) DO UPDATE SET
				count = count + excluded.count,
				first_seen = min(first_seen, excluded.first_seen),
				last_seen = max(last_seen, excluded.last_seen)`)
		if err != nil {
			return fmt.Errorf("add auth failures: %w", err)
		}
		defer stmt.Close()
		for _, c := range counts {
			if c.Count <= 0 {
				continue
			}
			if _, err := stmt.ExecContext(ctx, nanos(c.Minute.Truncate(time.Minute)), c.Site, c.Client, c.UserAgent, c.Status, c.Reason,
				c.Count, nanos(c.FirstSeen), nanos(c.LastSeen)); err != nil {
				return fmt.Errorf("add auth failures: %w", err)
			}
		}
		return nil
	})
}

// TopAuthFailures answers the top offenders' rows since since.
func (s *Store) TopAuthFailures(ctx context.Context, since time.Time, top int) ([]store.AuthFailureCount, error) {
	if top <= 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `WITH top AS (
			SELECT site, client, user_agent, SUM(count) AS n FROM auth_failures WHERE minute >= ?
			GROUP BY site, client, user_agent ORDER BY n DESC, site, client, user_agent LIMIT ?)
		SELECT f.site, f.client, f.user_agent, f.status, f.reason, SUM(f.count), MIN(f.first_seen), MAX(f.last_seen)
		FROM auth_failures f JOIN top t ON f.site = t.site AND f.client = t.client AND f.user_agent = t.user_agent
		WHERE f.minute >= ?
		GROUP BY f.site, f.client, f.user_agent, f.status, f.reason
		ORDER BY MAX(t.n) DESC, f.site, f.client, f.user_agent, SUM(f.count) DESC, f.status, f.reason`,
		nanos(since.Truncate(time.Minute)), top, nanos(since.Truncate(time.Minute)))
	if err != nil {
		return nil, fmt.Errorf("top auth failures: %w", err)
	}
	defer rows.Close()
	var out []store.AuthFailureCount
	for rows.Next() {
		var c store.AuthFailureCount
		var first, last int64
		if err := rows.Scan(&c.Site, &c.Client, &c.UserAgent, &c.Status, &c.Reason, &c.Count, &first, &last); err != nil {
			return nil, fmt.Errorf("scan auth failures: %w", err)
		}
		c.FirstSeen, c.LastSeen = fromNanos(first), fromNanos(last)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("top auth failures: %w", err)
	}
	return out, nil
}

// AuthFailureTotals sums failures since since, grouped by the fields in by.
func (s *Store) AuthFailureTotals(ctx context.Context, since time.Time, by []string, min int64, limit int) ([]store.AuthFailureCount, error) {
	cols := make([]string, 0, 3)
	for _, f := range by {
		switch f {
		case "site", "client", "user_agent":
			cols = append(cols, f)
		default:
			return nil, fmt.Errorf("auth failure totals: cannot group by %q (site, client or user_agent)", f)
		}
	}
	sel := "'', '', ''"
	group := ""
	if len(cols) > 0 {
		parts := make([]string, 3)
		for i, f := range []string{"site", "client", "user_agent"} {
			parts[i] = "''"
			for _, c := range cols {
				if c == f {
					parts[i] = f
				}
			}
		}
		sel = strings.Join(parts, ", ")
		group = " GROUP BY " + strings.Join(cols, ", ")
	}
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+sel+`, SUM(count) AS n, MIN(first_seen), MAX(last_seen) FROM auth_failures WHERE minute >= ?`+group+
		` HAVING n >= ? ORDER BY n DESC LIMIT ?`, nanos(since.Truncate(time.Minute)), max(min, 1), limit)
	if err != nil {
		return nil, fmt.Errorf("auth failure totals: %w", err)
	}
	defer rows.Close()
	var out []store.AuthFailureCount
	for rows.Next() {
		var c store.AuthFailureCount
		var first, last int64
		if err := rows.Scan(&c.Site, &c.Client, &c.UserAgent, &c.Count, &first, &last); err != nil {
			return nil, fmt.Errorf("scan auth failure totals: %w", err)
		}
		c.FirstSeen, c.LastSeen = fromNanos(first), fromNanos(last)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth failure totals: %w", err)
	}
	return out, nil
}

// PruneAuthFailures removes minutes (and alert claims) before before.
func (s *Store) PruneAuthFailures(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM auth_failures WHERE minute < ?`, nanos(before))
		if err != nil {
			return fmt.Errorf("prune auth failures: %w", err)
		}
		n, _ = res.RowsAffected()
		if _, err := tx.ExecContext(ctx, `DELETE FROM security_alerts WHERE fired_at < ?`, nanos(before)); err != nil {
			return fmt.Errorf("prune alert claims: %w", err)
		}
		return nil
	})
	return n, err
}

// ClaimAlert claims rule's alert for key unless it fired within window.
func (s *Store) ClaimAlert(ctx context.Context, rule, key string, now time.Time, window time.Duration) (bool, error) {
	var claimed bool
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO security_alerts (rule, key, fired_at) VALUES (?, ?, ?)
			ON CONFLICT (rule, key) DO UPDATE SET fired_at = excluded.fired_at WHERE security_alerts.fired_at <= ?`,
			rule, key, nanos(now), nanos(now.Add(-window)))
		if err != nil {
			return fmt.Errorf("claim alert: %w", err)
		}
		n, _ := res.RowsAffected()
		claimed = n == 1
		return nil
	})
	return claimed, err
}
