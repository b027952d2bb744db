package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// testOutboxStats: OutboxStats counts every pending item, due or in
// backoff, of every conversation, and dates the oldest; dead letters and
// completed items are not pending.
func testOutboxStats(t *testing.T, s store.Store) {
	ctx := context.Background()
	if n, oldest, err := s.OutboxStats(ctx); n != 0 || !oldest.IsZero() || err != nil {
		t.Fatalf("empty OutboxStats = %d, %v, %v", n, oldest, err)
	}
	seed(t, s)
	conv(t, s, "c1")
	conv(t, s, "c2")
	ob := func(id string) store.NewOutbox {
		return store.NewOutbox{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return id, []byte(id), nil }}
	}
	before := time.Now()
	if _, err := s.Append(ctx, "c1", nil, []store.NewOutbox{ob("a1")}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	time.Sleep(5 * time.Millisecond)
	for _, c := range []string{"c1", "c2"} {
		if _, err := s.Append(ctx, c, nil, []store.NewOutbox{ob(c + "-2")}); err != nil {
			t.Fatal(err)
		}
	}
	n, oldest, err := s.OutboxStats(ctx)
	if err != nil || n != 3 || oldest.Before(before.Add(-time.Millisecond)) || oldest.After(after.Add(time.Millisecond)) {
		t.Fatalf("OutboxStats = %d, %v, %v; want 3 and the first append's time (%v..%v)", n, oldest, err, before, after)
	}
	pend, _ := s.PendingOutbox(ctx, "c1")
	if len(pend) != 2 {
		t.Fatalf("PendingOutbox = %+v", pend)
	}
	// In backoff: still pending.
	if err := s.RetryOutbox(ctx, pend[1].ID, 1, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// The oldest becomes a dead letter: no longer pending, nor the oldest.
	if err := s.DeadLetterOutbox(ctx, store.DeadLetter{OutboxItem: pend[0], LastAttemptAt: time.Now(), LastStatus: 400, LastError: "refused", DeadAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	n, oldest2, err := s.OutboxStats(ctx)
	if err != nil || n != 2 || !oldest2.After(oldest) {
		t.Fatalf("after a dead letter: OutboxStats = %d, %v, %v (the oldest was %v)", n, oldest2, err, oldest)
	}
	c2, _ := s.PendingOutbox(ctx, "c2")
	if err := s.CompleteOutbox(ctx, pend[1].ID, c2[0].ID); err != nil {
		t.Fatal(err)
	}
	if n, oldest, err := s.OutboxStats(ctx); n != 0 || !oldest.IsZero() || err != nil {
		t.Fatalf("after completion: OutboxStats = %d, %v, %v", n, oldest, err)
	}
}
