package keyring

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// Concurrent rotations of one purpose (two operators, two replicas'
// tooling): each one checked a next key; none may activate a key another
// rotation made meanwhile (it would sign with a key no bot has fetched,
// skipping the age check). A rotation that lost says so.
func TestConcurrentRotationsNeverActivateABrandNewKey(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	// The next key must be an hour old before a rotation uses it; the
	// first keys were made two hours ago.
	p := LogPseudonymPurpose()
	p.MinNextAge = time.Hour
	t0 := time.Now()
	newSet := func(now time.Time) *KeySet {
		ks := NewKeySet(KeySetConfig{Store: st, Keyring: testKeyring(t), Purposes: []Purpose{p}, Now: func() time.Time { return now }})
		if err := ks.Load(ctx); err != nil {
			t.Fatal(err)
		}
		return ks
	}
	newSet(t0.Add(-2 * time.Hour))
	before, err := st.ListKeys(ctx, PurposeLogPseudonym)
	if err != nil {
		t.Fatal(err)
	}
	existed := map[string]bool{}
	for _, k := range before {
		existed[k.ID] = true
	}
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won, lost int
	for i := 0; i < n; i++ {
		ks := newSet(t0) // each its own process
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ks.Rotate(ctx, PurposeLogPseudonym, RotateOptions{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrConflict), errors.Is(err, ErrTooSoon):
				lost++ // raced the winner, or came after it (its new next key is too young)
			default:
				t.Errorf("rotate: %v", err)
			}
		}()
	}
	wg.Wait()
	after, _ := st.ListKeys(ctx, PurposeLogPseudonym)
	for _, k := range after {
		if !k.ActivatedAt.IsZero() && !existed[k.ID] {
			t.Errorf("key %s, made during the concurrent rotations, was activated", k.ID)
		}
	}
	if won != 1 || won+lost != n {
		t.Fatalf("%d rotations won, %d lost; want exactly 1 winner (only one key was waiting)", won, lost)
	}
}
