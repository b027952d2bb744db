package connector

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
)

func newBareDelivery() *Delivery {
	return NewDelivery(nil, conversation.PlainCodec{}, nil, nil, DeliveryConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// TestRecentResultClaimedOnceAndExpires: a result nobody waited for is
// handed to the first Watch after it, once; an expired one is not, even
// before the periodic sweep removed it.
func TestRecentResultClaimedOnceAndExpires(t *testing.T) {
	d := newBareDelivery()
	failed := errors.New("refused")
	id := conversation.ActivityID("c1", 3)
	d.notify(id, failed)
	ch, cancel := d.Watch(id)
	select {
	case err := <-ch:
		if !errors.Is(err, failed) {
			t.Fatalf("Watch after the result = %v, want %v", err, failed)
		}
	default:
		t.Fatal("Watch after the result did not get it")
	}
	cancel()
	ch, cancel = d.Watch(id)
	select {
	case err := <-ch:
		t.Fatalf("a second Watch got the claimed result again: %v", err)
	default:
	}
	cancel()

	old := conversation.ActivityID("c1", 4)
	d.mu.Lock()
	d.recent[old] = outcome{err: failed, at: time.Now().Add(-recentTTL - time.Second)}
	d.prunedAt = time.Now() // the sweep has not run since it expired
	d.mu.Unlock()
	ch, cancel = d.Watch(old)
	defer cancel()
	select {
	case err := <-ch:
		t.Fatalf("Watch got a result older than recentTTL: %v", err)
	default:
	}
}

// TestRecentSweptPeriodically: expired results leave the map at the next
// sweep, so the map never holds results longer than recentTTL plus
// recentPruneEvery.
func TestRecentSweptPeriodically(t *testing.T) {
	d := newBareDelivery()
	old := conversation.ActivityID("c1", 1)
	d.mu.Lock()
	d.recent[old] = outcome{at: time.Now().Add(-recentTTL - time.Second)}
	d.prunedAt = time.Now().Add(-recentPruneEvery)
	d.mu.Unlock()
	d.notify(conversation.ActivityID("c1", 2), nil)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.recent[old]; ok {
		t.Fatal("an expired result survived the sweep")
	}
	if _, ok := d.recent[conversation.ActivityID("c1", 2)]; !ok {
		t.Fatal("the new result was not kept")
	}
}

// BenchmarkNotifyBusy is one delivery result with the unclaimed results
// at their bound, as under sustained load (results of activities whose
// client did not wait stay a minute).
func BenchmarkNotifyBusy(b *testing.B) {
	d := newBareDelivery()
	now := time.Now()
	for i := range 10000 {
		d.recent[conversation.ActivityID("c", int64(i))] = outcome{at: now}
	}
	id := conversation.ActivityID("c", 20000)
	for b.Loop() {
		d.notify(id, nil)
	}
}
