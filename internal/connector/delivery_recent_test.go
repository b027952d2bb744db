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

// TestLateWatchAfterSustainedLoad: the POST handler watches an activity
// once its append has returned, so the delivery may finish first and its
// result must wait in recent. Under sustained load every round trip used
// to leave a second, unclaimed result there (the bot's reply answered the
// client, then the delivery's success was kept too), recent reached its
// bound within seconds, and a late Watch then never got its result: the
// client was answered "bot timed out" after bot_wait although the bot had
// the activity (the benchmark's errors at 100 conversations).
func TestLateWatchAfterSustainedLoad(t *testing.T) {
	d := newBareDelivery()
	for i := range maxRecent + 10 {
		id := conversation.ActivityID("c1", int64(i))
		ch, cancel := d.Watch(id)
		d.BotReplied("c1", id, "message") // the echo, before the bot's POST answers
		d.delivered(id)                   // the delivery's POST answered
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("round trip %d: %v", i, err)
			}
		default:
			t.Fatalf("round trip %d: the waiting client got no result", i)
		}
		cancel()
	}
	d.mu.Lock()
	n := len(d.recent)
	d.mu.Unlock()
	if n != 0 {
		t.Fatalf("recent holds %d results nobody will claim, want 0", n)
	}

	late := conversation.ActivityID("c2", 0)
	d.BotReplied("c2", late, "message") // nobody waiting yet
	d.delivered(late)
	ch, cancel := d.Watch(late)
	defer cancel()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("late Watch: %v", err)
		}
	default:
		t.Fatal("a Watch just after the delivery did not get its result")
	}
}

// TestRecentFullKeepsNewest: at its bound, recent makes room for a new
// result (its client's Watch is the likeliest to come) instead of
// dropping it.
func TestRecentFullKeepsNewest(t *testing.T) {
	d := newBareDelivery()
	now := time.Now()
	d.mu.Lock()
	for i := range maxRecent {
		d.recent[conversation.ActivityID("old", int64(i))] = outcome{at: now}
	}
	d.prunedAt = now
	d.mu.Unlock()
	id := conversation.ActivityID("c1", 1)
	d.notify(id, nil)
	d.mu.Lock()
	n := len(d.recent)
	d.mu.Unlock()
	if n > maxRecent {
		t.Fatalf("recent holds %d results, bound %d", n, maxRecent)
	}
	ch, cancel := d.Watch(id)
	defer cancel()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("the newest result was dropped at the bound")
	}
}
