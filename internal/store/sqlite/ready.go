package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	sqlite "modernc.org/sqlite"

	"github.com/parley-gw/parley/internal/store"
)

// Readiness (store.Store.Ready): the writer records the outcome of every
// commit; a probe commits when nothing else tells.
const (
	// probeEvery bounds probes: at most one per interval, however often
	// readiness is asked.
	probeEvery = time.Second
	// staleAfter: with no successful commit for this long, readiness is
	// confirmed by a probe (an idle gateway learns of a full disk too).
	staleAfter = 10 * time.Second
	// probeSize is what a probe writes (and deletes in the same
	// transaction): enough to need new pages, as a real append does.
	probeSize = 16 << 10
)

// health is the writer's view of whether commits succeed.
type health struct {
	mu      sync.Mutex
	err     error     // the last commit's failure; nil after a success
	okAt    time.Time // the last successful commit
	probeAt time.Time // the last probe started
	probing bool
	probes  int // probes started, for tests
	// probeEvery and staleAfter are the constants, shortened by tests.
	probeEvery, staleAfter time.Duration
}

// recordCommit notes a commit's outcome: nil for success, or a storage
// failure (see storageError).
func (s *Store) recordCommit(err error) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	s.health.err = err
	if err == nil {
		s.health.okAt = time.Now()
	}
}

// Ready implements store.Store.
func (s *Store) Ready(ctx context.Context) error {
	h := &s.health
	h.mu.Lock()
	now := time.Now()
	err := h.err
	if h.probing || now.Sub(h.probeAt) < h.probeEvery || (err == nil && now.Sub(h.okAt) < h.staleAfter) {
		h.mu.Unlock()
		return err
	}
	h.probing, h.probeAt = true, now
	h.probes++
	h.mu.Unlock()

	perr := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO readiness_probe (id, data) VALUES (1, zeroblob(?))`, probeSize); err != nil {
			return fmt.Errorf("readiness probe: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM readiness_probe`); err != nil {
			return fmt.Errorf("readiness probe: %w", err)
		}
		return nil
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.probing = false
	if h.err == nil && perr != nil && ctx.Err() == nil {
		return fmt.Errorf("readiness probe: %w", perr) // e.g. the store is closed
	}
	return h.err
}

// writerDB is the writer connection. Its ExecContext and BeginTx mark
// storage failures as the writer's commits do (a full disk wraps
// store.ErrFull, so the admin API answers 503 and says why) and record
// them in the store's health; the probe clears them once space returns.
type writerDB struct {
	*sql.DB
	s *Store
}

func (w writerDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := w.s.checkFile(); err != nil {
		return nil, err
	}
	res, err := w.DB.ExecContext(ctx, query, args...)
	return res, w.s.storageFailure(err)
}

func (w writerDB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	if err := w.s.checkFile(); err != nil {
		return nil, err
	}
	tx, err := w.DB.BeginTx(ctx, opts)
	return tx, w.s.storageFailure(err)
}

// checkFile refuses a write when the database file is no longer the one
// opened (deleted with its directory, or replaced): SQLite would commit
// to the unlinked file and the gateway would acknowledge activities that
// vanish at the next start. One stat per transaction (about a
// microsecond, against the commit's fsync). Recorded in the store's
// health, so /readyz says so; a file moved back clears it at the next
// write.
func (s *Store) checkFile() error {
	if s.file == nil {
		return nil // during Open (migrations)
	}
	st, err := os.Stat(s.path)
	if err == nil && os.SameFile(st, s.file) {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil // cannot tell (e.g. a permission change): let SQLite say
	}
	gone := fmt.Errorf("%w: %s; restore it and restart parley (writes are refused meanwhile)", store.ErrStoreReplaced, s.path)
	s.recordCommit(gone)
	return gone
}

// storageFailure returns err, marked and recorded in the store's health
// when it is a storage failure (see storageError).
func (s *Store) storageFailure(err error) error {
	if err == nil {
		return nil
	}
	if serr := storageError(err); serr != nil {
		s.recordCommit(serr)
		return serr
	}
	return err
}

// storageError returns err marked as a storage failure when SQLite says
// the database cannot be written (full, I/O error, read-only, corrupt), nil
// otherwise (constraint violations and the like say nothing about the
// store's health). A full storage wraps store.ErrFull.
func storageError(err error) error {
	if errors.Is(err, store.ErrFull) {
		return err // marked already
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return nil
	}
	switch se.Code() & 0xff {
	case 13: // SQLITE_FULL
		return fmt.Errorf("%w: %w", store.ErrFull, err)
	case 10, 8, 14, 11, 26: // SQLITE_IOERR, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_CORRUPT, SQLITE_NOTADB
		return err
	}
	return nil
}
