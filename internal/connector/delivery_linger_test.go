package connector

import (
	"testing"
	"time"
)

// A lane with nothing left waits laneLinger for its conversation's next
// item: the next round trip is delivered by the same lane (no new
// goroutine, no stack to grow again), and an idle conversation's lane ends.
func TestDeliveryLaneLingersForTheNextItem(t *testing.T) {
	r := newRig(t, nil, "c1")
	lane := func() *laneState {
		r.d.mu.Lock()
		defer r.d.mu.Unlock()
		return r.d.lanes["c1"]
	}
	delivered := func(n int) func() bool { return func() bool { return len(r.bot.received("c1")) == n } }
	r.send(t, "c1", "message")
	r.until(t, time.Minute, 100*time.Millisecond, "first item delivered", delivered(1))
	first := lane()
	if first == nil {
		t.Fatal("the lane ended as soon as its queue was empty")
	}
	r.send(t, "c1", "message")
	r.until(t, time.Minute, 100*time.Millisecond, "second item delivered", delivered(2))
	if l := lane(); l != first {
		t.Fatalf("the second item got a new lane (%p, first %p)", l, first)
	}
	deadline := time.Now().Add(laneLinger + 5*time.Second)
	for lane() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("an idle lane still runs %v after its last item", laneLinger+5*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.send(t, "c1", "message")
	r.until(t, time.Minute, 100*time.Millisecond, "an item after the lane ended delivered", delivered(3))
}
