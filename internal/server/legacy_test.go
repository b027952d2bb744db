package server_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/server"
	"github.com/parley-gw/parley/internal/store"
)

// TestUpgradeSealsContentStoredInTheClear: a data directory written before
// encryption at rest (plain bodies, a queued delivery, a dead letter, a
// file, and the marker the migration sets when it finds content) is sealed
// at the next start: everything reads back, nothing is left in the clear.
func TestUpgradeSealsContentStoredInTheClear(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir, cfg.MasterKeyFile = dir, filepath.Join(dir, "master.key")
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	provision(t, st, "bot-a", "http://127.0.0.1:9/api/messages", true, nil)
	sites, _ := st.ListSites(ctx, "bot-a")
	if _, err := st.CreateConversation(ctx, store.Conversation{ID: "old-conv", BotID: "bot-a", SiteID: sites[0].ID, UserID: "dl_alice", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	old := conversation.NewLog(st, conversation.PlainCodec{})
	var items []conversation.Item
	for _, text := range []string{"OLD-PLAIN-one", "OLD-PLAIN-two"} {
		a := conversation.Activity{}
		a.Set("type", "message")
		a.Set("text", text)
		items = append(items, conversation.Item{Activity: a, BotID: "bot-a", ToBot: func(a conversation.Activity) (conversation.Activity, error) { return a, nil },
			Attachments: []store.Attachment{{ID: "file-" + strings.ToLower(text[len(text)-3:]), ConversationID: "old-conv", ContentType: "text/plain", Name: "OLD-PLAIN-NAME-" + text[len(text)-3:] + ".txt", Data: []byte("OLD-PLAIN-FILE"), CreatedAt: time.Now()}}})
	}
	if _, err := old.Append(ctx, "old-conv", items); err != nil {
		t.Fatal(err)
	}
	pend, _ := st.PendingOutbox(ctx, "old-conv")
	if err := st.DeadLetterOutbox(ctx, store.DeadLetter{OutboxItem: store.OutboxItem{ID: pend[0].ID}, LastAttemptAt: time.Now(), DeadAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	// What migration 0007 records when it finds content.
	db, err := sql.Open("sqlite", filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO legacy_plain (pending) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	if found := scanDataDir(t, dir, map[string]string{"plain": "OLD-PLAIN"}); len(found) == 0 {
		t.Fatal("the legacy content is not in the clear before the upgrade: the test set-up is wrong")
	}

	cfg.Listen, cfg.PublicURL, cfg.InsecureHTTP = "127.0.0.1:0", "http://127.0.0.1:1", true
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start over a legacy data directory: %v", err)
	}
	st2 := srv.Store()
	if p, _ := st2.LegacyPending(ctx); p {
		t.Fatal("the legacy marker is still set after start")
	}
	lg := conversation.NewLog(st2, srv.Codec())
	entries, err := lg.Read(ctx, "old-conv", -1, 10)
	if err != nil || len(entries) != 2 || !strings.Contains(string(entries[0].JSON), "OLD-PLAIN-one") || !strings.Contains(string(entries[1].JSON), "OLD-PLAIN-two") {
		t.Fatalf("history after the upgrade = %d entries, %v", len(entries), err)
	}
	for _, id := range []string{"file-one", "file-two"} {
		a, err := st2.GetAttachment(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if a, err = lg.OpenAttachment(ctx, a); err != nil || string(a.Data) != "OLD-PLAIN-FILE" || a.Name != "OLD-PLAIN-NAME-"+id[len(id)-3:]+".txt" {
			t.Fatalf("file %s after the upgrade = %q named %q, %v", id, a.Data, a.Name, err)
		}
	}
	for _, kind := range []string{store.LegacyActivity, store.LegacyOutbox, store.LegacyDeadLetter, store.LegacyAttachment, store.LegacyAttachmentName} {
		if left, _ := st2.ListLegacy(ctx, kind, store.LegacyBlob{}, 10); len(left) != 0 {
			t.Fatalf("%d plain %s rows left", len(left), kind)
		}
	}
	// Nor do the plain bytes linger in the files (free pages, the WAL),
	// while the server runs.
	if found := scanDataDir(t, dir, map[string]string{"plain": "OLD-PLAIN"}); len(found) != 0 {
		t.Fatalf("legacy content still in the clear after sealing: %v", found)
	}
	_ = st2.Close()
}
