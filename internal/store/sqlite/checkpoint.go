package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// Checkpoints (copying committed WAL frames into the database file) run
// on a connection of their own, off the commit path. SQLite's automatic
// checkpoint runs inside the commit that crosses its threshold (1,000
// frames by default), so every few hundred round trips one commit, and
// every request queued behind it, waited for the copy and the database
// file's fsync: the round trip's p99. The writer keeps an automatic
// checkpoint at a higher threshold only as a bound on the WAL should the
// checkpointer fall behind. Durability does not change: a commit is
// durable (per store.durability) once its WAL frames are, whoever
// checkpoints them later.
const (
	// checkpointEvery is how often the checkpointer looks for new commits.
	checkpointEvery = 250 * time.Millisecond
	// checkpointIdle: with no commit counted by the writer (other
	// connections' writes are not), checkpoint at least this often.
	checkpointIdle = 5 * time.Second
	// writerCheckpointPages is the writer's own automatic checkpoint
	// threshold, in WAL frames (about 40 MB).
	writerCheckpointPages = 10000
)

// checkpointer runs passive checkpoints on db until the store closes. A
// passive checkpoint never blocks the writer or a reader; frames it cannot
// copy yet (a reader still uses them) are copied by a later one.
func (s *Store) checkpointer(db *sql.DB) {
	defer s.wg.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	last, at := s.commits.Load(), time.Now()
	for {
		select {
		case <-s.quit:
			return
		case now := <-t.C:
			if n := s.commits.Load(); n != last || now.Sub(at) >= checkpointIdle {
				last, at = n, now
				s.checkpoint(db)
			}
		}
	}
}

func (s *Store) checkpoint(db *sql.DB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var busy, frames, copied int64
	// A failure is left to the next tick and, meanwhile, to the writer's
	// own automatic checkpoint.
	_ = db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	s.checkpoints.Add(1)
}

// Checkpoints counts the checkpointer's checkpoints (for tests).
func (s *Store) Checkpoints() int64 { return s.checkpoints.Load() }
