package connector

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

func newStoreDelivery(tb testing.TB) *Delivery {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "parley.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return NewDelivery(st, conversation.PlainCodec{}, nil, nil, DeliveryConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// Flushed ids stay skipped for doneKeep and are forgotten after it; an id
// finished again meanwhile is not forgotten with its earlier flush.
func TestFlushedIDsForgottenAfterDoneKeep(t *testing.T) {
	d := newStoreDelivery(t)
	for id := int64(1); id <= 3; id++ {
		d.finish(id)
	}
	d.flush()
	for id := int64(1); id <= 3; id++ {
		if !d.isDone(id) {
			t.Fatalf("id %d forgotten at once after its flush", id)
		}
	}
	// Ids 1 and 2 were flushed longer than doneKeep ago.
	old := time.Now().Add(-doneKeep - time.Second)
	d.doneMu.Lock()
	for i := range d.flushed {
		if d.flushed[i].id != 3 {
			d.flushed[i].at = old
			d.done[d.flushed[i].id] = old
		}
	}
	d.doneMu.Unlock()
	d.finish(2) // finished again: pending, not forgotten with its old flush
	d.finish(4)
	d.flush()
	for id, want := range map[int64]bool{1: false, 2: true, 3: true, 4: true} {
		if got := d.isDone(id); got != want {
			t.Errorf("isDone(%d) = %v, want %v", id, got, want)
		}
	}
	d.doneMu.Lock()
	n := len(d.flushed)
	d.doneMu.Unlock()
	if n != 3 { // the expired entries of 1 and 2 went; 3, 2 again and 4 stay
		t.Errorf("%d flushed entries kept, want 3", n)
	}
}

// BenchmarkFlushBusy is one flush while the ids of the last doneKeep (here
// 20,000, about 10 s of round trips at 2,000/s) are remembered.
func BenchmarkFlushBusy(b *testing.B) {
	d := newStoreDelivery(b)
	for id := int64(1); id <= 20_000; id++ {
		d.finish(id)
	}
	d.flush()
	id := int64(20_000)
	for b.Loop() {
		id++
		d.finish(id)
		d.flush()
	}
}
