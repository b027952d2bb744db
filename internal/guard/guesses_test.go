package guard

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeSleep advances the fake clock instead of sleeping and records waits.
type fakeSleep struct {
	c     *clock
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeSleep) sleep(_ context.Context, d time.Duration) error {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	return nil
}

func TestGuessesBudgetThenPacedThenRecovered(t *testing.T) {
	c := newClock()
	fs := &fakeSleep{c: c}
	g := NewGuesses(GuessConfig{Budget: 3, Window: 3 * time.Minute, Interval: time.Second, MaxWait: 3 * time.Second, Now: c.Now, Sleep: fs.sleep})
	ctx := context.Background()
	// A success refunds its charge: it does not spend the budget.
	for i := 0; i < 5; i++ {
		adm, _, ok := g.Admit(ctx, "attacker")
		if !ok {
			t.Fatal("within budget: refused")
		}
		adm.Succeeded()
	}
	for i := 0; i < 3; i++ {
		adm, _, ok := g.Admit(ctx, "attacker")
		if !ok {
			t.Fatal("within budget: refused")
		}
		if _, over := adm.Failed(); over {
			t.Fatalf("failure %d: over budget already", i+1)
		}
	}
	if len(fs.waits) != 0 {
		t.Fatalf("within budget, checks waited: %v", fs.waits)
	}
	// Over budget: failures say so, with a wait (one failure refills in 1m).
	adm, _, ok := g.Admit(ctx, "attacker")
	if !ok {
		t.Fatal("first paced check refused")
	}
	wait, over := adm.Failed()
	if !over || wait <= 0 || wait > time.Minute {
		t.Fatalf("4th failure: over=%v wait=%v, want over with a wait up to 1m", over, wait)
	}
	// Further checks from the address are paced, one per second: at most
	// MaxWait/Interval wait, the rest are refused unchecked.
	var admitted, refused int
	for i := 0; i < 10; i++ {
		if _, ra, ok := g.Admit(ctx, "attacker"); ok {
			admitted++
		} else {
			refused++
			if ra <= 0 {
				t.Fatal("refusal without a wait")
			}
		}
	}
	if admitted != 3 || refused != 7 {
		t.Fatalf("paced: %d admitted, %d refused; want 3 and 7", admitted, refused)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}; len(fs.waits) != 3 || fs.waits[0] != want[0] || fs.waits[2] != want[2] {
		t.Fatalf("waits %v, want %v", fs.waits, want)
	}
	// Another address is not affected.
	adm, _, ok = g.Admit(ctx, "owner")
	if !ok || len(fs.waits) != 3 {
		t.Fatal("another address was slowed")
	}
	if _, over := adm.Failed(); over {
		t.Fatal("another address is over budget")
	}
	// Recovery: after the window the budget is whole again.
	c.Advance(3 * time.Minute)
	for i := 0; i < 3; i++ {
		adm, _, ok := g.Admit(ctx, "attacker")
		if !ok {
			t.Fatal("after the window: refused")
		}
		if _, over := adm.Failed(); over {
			t.Fatalf("after the window, failure %d over budget", i+1)
		}
	}
}

// The waiting requests are bounded in total, whatever the addresses.
func TestGuessesWaitingBounded(t *testing.T) {
	c := newClock()
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	g := NewGuesses(GuessConfig{Budget: 1, Window: time.Hour, Interval: time.Second, MaxWait: 5 * time.Second, MaxWaiting: 4, Now: c.Now,
		Sleep: func(ctx context.Context, d time.Duration) error { entered <- struct{}{}; <-release; return nil }})
	ctx := context.Background()
	keys := []string{"a", "b", "c", "d", "e", "f"}
	for _, k := range keys {
		if adm, _, ok := g.Admit(ctx, k); !ok { // spends the budget of 1
			t.Fatal("within budget: refused")
		} else {
			adm.Failed()
		}
		if _, _, ok := g.Admit(ctx, k); !ok { // over budget: takes the address's free slot
			t.Fatal("first paced check refused")
		}
	}
	var wg sync.WaitGroup
	results := make(chan bool, len(keys))
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, ok := g.Admit(ctx, k)
			results <- ok
		}()
	}
	for i := 0; i < 4; i++ {
		<-entered
	}
	// The other two are refused without waiting, while four wait.
	var ok, refused int
	for i := 0; i < 2; i++ {
		if <-results {
			t.Fatal("a fifth request waits (cap 4)")
		}
		refused++
	}
	if g.Waiting() != 4 {
		t.Fatalf("%d waiting, cap 4", g.Waiting())
	}
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		if r {
			ok++
		} else {
			refused++
		}
	}
	if ok != 4 || refused != 2 {
		t.Fatalf("%d admitted, %d refused; want 4 and 2", ok, refused)
	}
}

// Concurrent requests cannot overdraw the failure budget: each check
// within it is charged before the credential is looked at.
func TestGuessesConcurrentBudget(t *testing.T) {
	c := newClock()
	g := NewGuesses(GuessConfig{Budget: 3, Now: c.Now, Sleep: func(context.Context, time.Duration) error { return nil }})
	var wg sync.WaitGroup
	var mu sync.Mutex
	charged, checked := 0, 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			adm, _, ok := g.Admit(context.Background(), "attacker")
			mu.Lock()
			defer mu.Unlock()
			if ok {
				checked++
			}
			if adm.charged {
				charged++
			}
		}()
	}
	wg.Wait()
	// 3 within the budget, then the paced lane: 1 at once and 5 waiting
	// (MaxWait 5s at one per second); the rest are refused unchecked.
	if charged != 3 || checked != 9 {
		t.Fatalf("%d charged, %d checked; want 3 and 9", charged, checked)
	}
}
