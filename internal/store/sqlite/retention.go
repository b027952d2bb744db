package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// This file holds retention and erasure: the last-activity mark kept by
// every append, deleting whole conversations (with their data key),
// pruning ephemeral ones, and scrubbing the files afterwards.

// touch records an append's time (and an end) on its conversation, in the
// append's transaction, at most once per store.ActivityGranularity: the
// mark costs two more pages in the commit (the conversation's row and its
// index entry), and a conversation in full swing pays that once a minute,
// not per message. It is also the proof that the conversation still exists:
// the sequence cache (nextSeq) does not know about a deletion made by
// another process, and an append to a deleted conversation must store
// nothing.
//
// A conversation the writer marked less than ActivityGranularity ago, with
// no commit by another connection since (PRAGMA data_version, read once per
// transaction under the write lock), still exists and needs nothing: the
// append in full swing pays a map lookup.
func (s *Store) touch(ctx context.Context, tx *sql.Tx, conv string, recs []store.NewRecord, now time.Time) error {
	ends := false
	for _, r := range recs {
		ends = ends || r.EndsConversation
	}
	if at, ok := s.marked[conv]; ok && !ends && nanos(now)-at < int64(store.ActivityGranularity) && s.unchanged(ctx, tx) {
		return nil
	}
	if len(s.marked) >= maxCachedConversations {
		clear(s.marked)
	}
	return s.mark(ctx, tx, conv, ends, now)
}

// unchanged reports whether no other connection committed since the
// writer last looked; it reads data_version once per transaction and
// forgets every mark when it changed.
func (s *Store) unchanged(ctx context.Context, tx *sql.Tx) bool {
	if s.dvTxN == s.txN {
		return s.dvUnchanged
	}
	var v int64
	if err := s.txStmt(ctx, tx, qDataVersion).QueryRowContext(ctx).Scan(&v); err != nil {
		return false
	}
	s.dvTxN, s.dvUnchanged = s.txN, v == s.dataVersion
	if !s.dvUnchanged {
		s.dataVersion = v
		clear(s.marked)
	}
	return s.dvUnchanged
}

// mark refreshes the mark in the database (when older than
// ActivityGranularity, or for an end) and proves the conversation exists.
func (s *Store) mark(ctx context.Context, tx *sql.Tx, conv string, ends bool, now time.Time) error {
	res, err := s.txExec(ctx, tx, qTouch, nanos(now), b2i(ends), nanos(now), conv, nanos(now.Add(-store.ActivityGranularity)), b2i(ends))
	if err != nil {
		return fmt.Errorf("append: touch conversation: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		s.marked[conv] = nanos(now)
		return nil
	}
	var at int64
	err = s.txStmt(ctx, tx, qConvExists).QueryRowContext(ctx, conv).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		delete(s.nextSeq, conv)
		delete(s.marked, conv)
		return fmt.Errorf("append to %s: %w", conv, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("append: check conversation: %w", err)
	}
	s.marked[conv] = at // marked less than ActivityGranularity ago
	return nil
}

// forgetConversation drops a conversation from the cache.
func (s *Store) forgetConversation(id string) {
	if _, loaded := s.convs.LoadAndDelete(id); loaded {
		s.convN.Add(-1)
	}
	s.convAt.Delete(id)
}

func (s *Store) SetSiteRetention(ctx context.Context, id string, r store.Retention) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("update site %s: %w", id, err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE sites SET retention_mode = ?, retention_after = ? WHERE id = ?`, string(r.Mode), int64(r.After), id)
	return affected(res, err, "update site "+id)
}

func (s *Store) DeleteConversation(ctx context.Context, id string, now time.Time) (store.Erased, error) {
	var e store.Erased
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		e = store.Erased{ConversationID: id} // this may run twice: start afresh
		found := true
		err := tx.QueryRowContext(ctx, `SELECT bot_id, site_id, user_id FROM conversations WHERE id = ?`, id).Scan(&e.BotID, &e.SiteID, &e.UserID)
		if errors.Is(err, sql.ErrNoRows) {
			found = false
		} else if err != nil {
			return fmt.Errorf("delete conversation %s: %w", id, err)
		}
		count := func(q string, dst *int) error {
			res, err := tx.ExecContext(ctx, q, id)
			if err != nil {
				return fmt.Errorf("delete conversation %s: %w", id, err)
			}
			n, err := res.RowsAffected()
			*dst = int(n)
			return err
		}
		var convRows int
		for _, d := range []struct {
			q   string
			dst *int
		}{
			{`DELETE FROM activities WHERE conversation_id = ?`, &e.Activities},
			{`DELETE FROM outbox WHERE conversation_id = ?`, &e.OutboxItems},
			{`DELETE FROM dead_letters WHERE conversation_id = ?`, &e.DeadLetters},
			{`DELETE FROM attachments WHERE conversation_id = ?`, &e.Attachments},
			{`DELETE FROM sessions WHERE conversation_id = ?`, &e.Sessions},
			{`DELETE FROM conversations WHERE id = ?`, &convRows},
		} {
			if err := count(d.q, d.dst); err != nil {
				return err
			}
		}
		scope := store.DataKeyScope(id)
		err = tx.QueryRowContext(ctx, `DELETE FROM data_keys WHERE scope = ? RETURNING kek_id`, scope).Scan(&e.KEKID)
		switch {
		case err == nil:
			e.DataKeyScope = scope
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("delete conversation %s: data key: %w", id, err)
		}
		if !found && e.Activities+e.OutboxItems+e.DeadLetters+e.Attachments+e.Sessions == 0 && e.DataKeyScope == "" {
			return fmt.Errorf("delete conversation %s: %w", id, store.ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO conversation_tombstones (id, deleted_at) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET deleted_at = excluded.deleted_at`, id, nanos(now)); err != nil {
			return fmt.Errorf("delete conversation %s: tombstone: %w", id, err)
		}
		delete(s.nextSeq, id)
		delete(s.marked, id)
		return nil
	})
	s.forgetConversation(id)
	if err != nil {
		return store.Erased{}, err
	}
	return e, nil
}

func (s *Store) ExpiredConversations(ctx context.Context, siteID string, idleBefore time.Time, ended bool, afterID string, limit int) ([]string, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM conversations WHERE site_id = ? AND last_activity_at < ? AND id > ?
		UNION SELECT id FROM conversations WHERE ? AND site_id = ? AND ended_at IS NOT NULL AND id > ?
			AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.conversation_id = conversations.id)
		ORDER BY id LIMIT ?`, siteID, nanos(idleBefore), afterID, b2i(ended), siteID, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list expired conversations: %w", err)
	}
	return scanIDs(rows, "list expired conversations")
}

func (s *Store) UserConversations(ctx context.Context, userID string) ([]string, error) {
	if userID == "" {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM conversations WHERE user_id = ? AND user_id <> '' ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list user conversations: %w", err)
	}
	return scanIDs(rows, "list user conversations")
}

func scanIDs(rows *sql.Rows, what string) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func (s *Store) PruneActivities(ctx context.Context, id string, deliveredBefore, hardBefore time.Time) (int, error) {
	var n int
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		n = 0
		var head sql.NullInt64
		var pending sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT MAX(seq) FROM activities WHERE conversation_id = ?), (SELECT MIN(created_at) FROM outbox WHERE conversation_id = ?)`, id, id).Scan(&head, &pending); err != nil {
			return fmt.Errorf("prune conversation %s: %w", id, err)
		}
		cut := nanos(deliveredBefore)
		if pending.Valid && pending.Int64 < cut {
			cut = pending.Int64 // the bot does not have these yet
		}
		cut = max(cut, nanos(hardBefore))
		if head.Valid {
			res, err := tx.ExecContext(ctx, `DELETE FROM activities WHERE conversation_id = ? AND seq < ? AND created_at < ?`, id, head.Int64, cut)
			if err != nil {
				return fmt.Errorf("prune conversation %s: %w", id, err)
			}
			d, _ := res.RowsAffected()
			res, err = tx.ExecContext(ctx, `UPDATE activities SET visibility = ?, body = x'' WHERE conversation_id = ? AND seq = ? AND created_at < ? AND (visibility <> ? OR length(body) > 0)`,
				int(store.VisibleNone), id, head.Int64, cut, int(store.VisibleNone))
			if err != nil {
				return fmt.Errorf("prune conversation %s: %w", id, err)
			}
			e, _ := res.RowsAffected()
			n = int(d + e)
		}
		// An attachment's time is its upload's, not its activity's: files go
		// only once the bot has every pending activity (or at the hard cap).
		fileCut := nanos(hardBefore)
		if !pending.Valid {
			fileCut = max(fileCut, nanos(deliveredBefore))
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM attachments WHERE conversation_id = ? AND created_at < ?`, id, fileCut); err != nil {
			return fmt.Errorf("prune conversation %s: %w", id, err)
		}
		for _, q := range []string{
			`DELETE FROM outbox WHERE conversation_id = ? AND created_at < ?`,
			`DELETE FROM dead_letters WHERE conversation_id = ? AND created_at < ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id, nanos(hardBefore)); err != nil {
				return fmt.Errorf("prune conversation %s: %w", id, err)
			}
		}
		return nil
	})
	return n, err
}

func (s *Store) ConversationDeleted(ctx context.Context, id string) (bool, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM conversation_tombstones WHERE id = ?`, id).Scan(&n); err != nil {
		return false, fmt.Errorf("check conversation tombstone: %w", err)
	}
	return n > 0, nil
}

func (s *Store) DeletedConversations(ctx context.Context, since time.Time, limit int) ([]string, error) {
	rows, err := s.query(ctx, `SELECT id FROM conversation_tombstones WHERE deleted_at >= ? ORDER BY deleted_at, id LIMIT ?`, nanos(since), limit)
	if err != nil {
		return nil, fmt.Errorf("list deleted conversations: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list deleted conversations: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deleted conversations: %w", err)
	}
	return ids, nil
}

func (s *Store) PruneTombstones(ctx context.Context, before time.Time) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM conversation_tombstones WHERE deleted_at < ?`, nanos(before)); err != nil {
			return fmt.Errorf("prune tombstones: %w", err)
		}
		return nil
	})
}

// Scrub checkpoints the WAL into the database file and truncates it:
// with secure_delete on (every connection's DSN), deleted cells are
// zeroed in the pages written, and once the WAL is truncated no older
// version of those pages is left in either file. A checkpoint cannot
// complete while a reader still uses an old snapshot: Scrub retries for a
// short while, then reports it.
func (s *Store) Scrub(ctx context.Context) error {
	var busy, logFrames, done int
	for attempt := 0; ; attempt++ {
		if err := s.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil {
			return fmt.Errorf("scrub: checkpoint: %w", err)
		}
		if busy == 0 {
			return nil
		}
		if attempt == 50 {
			return fmt.Errorf("scrub: checkpoint: the WAL is still in use by readers (%d of %d frames copied)", done, logFrames)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("scrub: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
