package guard

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// clock is a fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestMemoryBucketTriggersAndRecovers(t *testing.T) {
	c := newClock()
	m := NewMemory(MemoryConfig{Now: c.Now})
	rule := Rule{Name: "post/conversation", PerSecond: 1, Burst: 3}
	a, b := Bucket{rule, "conv-a"}, Bucket{rule, "conv-b"}
	for i := 0; i < 3; i++ {
		if w := m.Allow(a); w != 0 {
			t.Fatalf("event %d within burst refused (wait %v)", i, w)
		}
	}
	w := m.Allow(a)
	if w <= 0 || w > time.Second {
		t.Fatalf("over burst: wait %v, want (0, 1s]", w)
	}
	if m.Allow(b) != 0 {
		t.Fatal("another key was throttled by the first one")
	}
	if m.Refused("post/conversation") != 1 {
		t.Fatalf("refusals counted %v, want 1", m.Refused("post/conversation"))
	}
	c.Advance(w)
	if w := m.Allow(a); w != 0 {
		t.Fatalf("after waiting the announced time: still refused (%v)", w)
	}
	if m.Allow(a) == 0 {
		t.Fatal("one token refilled, two taken")
	}
	c.Advance(time.Hour)
	for i := 0; i < 3; i++ {
		if m.Allow(a) != 0 {
			t.Fatal("bucket did not refill to its burst")
		}
	}
}

// A refusal by one bucket takes nothing from the others: a throttled
// conversation does not spend its address's budget.
func TestMemoryAllOrNothing(t *testing.T) {
	c := newClock()
	m := NewMemory(MemoryConfig{Now: c.Now})
	addr := Rule{Name: "post/address", PerSecond: 1, Burst: 2}
	conv := Rule{Name: "post/conversation", PerSecond: 1, Burst: 1}
	if m.Allow(Bucket{addr, "1.2.3.4"}, Bucket{conv, "c1"}) != 0 {
		t.Fatal("first refused")
	}
	for i := 0; i < 5; i++ {
		if m.Allow(Bucket{addr, "1.2.3.4"}, Bucket{conv, "c1"}) == 0 {
			t.Fatal("conversation over its burst allowed")
		}
	}
	if m.Allow(Bucket{addr, "1.2.3.4"}, Bucket{conv, "c2"}) != 0 {
		t.Fatal("refusals by the conversation bucket spent the address's tokens")
	}
}

func TestMemoryOffRuleAllowsAll(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	for i := 0; i < 1000; i++ {
		if m.Allow(Bucket{Rule{Name: "x"}, "k"}) != 0 {
			t.Fatal("off rule refused")
		}
	}
	if m.Len() != 0 {
		t.Fatal("off rule kept state")
	}
}

// Idle buckets (refilled) are swept; an attacker rotating keys cannot grow
// a table past its cap, and never evicts another rule's buckets.
func TestMemoryBounded(t *testing.T) {
	c := newClock()
	m := NewMemory(MemoryConfig{Now: c.Now, MaxKeys: 1000, SweepEvery: time.Minute})
	conv := Rule{Name: "post/conversation", PerSecond: 0.001, Burst: 1}
	m.Allow(Bucket{conv, "victim"}) // drained for ~17 minutes
	addr := Rule{Name: "post/address", PerSecond: 0.001, Burst: 1}
	for i := 0; i < 20_000; i++ {
		m.Allow(Bucket{addr, fmt.Sprint("10.0.", i/256, ".", i%256)})
		if n := m.Len(); n > 1001 {
			t.Fatalf("after %d keys the limiter holds %d buckets, cap 1000", i+1, n)
		}
	}
	if m.Allow(Bucket{conv, "victim"}) == 0 {
		t.Fatal("key rotation in one rule evicted another rule's drained bucket")
	}
	// Idle buckets go at the next sweep.
	c.Advance(24 * time.Hour)
	m.Allow(Bucket{addr, "fresh"})
	if n := m.Len(); n > 2 {
		t.Fatalf("after a day idle %d buckets remain", n)
	}
}

// The figure for the README: memory per tracked key.
func TestMemoryPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	const n = 50_000
	m := NewMemory(MemoryConfig{MaxKeys: n})
	rule := Rule{Name: "post/address", PerSecond: 1, Burst: 10}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		m.Allow(Bucket{rule, fmt.Sprintf("2001:db8:%x:%x::/64", i>>16, i&0xffff)})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%d keys: %.0f bytes per key, %.1f MB per full table", m.Len(), per, per*n/1e6)
	if per > 512 {
		t.Fatalf("%.0f bytes per key, want at most 512", per)
	}
	runtime.KeepAlive(m)
}
