package keyring_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// TestStaleServerNeverWrapsUnderADestroyedKEK: `parley keys rotate --purpose
// kek` then `keys destroy` of the retired KEK (it wraps no data key, so no
// --force) run in another process while the server's key set is up to
// key_reload old. A conversation started in that window must not get a
// data key wrapped by the destroyed KEK (the server still holds that KEK
// in memory, so it would work until the next restart, then be lost).
func TestStaleServerNeverWrapsUnderADestroyedKEK(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t) // the server, loaded
	if err := v.e.Prepare(ctx, "test:warm"); err != nil {
		t.Fatal(err)
	}
	// The CLI: its own provider (its own memory) over the same files.
	cliProv, err := keyring.NewLocalProvider(filepath.Join(v.dir, "keys"), bytes.Repeat([]byte{7}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := openEnvelope(ctx, v.st, cliProv, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cli.RotateKEK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range r.Retired {
		if _, err := cli.DestroyKEK(ctx, id, false); err != nil {
			t.Fatalf("destroy the retired KEK %s: %v", id, err)
		}
	}
	// The server, not reloaded yet, starts a conversation.
	if err := v.e.Prepare(ctx, "test:new"); err != nil {
		t.Fatalf("Prepare after the KEK was rotated and destroyed elsewhere: %v", err)
	}
	ct, err := v.e.Seal(ctx, "test:new", []byte("new words"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dk, err := v.st.GetDataKey(ctx, "test:new")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range r.Retired {
		if dk.KEKID == id {
			t.Fatalf("the new data key is wrapped by %s, destroyed before it was made", id)
		}
	}
	// A restarted server reads it.
	if pt, err := v.reopen(t).Open(ctx, "test:new", ct, nil); err != nil || string(pt) != "new words" {
		t.Fatalf("after a restart: %q, %v", pt, err)
	}
}

// TestRewrapFollowsARotationMadeMeanwhile: a rewrap whose target KEK is
// retired by another process's rotation after this one loaded its key set
// reloads and re-wraps under the new active KEK instead of failing.
func TestRewrapFollowsARotationMadeMeanwhile(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	for _, s := range []string{"test:a", "test:b"} {
		if err := v.e.Prepare(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := v.st.ListKeys(ctx, keyring.PurposeKEK)
	handle := keys[1].Sealed // the next KEK's provider handle, reused below
	rotate := func(id string) {
		t.Helper()
		// A rotation without its rewrap (another process, interrupted).
		if err := v.st.RotateKeys(ctx, keyring.PurposeKEK, nextKEK(t, v.st), store.Key{ID: id, Purpose: keyring.PurposeKEK, Sealed: handle, CreatedAt: time.Now()}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	rotate("kek-manual-1")
	stale := v.reopen(t)   // its active KEK is the old next one
	rotate("kek-manual-2") // elsewhere: that one retires, kek-manual-1 is active
	n, err := stale.Rewrap(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Rewrap with a view older than a rotation = %d, %v; want 2 re-wrapped", n, err)
	}
	for _, s := range []string{"test:a", "test:b"} {
		dk, err := v.st.GetDataKey(ctx, s)
		if err != nil || dk.KEKID != "kek-manual-1" {
			t.Fatalf("%s under %s, want the active kek-manual-1 (%v)", s, dk.KEKID, err)
		}
	}
}
