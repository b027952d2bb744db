package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

func benchStore(b *testing.B, convs int) *sqlite.Store {
	b.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	_ = s.CreateBot(ctx, store.Bot{ID: "bot", Name: "b", Endpoint: "http://127.0.0.1/", CreatedAt: time.Now()})
	_ = s.CreateSite(ctx, store.Site{ID: "site", BotID: "bot", CreatedAt: time.Now()})
	for i := range convs {
		_, _ = s.CreateConversation(ctx, store.Conversation{ID: fmt.Sprintf("c%d", i), BotID: "bot", SiteID: "site", UserID: "dl_u", CreatedAt: time.Now()})
	}
	return s
}

var body = make([]byte, 600) // a typical activity

func appendOne(b *testing.B, s *sqlite.Store, conv string) {
	_, err := s.Append(context.Background(), conv,
		[]store.NewRecord{{Build: func(int64) ([]byte, error) { return body, nil }}},
		[]store.NewOutbox{{BotID: "bot", Build: func([]int64) (string, []byte, error) { return "x", body, nil }}})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAppendSerial is one durable append (activity + outbox item,
// fsync) at a time.
func BenchmarkAppendSerial(b *testing.B) {
	s := benchStore(b, 1)
	for b.Loop() {
		appendOne(b, s, "c0")
	}
}

// BenchmarkAppendParallel has many writers on many conversations: group
// commit shares fsyncs between them.
func BenchmarkAppendParallel(b *testing.B) {
	s := benchStore(b, 64)
	var n atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		conv := fmt.Sprintf("c%d", n.Add(1)%64)
		for pb.Next() {
			appendOne(b, s, conv)
		}
	})
}

func BenchmarkRead50(b *testing.B) {
	s := benchStore(b, 1)
	for range 50 {
		appendOne(b, s, "c0")
	}
	for b.Loop() {
		if recs, err := s.Read(context.Background(), "c0", -1, 100); err != nil || len(recs) != 50 {
			b.Fatal(err)
		}
	}
}
