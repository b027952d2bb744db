package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// A KEK destroyed while another goroutine opens it stays destroyed: the
// provider must not cache the material the racing open read before the
// file went.
func TestLocalProviderDestroyWinsOverRacingOpen(t *testing.T) {
	ctx := context.Background()
	p, err := keyring.NewLocalProvider(t.TempDir(), bytes.Repeat([]byte{9}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		h, err := p.CreateKEK(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = p.AEAD(ctx, h) }()
		go func() {
			defer wg.Done()
			if err := p.DestroyKEK(ctx, h); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		if _, err := p.AEAD(ctx, h); err == nil {
			t.Fatalf("round %d: the destroyed KEK still opens (cached by the racing open)", i)
		}
	}
}

// A data key deleted and forgotten (an erasure, the sweeper) while another
// request is loading it is not cached by that request: once both are
// done, the scope has no key in memory either.
func TestEnvelopeForgetWinsOverRacingLoad(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	for i := 0; i < 200; i++ {
		scope := "test:race" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if err := v.e.Prepare(ctx, scope); err != nil {
			t.Fatal(err)
		}
		v.e.Forget(scope) // the next use loads it from the store
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = v.e.Seal(ctx, scope, []byte("x"), nil) }()
		go func() {
			defer wg.Done()
			if err := v.st.DeleteDataKey(ctx, scope); err != nil {
				t.Error(err)
			}
			v.e.Forget(scope)
		}()
		wg.Wait()
		if _, err := v.e.Seal(ctx, scope, []byte("after"), nil); err == nil {
			t.Fatalf("round %d: a deleted, forgotten data key still seals (cached by the racing load)", i)
		}
	}
}

// countingStore counts key-table reads.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	lists int
}

func (c *countingStore) ListKeys(ctx context.Context, purpose string) ([]store.Key, error) {
	c.mu.Lock()
	c.lists++
	c.mu.Unlock()
	return c.Store.ListKeys(ctx, purpose)
}

func (c *countingStore) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lists
}

// Reading data whose KEK was destroyed (--force) fails at once with
// ErrKeyDestroyed, without re-reading the whole key set on every request
// (a client could otherwise make each of its requests cost a key reload).
func TestDestroyedKEKIsRefusedWithoutReload(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	if err := v.e.Prepare(ctx, "test:lost"); err != nil {
		t.Fatal(err)
	}
	ct, err := v.e.Seal(ctx, "test:lost", []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := v.st.ListKeys(ctx, keyring.PurposeKEK)
	old := keys[0].ID
	// A rotation whose rewrap never ran (another process, interrupted),
	// then the old KEK destroyed by force: the data key stays under it.
	handle, err := v.prov.CreateKEK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.st.RotateKeys(ctx, keyring.PurposeKEK, nextKEK(t, v.st), store.Key{ID: "kek-next2", Purpose: keyring.PurposeKEK, Sealed: []byte(handle), CreatedAt: time.Now()}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.DestroyKEK(ctx, old, true); err != nil {
		t.Fatal(err)
	}
	if dk, _ := v.st.GetDataKey(ctx, "test:lost"); dk.KEKID != old {
		t.Fatalf("setup: the data key moved to %s", dk.KEKID)
	}
	cs := &countingStore{Store: v.st}
	e, err := openEnvelope(ctx, cs, v.prov, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := cs.count()
	for i := 0; i < 5; i++ {
		if _, err := e.Open(ctx, "test:lost", ct, nil); !errors.Is(err, keyring.ErrKeyDestroyed) {
			t.Fatalf("Open under a destroyed KEK = %v, want ErrKeyDestroyed", err)
		}
	}
	if n := cs.count() - before; n != 0 {
		t.Fatalf("5 reads under a destroyed KEK re-read the key table %d times", n)
	}
}
