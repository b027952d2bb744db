package connector

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// completeFails is the store whose CompleteOutbox fails while fail is set
// (the database file removed, the disk full).
type completeFails struct {
	*sqlite.Store
	fail atomic.Bool
}

func (c *completeFails) CompleteOutbox(ctx context.Context, ids ...int64) error {
	if c.fail.Load() {
		return fmt.Errorf("complete outbox: %w", store.ErrStoreReplaced)
	}
	return c.Store.CompleteOutbox(ctx, ids...)
}

// A delivery the bot acknowledged whose removal from the outbox cannot
// commit is not sent again by this process: it stays skipped while the
// removal is retried, and goes once the store commits again (review: every
// outbox poll delivered it again, once a second, until a restart).
func TestDeliveryNotRepeatedWhileCompletionFails(t *testing.T) {
	var cf *completeFails
	r := newRigWrapped(t, conversation.PlainCodec{}, func(st *sqlite.Store) store.Store {
		cf = &completeFails{Store: st}
		cf.fail.Store(true)
		return cf
	}, nil, "c1")
	id := r.send(t, "c1", "message")
	r.until(t, time.Minute, time.Second, "the bot never got the activity", func() bool { return len(r.bot.received("c1")) == 1 })
	// Outbox polls (every second of the fake clock) while completion fails.
	for range 20 {
		r.clock.Advance(time.Second)
		time.Sleep(60 * time.Millisecond)
	}
	if got := r.bot.received("c1"); !slices.Equal(got, []string{id}) {
		t.Fatalf("while the completion failed the bot got %v, want it once", got)
	}
	cf.fail.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		pend, err := r.st.PendingOutbox(context.Background(), "c1")
		if err == nil && len(pend) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox still holds %d items after the store recovered (%v)", len(pend), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := r.bot.received("c1"); len(got) != 1 {
		t.Fatalf("after recovery the bot got %v, want it once", got)
	}
}
