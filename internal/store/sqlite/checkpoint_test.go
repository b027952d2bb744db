package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// The checkpointer copies committed frames into the database file off the
// commit path; the writer's own automatic checkpoint only bounds the WAL.
func TestCheckpointerRunsOffTheWriter(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var auto int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != writerCheckpointPages {
		t.Fatalf("writer wal_autocheckpoint = %d, %v; want %d", auto, err, writerCheckpointPages)
	}
	if err := s.CreateBot(ctx, store.Bot{ID: "b", Name: "b", Endpoint: "http://127.0.0.1/", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSite(ctx, store.Site{ID: "s", BotID: "b", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateConversation(ctx, store.Conversation{ID: "c", BotID: "b", SiteID: "s", UserID: "dl_u", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := s.Append(ctx, "c", []store.NewRecord{{Build: func(int64) ([]byte, error) { return make([]byte, 600), nil }}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Checkpoints() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint after commits")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Everything committed so far has been copied: a checkpoint now finds
	// no frame left to copy.
	var busy, frames, copied int64
	if err := s.c.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		t.Fatal(err)
	}
	if busy != 0 || frames != copied {
		t.Fatalf("checkpoint: busy %d, %d frames, %d copied", busy, frames, copied)
	}
	recs, err := s.Read(ctx, "c", -1, 100)
	if err != nil || len(recs) != 20 {
		t.Fatalf("read after checkpoints: %d records, %v", len(recs), err)
	}
}
