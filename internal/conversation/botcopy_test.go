package conversation_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// tinkSealer seals every scope under one Tink AEAD (what the envelope
// does per conversation; the key is not what this test is about).
type tinkSealer struct{ a tink.AEAD }

func (tinkSealer) Prepare(context.Context, string) error { return nil }
func (s tinkSealer) Seal(_ context.Context, _ string, pt, aad []byte) ([]byte, error) {
	return s.a.Encrypt(pt, aad)
}
func (s tinkSealer) Open(_ context.Context, _ string, ct, aad []byte) ([]byte, error) {
	return s.a.Decrypt(ct, aad)
}

// The copy of an activity sealed for the bot (an outbox row: the bot's
// recipient, its download links) is bound to being the bot's: copied into
// the client's log in the same conversation (someone with write access to
// the database, not to the keys), it fails to decrypt instead of being
// served to the client, and a log body copied into the outbox is refused
// on its way to the bot.
func TestBotCopyDoesNotDecryptAsLogEntry(t *testing.T) {
	ctx := context.Background()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	a, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	codec := conversation.SealedCodec{S: tinkSealer{a}}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	if err := st.CreateBot(ctx, store.Bot{ID: "b", Name: "b", Endpoint: "http://127.0.0.1:1/api/messages", InsecureNoAuth: true, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSite(ctx, store.Site{ID: "s", BotID: "b", Name: "s", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateConversation(ctx, store.Conversation{ID: "c1", BotID: "b", SiteID: "s", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	lg := conversation.NewLog(st, codec)
	act := conversation.Activity{"type": json.RawMessage(`"message"`), "text": json.RawMessage(`"for the client"`)}
	if _, err := lg.Append(ctx, "c1", []conversation.Item{{Activity: act, Visibility: store.VisibleAll, BotID: "b",
		ToBot: func(s conversation.Activity) (conversation.Activity, error) {
			s.Set("channelData", map[string]string{"botOnly": "secret link"})
			return s, nil
		}}}); err != nil {
		t.Fatal(err)
	}
	recs, err := st.Read(ctx, "c1", -1, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("Read = %d records, %v", len(recs), err)
	}
	items, err := st.PendingOutbox(ctx, "c1")
	if err != nil || len(items) != 1 {
		t.Fatalf("PendingOutbox = %d, %v", len(items), err)
	}
	// The bot's copy pasted over the client's entry.
	if err := st.ReplaceRecord(ctx, "c1", recs[0].Seq, store.VisibleAll, items[0].Body); err != nil {
		t.Fatal(err)
	}
	entries, err := lg.Read(ctx, "c1", -1, 10)
	if err == nil {
		got := ""
		for _, e := range entries {
			got += string(e.JSON)
		}
		if strings.Contains(got, "botOnly") {
			t.Fatalf("the bot's copy, pasted into the log, was served to the client: %s", got)
		}
		t.Fatalf("the pasted bot copy read without error: %s", got)
	}
	// And the other way: a log body is not a delivery.
	if _, err := codec.DecodeOutbox(ctx, "c1", recs[0].Body); err == nil {
		t.Fatal("a log body decrypted as the bot's copy")
	}
}
