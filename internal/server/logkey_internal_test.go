package server

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/redact"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// The log pseudonym key: created sealed on first start, reused after, the
// newest active row wins (rotation), retired and destroyed rows are
// skipped, and another master key cannot open it.
func TestLogPseudonymizerKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr, _ := keyring.New(bytes.Repeat([]byte{1}, keyring.KeySize))

	first, err := logPseudonymizer(ctx, st, kr)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := st.ListKeys(ctx, redact.KeyPurpose)
	if len(keys) != 1 || keys[0].ID != first.KeyID() || len(keys[0].Sealed) < redact.MinKeySize {
		t.Fatalf("keys after first start = %+v", keys)
	}
	again, err := logPseudonymizer(ctx, st, kr)
	if err != nil || again.KeyID() != first.KeyID() || again.User("dl_x") != first.User("dl_x") {
		t.Fatalf("second start: %v, key %s, want %s", err, again.KeyID(), first.KeyID())
	}

	// A newer active key (a rotation) wins; the pseudonyms change.
	put := func(id string, created time.Time, retired bool) {
		t.Helper()
		raw := bytes.Repeat([]byte(id[:1]), 32)
		sealed, err := kr.Seal(raw, []byte(redact.KeyPurpose+":"+id))
		if err != nil {
			t.Fatal(err)
		}
		k := store.Key{ID: id, Purpose: redact.KeyPurpose, Sealed: sealed, CreatedAt: created, ActivatedAt: created}
		if retired {
			k.RetiredAt = created
		}
		if err := st.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	put("rotated", now.Add(time.Hour), false)
	rot, err := logPseudonymizer(ctx, st, kr)
	if err != nil || rot.KeyID() != "rotated" || rot.User("dl_x") == first.User("dl_x") {
		t.Fatalf("after rotation: %v, key %s", err, rot.KeyID())
	}
	put("zretired", now.Add(2*time.Hour), true)
	if p, err := logPseudonymizer(ctx, st, kr); err != nil || p.KeyID() != "rotated" {
		t.Fatalf("a retired key was chosen: %v %v", p, err)
	}
	if err := st.DestroyKey(ctx, "rotated", now); err != nil {
		t.Fatal(err)
	}
	if p, err := logPseudonymizer(ctx, st, kr); err != nil || p.KeyID() != first.KeyID() {
		t.Fatalf("after destroying the newest key: %v %v, want %s", p, err, first.KeyID())
	}

	other, _ := keyring.New(bytes.Repeat([]byte{2}, keyring.KeySize))
	if _, err := logPseudonymizer(ctx, st, other); err == nil {
		t.Fatal("another master key opened the pseudonym key")
	}
}
