package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

// testDataKeysRefuseRetiredKEK: no data key is put or re-wrapped under a
// retired or destroyed key-encryption key (a writer with a stale key set
// would otherwise wrap under a KEK that is destroyed meanwhile).
func testDataKeysRefuseRetiredKEK(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "a")
	conv(t, s, "b")
	for _, k := range []store.Key{
		{ID: "kek-active", Purpose: "kek", Sealed: []byte("m"), CreatedAt: epoch, ActivatedAt: epoch},
		{ID: "kek-retired", Purpose: "kek", Sealed: []byte("m"), CreatedAt: epoch, ActivatedAt: epoch, RetiredAt: epoch},
		{ID: "kek-destroyed", Purpose: "kek", Sealed: []byte("m"), CreatedAt: epoch, ActivatedAt: epoch, RetiredAt: epoch},
	} {
		if err := s.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DestroyKey(ctx, "kek-destroyed", epoch); err != nil {
		t.Fatal(err)
	}
	for _, kek := range []string{"kek-retired", "kek-destroyed"} {
		err := s.PutDataKey(ctx, store.DataKey{Scope: "conv:a", KEKID: kek, Wrapped: []byte("w"), CreatedAt: epoch})
		if !errors.Is(err, store.ErrKEKRetired) {
			t.Fatalf("PutDataKey under %s = %v, want ErrKEKRetired", kek, err)
		}
	}
	if _, err := s.GetDataKey(ctx, "conv:a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused put stored a key: %v", err)
	}
	if err := s.PutDataKey(ctx, store.DataKey{Scope: "conv:a", KEKID: "kek-active", Wrapped: []byte("w"), CreatedAt: epoch}); err != nil {
		t.Fatalf("PutDataKey under the active KEK: %v", err)
	}
	for _, kek := range []string{"kek-retired", "kek-destroyed"} {
		err := s.RewrapDataKey(ctx, "kek-active", store.DataKey{Scope: "conv:a", KEKID: kek, Wrapped: []byte("w2")})
		if !errors.Is(err, store.ErrKEKRetired) {
			t.Fatalf("RewrapDataKey onto %s = %v, want ErrKEKRetired", kek, err)
		}
	}
	if got, err := s.GetDataKey(ctx, "conv:a"); err != nil || got.KEKID != "kek-active" {
		t.Fatalf("after refused rewraps: %+v, %v", got, err)
	}
	if n, err := s.CountDataKeys(ctx, "kek-retired"); err != nil || n != 0 {
		t.Fatalf("CountDataKeys(kek-retired) = %d, %v", n, err)
	}
}
