package sqlite

import (
	"context"
	"fmt"
	"strconv"

	"github.com/parley-gw/parley/internal/store"
)

// Content stored before encryption at rest (format byte 0), found and
// replaced page by page in key order.

func (s *Store) LegacyPending(ctx context.Context) (bool, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM legacy_plain WHERE pending = 1`).Scan(&n); err != nil {
		return false, fmt.Errorf("read legacy marker: %w", err)
	}
	return n > 0, nil
}

func (s *Store) ClearLegacyPending(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM legacy_plain`); err != nil {
		return fmt.Errorf("clear legacy marker: %w", err)
	}
	return nil
}

const plainFirst = `length(%[1]s) > 0 AND substr(%[1]s, 1, 1) = x'00'`

func (s *Store) ListLegacy(ctx context.Context, kind string, after store.LegacyBlob, limit int) ([]store.LegacyBlob, error) {
	var q string
	var args []any
	afterID, _ := strconv.ParseInt(after.ID, 10, 64)
	switch kind {
	case store.LegacyActivity:
		q = `SELECT conversation_id, seq, '', body FROM activities WHERE (conversation_id, seq) > (?, ?) AND ` + fmt.Sprintf(plainFirst, "body") + ` ORDER BY conversation_id, seq LIMIT ?`
		args = []any{after.ConversationID, after.Seq, limit}
		if after.ConversationID == "" {
			args[1] = int64(-1 << 62)
		}
	case store.LegacyOutbox, store.LegacyDeadLetter:
		table := "outbox"
		if kind == store.LegacyDeadLetter {
			table = "dead_letters"
		}
		q = `SELECT conversation_id, 0, CAST(id AS TEXT), body FROM ` + table + ` WHERE id > ? AND ` + fmt.Sprintf(plainFirst, "body") + ` ORDER BY id LIMIT ?`
		args = []any{afterID, limit}
	case store.LegacyAttachment:
		q = `SELECT conversation_id, 0, id, data FROM attachments WHERE id > ? AND ` + fmt.Sprintf(plainFirst, "data") + ` ORDER BY id LIMIT ?`
		args = []any{after.ID, limit}
	case store.LegacyAttachmentName:
		q = `SELECT conversation_id, 0, id, CAST(name AS BLOB) FROM attachments WHERE id > ? AND name != '' AND substr(name, 1, 7) != 'sealed:' ORDER BY id LIMIT ?`
		args = []any{after.ID, limit}
	default:
		return nil, fmt.Errorf("list legacy content: unknown kind %q", kind)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list legacy %s: %w", kind, err)
	}
	defer rows.Close()
	var out []store.LegacyBlob
	for rows.Next() {
		b := store.LegacyBlob{Kind: kind}
		if err := rows.Scan(&b.ConversationID, &b.Seq, &b.ID, &b.Body); err != nil {
			return nil, fmt.Errorf("list legacy %s: %w", kind, err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

func (s *Store) ReplaceLegacy(ctx context.Context, b store.LegacyBlob, body []byte) (bool, error) {
	var q string
	var args []any
	switch b.Kind {
	case store.LegacyActivity:
		q, args = `UPDATE activities SET body = ? WHERE conversation_id = ? AND seq = ? AND body = ?`, []any{body, b.ConversationID, b.Seq, b.Body}
	case store.LegacyOutbox:
		q, args = `UPDATE outbox SET body = ? WHERE id = ? AND body = ?`, []any{body, b.ID, b.Body}
	case store.LegacyDeadLetter:
		q, args = `UPDATE dead_letters SET body = ? WHERE id = ? AND body = ?`, []any{body, b.ID, b.Body}
	case store.LegacyAttachment:
		q, args = `UPDATE attachments SET data = ? WHERE id = ? AND data = ?`, []any{body, b.ID, b.Body}
	case store.LegacyAttachmentName:
		q, args = `UPDATE attachments SET name = ? WHERE id = ? AND name = ?`, []any{string(body), b.ID, string(b.Body)}
	default:
		return false, fmt.Errorf("replace legacy content: unknown kind %q", b.Kind)
	}
	res, err := s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("replace legacy %s: %w", b.Kind, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
