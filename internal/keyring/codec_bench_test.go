package keyring_test

import (
	"context"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
)

// A Web Chat message as Parley stores it (about 600 bytes).
var storedActivity = []byte(`{"conversation":{"id":"abcdefghijklmnopqrstuv"},"id":"abcdefghijklmnopqrstuv|0000042","timestamp":"2026-11-22T11:00:00.1234567Z","type":"message","text":"hello there, how are you?","channelId":"webchat","locale":"en-US","localTimestamp":"2026-11-22T12:00:00+01:00","localTimezone":"Europe/Paris","from":{"id":"dl_abc","name":"","role":"user"},"recipient":{"id":"bot","name":"Bot","role":"bot"},"serviceUrl":"https://chat.example.com/","channelData":{"clientActivityID":"1732269600000abcdef","clientTimestamp":"2026-11-22T11:00:00.000Z"},"entities":[{"type":"ClientCapabilities","requiresBotState":true,"supportsListening":true,"supportsTts":true}]}`)

// BenchmarkCodec is the storage cost of one activity in a round trip: a
// round trip encodes it twice (the log's copy and the bot's outbox copy)
// and decodes it twice (the delivery and a client's read). Compare the
// sealed codec with the plain one, then with the gateway's CPU per round
// trip from `parley bench`.
func BenchmarkCodec(b *testing.B) {
	ctx := context.Background()
	v := newEnv(b)
	const conv = "abcdefghijklmnopqrstuv"
	now := time.Now()
	if err := v.st.CreateBot(ctx, store.Bot{ID: "bot", Name: "b", Endpoint: "https://bot.example/api/messages", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	if err := v.st.CreateSite(ctx, store.Site{ID: "site", BotID: "bot", Name: "w", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	if _, err := v.st.CreateConversation(ctx, store.Conversation{ID: conv, BotID: "bot", SiteID: "site", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		codec conversation.Codec
	}{{"plain", conversation.PlainCodec{}}, {"sealed", conversation.SealedCodec{S: v.e}}} {
		b.Run(c.name, func(b *testing.B) {
			if err := c.codec.Prepare(ctx, conv); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(storedActivity)))
			for b.Loop() {
				// The log's copy and the bot's copy: sealed once, opened
				// once each (a client's read, the delivery).
				blob, err := c.codec.EncodeRecord(ctx, conv, 42, storedActivity)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.codec.DecodeRecord(ctx, conv, 42, blob); err != nil {
					b.Fatal(err)
				}
				if blob, err = c.codec.EncodeOutbox(ctx, conv, storedActivity); err != nil {
					b.Fatal(err)
				}
				if _, err := c.codec.DecodeOutbox(ctx, conv, blob); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPrepareNewConversation is the one-time cost of a conversation's
// data key: generate, wrap under the KEK, store.
func BenchmarkPrepareNewConversation(b *testing.B) {
	ctx := context.Background()
	v := newEnv(b)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if err := v.e.Prepare(ctx, "test:bench-"+itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(i int) string {
	var buf [20]byte
	n := len(buf)
	for i > 0 || n == len(buf) {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
	}
	return string(buf[n:])
}
