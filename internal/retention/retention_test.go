package retention_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/retention"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// scrubCounter is the real store, counting Scrub calls.
type scrubCounter struct {
	*sqlite.Store
	scrubs atomic.Int32
}

func (s *scrubCounter) Scrub(ctx context.Context) error {
	s.scrubs.Add(1)
	return s.Store.Scrub(ctx)
}

// syncBuffer is a log destination the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// clock is a fake clock the test moves.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.t.Load()) }
func (c *clock) set(t time.Time)     { c.t.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.t.Add(int64(d)) }

type fixture struct {
	logs  syncBuffer
	st    *scrubCounter
	sw    *retention.Sweeper
	clk   *clock
	start time.Time
}

func newFixture(t *testing.T, sites map[string]store.Retention) *fixture {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.CreateBot(ctx, store.Bot{ID: "bot", Name: "b", Endpoint: "http://127.0.0.1:1/api", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for id, r := range sites {
		if err := s.CreateSite(ctx, store.Site{ID: id, BotID: "bot", Name: id, CreatedAt: time.Now(), Retention: r}); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{st: &scrubCounter{Store: s}, clk: &clock{}, start: time.Now()}
	f.clk.set(f.start)
	f.sw = retention.New(f.st, retention.Config{
		Default: 24 * time.Hour, Every: time.Minute, EphemeralHold: time.Minute, EphemeralMax: 15 * time.Minute,
		TombstonesFor: 30 * 24 * time.Hour, Now: f.clk.now,
	}, slog.New(slog.NewTextHandler(&f.logs, nil)))
	return f
}

// conv starts a conversation on site and appends n activities (the store
// stamps them with the real clock: the fake one starts there).
func (f *fixture) conv(t *testing.T, id, site string, n int, end bool, toBot bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.st.CreateConversation(ctx, store.Conversation{ID: id, BotID: "bot", SiteID: site, UserID: "dl_" + id, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.PutDataKey(ctx, store.DataKey{Scope: store.DataKeyScope(id), KEKID: "kek", Wrapped: []byte("w"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := store.NewRecord{Build: func(int64) ([]byte, error) { return []byte("body"), nil }}
		r.EndsConversation = end && i == n-1
		var out []store.NewOutbox
		if toBot {
			out = []store.NewOutbox{{BotID: "bot", Build: func([]int64) (string, []byte, error) { return "a", []byte("b"), nil }}}
		}
		if _, err := f.st.Append(ctx, id, []store.NewRecord{r}, out); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) exists(t *testing.T, id string) bool {
	t.Helper()
	_, err := f.st.GetConversation(context.Background(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func (f *fixture) sweep(t *testing.T) retention.Result {
	t.Helper()
	res, err := f.sw.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDefaultAndAfterPolicies(t *testing.T) {
	f := newFixture(t, map[string]store.Retention{
		"default": {},
		"short":   {Mode: store.RetentionAfter, After: 30 * time.Minute},
		"long":    {Mode: store.RetentionAfter, After: 2 * 365 * 24 * time.Hour},
	})
	f.conv(t, "d1", "default", 2, false, false)
	f.conv(t, "s1", "short", 2, false, false)
	f.conv(t, "l1", "long", 2, false, false)

	f.clk.add(29 * time.Minute)
	if res := f.sweep(t); len(res.Deleted) != 0 || f.st.scrubs.Load() != 0 {
		t.Fatalf("at 29m: deleted %+v, %d scrubs; want nothing", res.Deleted, f.st.scrubs.Load())
	}
	// 30m after the last activity, plus the mark's granularity (1m).
	f.clk.add(3 * time.Minute)
	res := f.sweep(t)
	if len(res.Deleted) != 1 || res.Deleted[0].ConversationID != "s1" || res.Deleted[0].Activities != 2 || res.Deleted[0].DataKeyScope != "conv:s1" {
		t.Fatalf("at 32m: deleted %+v; want s1 with its 2 activities and key", res.Deleted)
	}
	if f.exists(t, "s1") || !f.exists(t, "d1") || !f.exists(t, "l1") {
		t.Fatal("at 32m: only s1 must be gone")
	}
	if _, err := f.st.GetDataKey(context.Background(), "conv:s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("s1's data key: %v, want destroyed", err)
	}
	if f.st.scrubs.Load() != 1 {
		t.Fatalf("%d scrubs after a sweep that deleted, want 1", f.st.scrubs.Load())
	}
	if d, p := f.sw.Totals(); d != 1 || p != 0 {
		t.Fatalf("Totals = %d deleted, %d pruned; want 1, 0", d, p)
	}
	f.clk.set(f.start.Add(24*time.Hour + time.Minute))
	if res := f.sweep(t); len(res.Deleted) != 0 {
		t.Fatalf("at 24h01: deleted %+v; the mark's granularity is added, never taken off", res.Deleted)
	}
	f.clk.set(f.start.Add(24*time.Hour + 2*time.Minute))
	if res := f.sweep(t); len(res.Deleted) != 1 || res.Deleted[0].ConversationID != "d1" {
		t.Fatalf("at 24h02: deleted %+v; want d1 (the 24 h default)", res.Deleted)
	}
	f.clk.set(f.start.Add(365 * 24 * time.Hour))
	if res := f.sweep(t); len(res.Deleted) != 0 || !f.exists(t, "l1") {
		t.Fatalf("at 1y: deleted %+v; the 2y site's conversation must stay", res.Deleted)
	}
}

// Activity keeps a conversation: the idle time counts from the last one,
// not from the start.
func TestLastActivityCounts(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, map[string]store.Retention{"s": {Mode: store.RetentionAfter, After: time.Hour}})
	started := time.Now().Add(-2 * time.Hour)
	if _, err := f.st.CreateConversation(ctx, store.Conversation{ID: "c", BotID: "bot", SiteID: "s", CreatedAt: started}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.CreateConversation(ctx, store.Conversation{ID: "quiet", BotID: "bot", SiteID: "s", CreatedAt: started}); err != nil {
		t.Fatal(err)
	}
	later := time.Now()
	if _, err := f.st.Append(ctx, "c", []store.NewRecord{{Build: func(int64) ([]byte, error) { return []byte("x"), nil }}}, nil); err != nil {
		t.Fatal(err)
	}
	f.clk.set(later.Add(time.Hour - time.Second))
	if res := f.sweep(t); len(res.Deleted) != 1 || res.Deleted[0].ConversationID != "quiet" {
		t.Fatalf("an hour after the last activity of c: deleted %+v; want only the quiet one", res.Deleted)
	}
	f.clk.set(later.Add(time.Hour + time.Minute + time.Second))
	if res := f.sweep(t); len(res.Deleted) != 1 {
		t.Fatalf("c not swept an hour (and the mark's granularity) after its last activity")
	}
}

func TestOnEndOfConversation(t *testing.T) {
	f := newFixture(t, map[string]store.Retention{
		"end":    {Mode: store.RetentionOnEnd},
		"endcap": {Mode: store.RetentionOnEnd, After: time.Hour},
	})
	f.conv(t, "ended", "end", 3, true, false)
	f.conv(t, "open", "end", 3, false, false)
	f.conv(t, "capped", "endcap", 1, false, false)
	res := f.sweep(t)
	if len(res.Deleted) != 1 || res.Deleted[0].ConversationID != "ended" {
		t.Fatalf("first sweep deleted %+v; want the ended conversation at once", res.Deleted)
	}
	f.clk.add(time.Hour + 2*time.Minute)
	if res := f.sweep(t); len(res.Deleted) != 1 || res.Deleted[0].ConversationID != "capped" {
		t.Fatalf("after 1h: deleted %+v; want the capped one only", res.Deleted)
	}
	f.clk.add(24 * time.Hour)
	if res := f.sweep(t); len(res.Deleted) != 1 || res.Deleted[0].ConversationID != "open" {
		t.Fatalf("after 25h: deleted %+v; want the open one (default cap)", res.Deleted)
	}
}

func TestEphemeral(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, map[string]store.Retention{"eph": {Mode: store.RetentionEphemeral}, "keep": {}})
	f.conv(t, "delivered", "eph", 3, false, false)
	f.conv(t, "pending", "eph", 2, false, true) // the bot does not have them
	f.conv(t, "other", "keep", 3, false, false)
	// Within the hold, nothing goes.
	if res := f.sweep(t); res.Pruned != 0 || len(res.Deleted) != 0 {
		t.Fatalf("within the hold: %+v", res)
	}
	f.clk.add(time.Minute + time.Second)
	res := f.sweep(t)
	if res.Pruned != 3 || len(res.Deleted) != 0 {
		t.Fatalf("after the hold: pruned %d, deleted %d; want the delivered conversation's 3", res.Pruned, len(res.Deleted))
	}
	if recs, _ := f.st.Read(ctx, "delivered", -1, 10); len(recs) != 1 || recs[0].Visibility != store.VisibleNone || len(recs[0].Body) != 0 {
		t.Fatalf("delivered conversation after prune: %+v (want only the emptied head)", recs)
	}
	if recs, _ := f.st.Read(ctx, "pending", -1, 10); len(recs) != 2 {
		t.Fatalf("undelivered activities were pruned: %d left", len(recs))
	}
	if recs, _ := f.st.Read(ctx, "other", -1, 10); len(recs) != 3 {
		t.Fatalf("another site's conversation was pruned: %d left", len(recs))
	}
	if f.st.scrubs.Load() != 1 {
		t.Fatalf("%d scrubs, want 1", f.st.scrubs.Load())
	}
	// The hard cap: everything goes, the conversations with it.
	f.clk.add(15 * time.Minute)
	res = f.sweep(t)
	if len(res.Deleted) != 2 || f.exists(t, "pending") || f.exists(t, "delivered") || !f.exists(t, "other") {
		t.Fatalf("after the cap: deleted %+v", res.Deleted)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	f := newFixture(t, map[string]store.Retention{"s": {}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.sw.Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestEffectivePolicy(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		r    store.Retention
		want retention.Policy
	}{
		{store.Retention{}, retention.Policy{Idle: 24 * time.Hour}},
		{store.Retention{Mode: store.RetentionAfter, After: 90 * 24 * time.Hour}, retention.Policy{Idle: 90 * 24 * time.Hour}},
		{store.Retention{Mode: store.RetentionOnEnd}, retention.Policy{Idle: 24 * time.Hour, Ended: true}},
		{store.Retention{Mode: store.RetentionOnEnd, After: time.Hour}, retention.Policy{Idle: time.Hour, Ended: true}},
		{store.Retention{Mode: store.RetentionEphemeral}, retention.Policy{Idle: 15 * time.Minute, Ended: true, Ephemeral: true}},
	} {
		if got := f.sw.Effective(tc.r); got != tc.want {
			t.Errorf("Effective(%v) = %+v, want %+v", tc.r, got, tc.want)
		}
	}
}

// Retention wins over delivery, loudly: a conversation whose policy ran
// out while its bot had not received an activity goes with that activity,
// and the sweep warns with how many deliveries were dropped (review: they
// went silently, against "delivered or dead-lettered").
func TestRetentionSaysWhatDeliveriesItDropped(t *testing.T) {
	f := newFixture(t, map[string]store.Retention{"s": {}})
	f.conv(t, "undelivered", "s", 2, false, true)
	f.conv(t, "delivered", "s", 1, false, false)
	f.clk.add(25 * time.Hour)
	if res := f.sweep(t); len(res.Deleted) != 2 {
		t.Fatalf("deleted %d conversations, want 2", len(res.Deleted))
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "deliveries_dropped=2") {
		t.Fatalf("no warning with the dropped deliveries:\n%s", logs)
	}
}
