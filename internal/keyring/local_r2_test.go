package keyring_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/parley-gw/parley/internal/keyring"
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
