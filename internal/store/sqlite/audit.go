package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/parley-gw/parley/internal/store"
)

// --- the audit log (issue 13): append-only; no update, no delete ---

const auditColumns = `seq, time, actor, role, action, target, outcome, client, detail, prev, hash, key_id, mac`

// AppendAudit runs on the single writer, so the head it reads cannot move
// before its insert commits; BEGIN IMMEDIATE (the writer's _txlock) holds
// the database's write lock from the read on, so another process's append
// cannot interleave either.
func (s *Store) AppendAudit(ctx context.Context, build func(prevSeq int64, prevHash []byte) (store.AuditEntry, error)) (store.AuditEntry, error) {
	var out store.AuditEntry
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var prevSeq int64
		var prevHash []byte
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1`).Scan(&prevSeq, &prevHash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("append audit entry: read head: %w", err)
		}
		e, err := build(prevSeq, prevHash)
		if err != nil {
			return fmt.Errorf("append audit entry: %w", err)
		}
		if e.Seq != prevSeq+1 || !bytes.Equal(e.Prev, prevHash) {
			return fmt.Errorf("append audit entry: built seq %d after %d: not the next entry of the chain", e.Seq, prevSeq)
		}
		detail, err := json.Marshal(e.Detail)
		if err != nil {
			return fmt.Errorf("append audit entry: %w", err)
		}
		prev := e.Prev
		if prev == nil {
			prev = []byte{}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_entries (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, nanos(e.Time), e.Actor, e.Role, e.Action, e.Target, e.Outcome, e.Client, string(detail), prev, e.Hash, e.KeyID, nonNilBytes(e.MAC)); err != nil {
			return fmt.Errorf("append audit entry %d: %w", e.Seq, err)
		}
		out = e
		return nil
	})
	if err != nil {
		return store.AuditEntry{}, err
	}
	return out, nil
}

func scanAudit(sc interface{ Scan(...any) error }) (store.AuditEntry, error) {
	var e store.AuditEntry
	var t int64
	var detail string
	if err := sc.Scan(&e.Seq, &t, &e.Actor, &e.Role, &e.Action, &e.Target, &e.Outcome, &e.Client, &detail, &e.Prev, &e.Hash, &e.KeyID, &e.MAC); err != nil {
		return e, err
	}
	e.Time = fromNanos(t)
	if detail != "" && detail != "null" {
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			return e, fmt.Errorf("audit entry %d: detail: %w", e.Seq, err)
		}
	}
	if len(e.Detail) == 0 {
		e.Detail = nil
	}
	if len(e.Prev) == 0 {
		e.Prev = nil
	}
	if len(e.MAC) == 0 {
		e.MAC = nil
	}
	return e, nil
}

func (s *Store) ListAudit(ctx context.Context, after int64, limit int) ([]store.AuditEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_entries WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("list audit entries: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	return out, nil
}

func (s *Store) AuditHead(ctx context.Context) (store.AuditEntry, error) {
	e, err := scanAudit(s.r.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit_entries ORDER BY seq DESC LIMIT 1`))
	if err != nil {
		return store.AuditEntry{}, notFound(err, "audit head")
	}
	return e, nil
}

func (s *Store) PutAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) (store.AuditCheckpoint, error) {
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, hash, created_at, key_id, signature) VALUES (?, ?, ?, ?, ?)`,
			c.Seq, c.Hash, nanos(c.CreatedAt), c.KeyID, c.Signature)
		if err != nil {
			return fmt.Errorf("put audit checkpoint: %w", err)
		}
		c.ID, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return store.AuditCheckpoint{}, err
	}
	return c, nil
}

func (s *Store) ListAuditCheckpoints(ctx context.Context) ([]store.AuditCheckpoint, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, seq, hash, created_at, key_id, signature FROM audit_checkpoints ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list audit checkpoints: %w", err)
	}
	defer rows.Close()
	var out []store.AuditCheckpoint
	for rows.Next() {
		var c store.AuditCheckpoint
		var t int64
		if err := rows.Scan(&c.ID, &c.Seq, &c.Hash, &t, &c.KeyID, &c.Signature); err != nil {
			return nil, fmt.Errorf("list audit checkpoints: %w", err)
		}
		c.CreatedAt = fromNanos(t)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit checkpoints: %w", err)
	}
	return out, nil
}

// nonNilBytes stores nil as an empty blob (the column is NOT NULL).
func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
