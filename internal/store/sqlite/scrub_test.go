package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// After a conversation is deleted and the store scrubbed, its content is
// in neither the database file nor the WAL: secure_delete zeroes the
// deleted cells and the truncating checkpoint drops old page versions.
func TestDeletedContentLeavesTheFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "parley.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateBot(ctx, store.Bot{ID: "b", Name: "b", Endpoint: "http://127.0.0.1:1/", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSite(ctx, store.Site{ID: "s", BotID: "b", Name: "s", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	canary := []byte("CANARY-4111111111111111-gone@example.com")
	keep := []byte("KEEPER-other-users-text")
	for _, c := range []struct {
		id   string
		body []byte
	}{{"gone", canary}, {"kept", keep}} {
		if _, err := s.CreateConversation(ctx, store.Conversation{ID: c.id, BotID: "b", SiteID: "s", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		body := c.body
		rec := store.NewRecord{Build: func(int64) ([]byte, error) { return body, nil },
			Attachments: []store.Attachment{{ID: "f-" + c.id, ContentType: "text/plain", Data: append([]byte("file "), body...), CreatedAt: time.Now()}}}
		out := []store.NewOutbox{{BotID: "b", Build: func([]int64) (string, []byte, error) { return "x", body, nil }}}
		for range 20 { // enough pages that a stale copy would show
			if _, err := s.Append(ctx, c.id, []store.NewRecord{{Build: rec.Build}}, out); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Append(ctx, c.id, []store.NewRecord{rec}, nil); err != nil {
			t.Fatal(err)
		}
	}
	files := func() map[string][]byte {
		out := map[string][]byte{}
		for _, suffix := range []string{"", "-wal", "-journal"} {
			b, err := os.ReadFile(path + suffix)
			if err == nil {
				out[filepath.Base(path+suffix)] = b
			}
		}
		return out
	}
	found := func(needle []byte) []string {
		var in []string
		for name, b := range files() {
			if bytes.Contains(b, needle) {
				in = append(in, name)
			}
		}
		return in
	}
	// The test can fail: the canary is there before.
	if len(found(canary)) == 0 {
		t.Fatal("the canary is not in the files before the deletion: the scan finds nothing")
	}
	if err := s.Scrub(ctx); err != nil { // the canary now sits in the main file
		t.Fatal(err)
	}
	if in := found(canary); len(in) == 0 {
		t.Fatal("the canary left with the checkpoint alone")
	}
	if _, err := s.DeleteConversation(ctx, "gone", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Scrub(ctx); err != nil {
		t.Fatal(err)
	}
	if in := found(canary); len(in) > 0 {
		t.Fatalf("the deleted conversation's canary is still in %v", in)
	}
	if in := found(keep); len(in) == 0 {
		t.Fatal("the other conversation's content is gone from the files too")
	}
	if b, err := os.ReadFile(path + "-wal"); err == nil && len(b) != 0 {
		t.Fatalf("the WAL holds %d bytes after scrubbing, want 0", len(b))
	}
}

// A conversation deleted by another process (parley erase while the server
// runs) is refused by this process's next append at once, although this
// writer cached the conversation's sequence and last-activity mark.
func TestDeletionByAnotherProcessRefusesAppends(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "parley.db")
	a, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.CreateBot(ctx, store.Bot{ID: "b", Name: "b", Endpoint: "http://127.0.0.1:1/", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateSite(ctx, store.Site{ID: "s", BotID: "b", Name: "s", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c1", "c2"} {
		if _, err := a.CreateConversation(ctx, store.Conversation{ID: id, BotID: "b", SiteID: "s", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	rec := []store.NewRecord{{Build: func(int64) ([]byte, error) { return []byte("x"), nil }}}
	for range 3 {
		for _, id := range []string{"c1", "c2"} {
			if _, err := a.Append(ctx, id, rec, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeleteConversation(ctx, "c1", time.Now()); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	if _, err := a.Append(ctx, "c1", rec, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("append after another process deleted the conversation = %v, want ErrNotFound", err)
	}
	if recs, _ := a.Read(ctx, "c1", -1, 100); len(recs) != 0 {
		t.Fatalf("%d orphan records", len(recs))
	}
	if got, err := a.Append(ctx, "c2", rec, nil); err != nil || got[0].Seq != 3 {
		t.Fatalf("the other conversation's append = %+v, %v; want seq 3", got, err)
	}
}
