package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

func testDestroyKey(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := store.Key{ID: "kek1", Purpose: "kek", Sealed: []byte("material"), CreatedAt: epoch, ActivatedAt: epoch}
	if err := s.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.DestroyKey(ctx, "nope", epoch); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DestroyKey(unknown) = %v, want ErrNotFound", err)
	}
	at := epoch.Add(3600e9)
	for i := 0; i < 2; i++ { // the second call changes nothing
		if err := s.DestroyKey(ctx, "kek1", at.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatalf("DestroyKey #%d: %v", i+1, err)
		}
	}
	keys, err := s.ListKeys(ctx, "kek")
	if err != nil || len(keys) != 1 {
		t.Fatalf("ListKeys = %+v, %v", keys, err)
	}
	if len(keys[0].Sealed) != 0 || !keys[0].DestroyedAt.Equal(at) {
		t.Fatalf("destroyed key = sealed %q destroyed %v; want no material, destroyed at %v", keys[0].Sealed, keys[0].DestroyedAt, at)
	}
}

func testDataKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.GetDataKey(ctx, "conv:a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetDataKey(missing) = %v, want ErrNotFound", err)
	}
	// A conversation's key needs the conversation.
	if err := s.PutDataKey(ctx, store.DataKey{Scope: "conv:a", KEKID: "k1", Wrapped: []byte("w"), CreatedAt: epoch}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutDataKey for a conversation that does not exist = %v, want ErrNotFound", err)
	}
	seed(t, s)
	conv(t, s, "a")
	conv(t, s, "b")
	put := func(scope, kek string) {
		t.Helper()
		if err := s.PutDataKey(ctx, store.DataKey{Scope: scope, KEKID: kek, Wrapped: []byte("w-" + scope + "-" + kek), CreatedAt: epoch}); err != nil {
			t.Fatalf("PutDataKey(%s): %v", scope, err)
		}
	}
	put("conv:a", "k1")
	put("conv:b", "k1")
	put("bot:x", "k2")
	if err := s.PutDataKey(ctx, store.DataKey{Scope: "conv:a", KEKID: "k2", Wrapped: []byte("other"), CreatedAt: epoch}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("PutDataKey over an existing scope = %v, want ErrExists", err)
	}
	got, err := s.GetDataKey(ctx, "conv:a")
	if err != nil || got.KEKID != "k1" || !bytes.Equal(got.Wrapped, []byte("w-conv:a-k1")) || !got.CreatedAt.Equal(epoch) {
		t.Fatalf("GetDataKey = %+v, %v (the first put must win)", got, err)
	}
	if n, err := s.CountDataKeys(ctx, "k1"); err != nil || n != 2 {
		t.Fatalf("CountDataKeys(k1) = %d, %v; want 2", n, err)
	}
	page, err := s.ListDataKeys(ctx, "k1", "", 1)
	if err != nil || len(page) != 1 || page[0].Scope != "conv:a" {
		t.Fatalf("ListDataKeys first page = %+v, %v", page, err)
	}
	page, err = s.ListDataKeys(ctx, "k1", "conv:a", 10)
	if err != nil || len(page) != 1 || page[0].Scope != "conv:b" {
		t.Fatalf("ListDataKeys second page = %+v, %v", page, err)
	}
	// Rewrap only while still under the old KEK.
	nk := store.DataKey{Scope: "conv:a", KEKID: "k3", Wrapped: []byte("rewrapped")}
	if err := s.RewrapDataKey(ctx, "k2", nk); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RewrapDataKey from the wrong KEK = %v, want ErrNotFound", err)
	}
	if err := s.RewrapDataKey(ctx, "k1", nk); err != nil {
		t.Fatalf("RewrapDataKey: %v", err)
	}
	if got, _ := s.GetDataKey(ctx, "conv:a"); got.KEKID != "k3" || string(got.Wrapped) != "rewrapped" || !got.CreatedAt.Equal(epoch) {
		t.Fatalf("after rewrap = %+v", got)
	}
	if n, _ := s.CountDataKeys(ctx, "k1"); n != 1 {
		t.Fatalf("CountDataKeys(k1) after rewrap = %d, want 1", n)
	}
	if err := s.DeleteDataKey(ctx, "conv:b"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDataKey(ctx, "conv:b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteDataKey = %v, want ErrNotFound", err)
	}
	if _, err := s.GetDataKey(ctx, "conv:b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetDataKey after delete = %v", err)
	}
	if err := s.RewrapDataKey(ctx, "k1", store.DataKey{Scope: "conv:b", KEKID: "k3", Wrapped: []byte("x")}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RewrapDataKey of a deleted key = %v, want ErrNotFound (it must not come back)", err)
	}
}
