package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// storeWith opens a store in a temporary directory with one bot, one site
// and conversations c0 … c<convs-1>.
func storeWith(tb testing.TB, convs int) *sqlite.Store {
	tb.Helper()
	return storeWithOpts(tb, convs, sqlite.Options{})
}

// storeWithOpts is storeWith opened with opt.
func storeWithOpts(tb testing.TB, convs int, opt sqlite.Options) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.OpenWith(context.Background(), filepath.Join(tb.TempDir(), "parley.db"), opt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	if err := s.CreateBot(ctx, store.Bot{ID: "bot", Name: "b", Endpoint: "http://127.0.0.1/", CreatedAt: time.Now()}); err != nil {
		tb.Fatal(err)
	}
	if err := s.CreateSite(ctx, store.Site{ID: "site", BotID: "bot", CreatedAt: time.Now()}); err != nil {
		tb.Fatal(err)
	}
	for i := range convs {
		if _, err := s.CreateConversation(ctx, store.Conversation{ID: fmt.Sprintf("c%d", i), BotID: "bot", SiteID: "site", UserID: "dl_u", CreatedAt: time.Now()}); err != nil {
			tb.Fatal(err)
		}
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
	s := storeWith(b, 1)
	for b.Loop() {
		appendOne(b, s, "c0")
	}
}

// BenchmarkAppendParallel has many writers on many conversations: group
// commit shares fsyncs between them.
func BenchmarkAppendParallel(b *testing.B) {
	s := storeWith(b, 64)
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
	s := storeWith(b, 1)
	for range 50 {
		appendOne(b, s, "c0")
	}
	for b.Loop() {
		if recs, err := s.Read(context.Background(), "c0", -1, 100); err != nil || len(recs) != 50 {
			b.Fatal(err)
		}
	}
}

// BenchmarkConversationRoundTrip is the store's share of one Direct Line
// round trip, with 10 conversations at once as in `parley bench --clients
// 10`: the user's activity with its outbox item, then the bot's reply,
// each a durable commit the next step waits for; outbox completions are
// flushed in batches by the delivery worker, here every 20 round trips.
func BenchmarkConversationRoundTrip(b *testing.B) {
	conversationRoundTrip(b, storeWith(b, 10))
}

// BenchmarkConversationRoundTripNormal is the same with store.durability
// normal (synchronous=NORMAL): no fsync to wait for, so fewer requests
// share each commit.
func BenchmarkConversationRoundTripNormal(b *testing.B) {
	conversationRoundTrip(b, storeWithOpts(b, 10, sqlite.Options{SyncNormal: true}))
}

func conversationRoundTrip(b *testing.B, s *sqlite.Store) {
	const convs = 10
	ctx := context.Background()
	var n atomic.Int64
	done := make(chan int64, 1<<16)
	s.SetOutboxListener(func(items []store.OutboxItem) {
		for _, it := range items {
			done <- it.ID
		}
	})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		var ids []int64
		for id := range done {
			if ids = append(ids, id); len(ids) >= 20 {
				if err := s.CompleteOutbox(ctx, ids...); err != nil {
					b.Error(err)
				}
				ids = ids[:0]
			}
		}
	}()
	b.SetParallelism((convs + 1) / 2) // GOMAXPROCS is 2 here
	cpu0, w0 := processCPU(b), processWrites(b)
	c0, _ := s.WriteStats()
	b.RunParallel(func(pb *testing.PB) {
		conv := fmt.Sprintf("c%d", n.Add(1)%convs)
		for pb.Next() {
			_, err := s.Append(ctx, conv,
				[]store.NewRecord{{Build: func(int64) ([]byte, error) { return body, nil }}},
				[]store.NewOutbox{{BotID: "bot", Build: func([]int64) (string, []byte, error) { return "x", body, nil }}})
			if err != nil {
				b.Fatal(err)
			}
			recs, err := s.Append(ctx, conv, []store.NewRecord{{Build: func(int64) ([]byte, error) { return body, nil }}}, nil)
			if err != nil || len(recs) != 1 {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
	b.ReportMetric(float64(processWrites(b)-w0)/float64(b.N), "writes/op")
	commits, _ := s.WriteStats()
	b.ReportMetric(float64(commits-c0)/float64(b.N), "commits/op")
	s.SetOutboxListener(nil)
	close(done)
	<-flushed
}

// processWrites is the process's write system calls so far (syscw in
// /proc/self/io): SQLite writes each WAL frame's header and page
// separately, so this counts the pages a round trip commits.
func processWrites(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io:", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no syscw in /proc/self/io")
	return 0
}

// processCPU is the process's user+system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
