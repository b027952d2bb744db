package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

type env struct {
	st   *sqlite.Store
	prov *keyring.LocalProvider
	e    *keyring.Envelope
	dir  string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	master := bytes.Repeat([]byte{7}, keyring.KeySize)
	prov, err := keyring.NewLocalProvider(filepath.Join(dir, "keys"), master)
	if err != nil {
		t.Fatal(err)
	}
	e, err := openEnvelope(ctx, st, prov, 64, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{st: st, prov: prov, e: e, dir: dir}
}

// openEnvelope wires a key set (kek purpose, re-wrap hook) and an
// envelope, as the server does.
func openEnvelope(ctx context.Context, st store.Store, prov keyring.Provider, cache int, now func() time.Time) (*keyring.Envelope, error) {
	var e *keyring.Envelope
	hook := func(ctx context.Context, r keyring.Rotation) error { return e.AfterRotation(ctx, r) }
	ks := keyring.NewKeySet(keyring.KeySetConfig{Store: st, Purposes: []keyring.Purpose{keyring.KEKPurpose(prov, hook)}, Now: now})
	if err := ks.Load(ctx); err != nil {
		return nil, err
	}
	var err error
	e, err = keyring.NewEnvelope(ctx, keyring.EnvelopeConfig{Store: st, Keys: ks, Provider: prov, CacheSize: cache, Now: now})
	return e, err
}

// reopen builds a second envelope (another process) over the same files.
func (v *env) reopen(t testing.TB) *keyring.Envelope {
	t.Helper()
	e, err := openEnvelope(context.Background(), v.st, v.prov, 64, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEnvelopeRoundTripAndBinding(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	if _, err := v.e.Seal(ctx, "test:a", []byte("x"), nil); !errors.Is(err, keyring.ErrNoDataKey) {
		t.Fatalf("Seal before Prepare = %v, want ErrNoDataKey (Seal never creates keys)", err)
	}
	for _, s := range []string{"test:a", "test:b"} {
		if err := v.e.Prepare(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	secret := []byte("4111 1111 1111 1111 and alice@example.com")
	ct, err := v.e.Seal(ctx, "test:a", secret, []byte("aad-a"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, secret[:10]) {
		t.Fatal("ciphertext contains the plaintext")
	}
	// Another process (fresh cache) opens it from the stored, wrapped key.
	pt, err := v.reopen(t).Open(ctx, "test:a", ct, []byte("aad-a"))
	if err != nil || !bytes.Equal(pt, secret) {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	flipped := bytes.Clone(ct)
	flipped[len(flipped)/2] ^= 1
	cases := []struct {
		name  string
		scope string
		ct    []byte
		aad   string
		want  error
	}{
		{"modified ciphertext", "test:a", flipped, "aad-a", keyring.ErrTampered},
		{"truncated ciphertext", "test:a", ct[:len(ct)-1], "aad-a", keyring.ErrTampered},
		{"moved to another conversation", "test:b", ct, "aad-a", keyring.ErrTampered},
		{"other associated data", "test:a", ct, "aad-b", keyring.ErrTampered},
		{"scope without a key", "test:zzz", ct, "aad-a", keyring.ErrNoDataKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := v.e.Open(ctx, tc.scope, tc.ct, []byte(tc.aad))
			if !errors.Is(err, tc.want) || pt != nil {
				t.Fatalf("Open = %q, %v; want nothing and %v", pt, err, tc.want)
			}
		})
	}
}

func TestEnvelopeWrappedKeyMovedToAnotherScopeIsRefused(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	_ = v.e.Prepare(ctx, "test:a")
	ct, _ := v.e.Seal(ctx, "test:a", []byte("hello"), nil)
	a, err := v.st.GetDataKey(ctx, "test:a")
	if err != nil {
		t.Fatal(err)
	}
	// An attacker with write access copies a's wrapped key to scope b,
	// hoping b's data opens under a's key.
	if err := v.st.PutDataKey(ctx, store.DataKey{Scope: "test:b", KEKID: a.KEKID, Wrapped: a.Wrapped, CreatedAt: a.CreatedAt}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.reopen(t).Open(ctx, "test:b", ct, nil); !errors.Is(err, keyring.ErrTampered) {
		t.Fatalf("Open under a moved wrapped key = %v, want ErrTampered", err)
	}
}

func TestKEKRotationUnderLoadRewrapsAndLosesNothing(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	const convs = 40
	type sealed struct {
		scope string
		ct    []byte
		pt    string
	}
	var mu sync.Mutex
	var all []sealed
	seal := func(e *keyring.Envelope, i, j int) error {
		scope := fmt.Sprintf("test:%03d", i)
		if err := e.Prepare(ctx, scope); err != nil {
			return err
		}
		pt := fmt.Sprintf("message %d of %s", j, scope)
		ct, err := e.Seal(ctx, scope, []byte(pt), []byte(scope))
		if err != nil {
			return err
		}
		mu.Lock()
		all = append(all, sealed{scope, ct, pt})
		mu.Unlock()
		return nil
	}
	for i := 0; i < convs; i++ {
		if err := seal(v.e, i, 0); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := v.st.ListKeys(ctx, keyring.PurposeKEK)
	// Writers keep sealing (new and existing conversations) while another
	// process rotates the KEK.
	admin := v.reopen(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for j := 1; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := seal(v.e, (w*1000+j)%(convs*2), j); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	rot, err := admin.RotateKEK(ctx)
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("RotateKEK: %v", err)
	}
	if rot.Activated != before[1].ID || len(rot.Retired) != 1 || rot.Retired[0] != before[0].ID {
		t.Fatalf("RotateKEK = %+v; want %s activated, %s retired", rot, before[1].ID, before[0].ID)
	}
	// The serving envelope only learns of the rotation on its next reload:
	// data keys it made meanwhile are under the old KEK; a second pass
	// (what the server runs after reloading) moves them.
	n, err := admin.Rewrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := v.st.CountDataKeys(ctx, before[0].ID); left != 0 {
		t.Fatalf("%d data keys still under the retired KEK", left)
	}
	// Everything sealed before, during and after reads back, from a fresh
	// process, once the old KEK is destroyed.
	if _, err := admin.DestroyKEK(ctx, before[0].ID, false); err != nil {
		t.Fatalf("DestroyKEK = %v", err)
	}
	fresh := v.reopen(t)
	for _, s := range all {
		pt, err := fresh.Open(ctx, s.scope, s.ct, []byte(s.scope))
		if err != nil || string(pt) != s.pt {
			t.Fatalf("after rotation, %s: %q, %v", s.scope, pt, err)
		}
	}
	t.Logf("%d ciphertexts in %d conversations all readable after rotation; %d data keys left for the second pass", len(all), convs*2, n)
}

func TestDestroyKEKRefusalsAndBackupsBecomeUnreadable(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	_ = v.e.Prepare(ctx, "test:gone")
	ct, _ := v.e.Seal(ctx, "test:gone", []byte("CANARY-4111111111111111"), nil)
	keys, _ := v.st.ListKeys(ctx, keyring.PurposeKEK)
	active, next := keys[0], keys[1]
	for _, id := range []string{active.ID, next.ID} {
		if _, err := v.e.DestroyKEK(ctx, id, true); err == nil {
			t.Fatalf("DestroyKEK(%s) of the active or next key succeeded", id)
		}
	}
	// A copy of the database taken now (a backup) holds the wrapped data
	// key of conv:gone.
	backup := filepath.Join(t.TempDir(), "backup.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(filepath.Join(v.dir, "parley.db"+suffix))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(backup+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The conversation expires: its data key is deleted, then the KEK
	// rotates and the retired one is destroyed.
	if err := v.st.DeleteDataKey(ctx, "test:gone"); err != nil {
		t.Fatal(err)
	}
	_ = v.e.Prepare(ctx, "test:live")
	live, _ := v.e.Seal(ctx, "test:live", []byte("still here"), nil)
	if _, err := v.e.RotateKEK(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.DestroyKEK(ctx, active.ID, false); err != nil {
		t.Fatalf("DestroyKEK(retired, rewrapped) = %v", err)
	}
	// The live conversation is untouched.
	if pt, err := v.reopen(t).Open(ctx, "test:live", live, nil); err != nil || string(pt) != "still here" {
		t.Fatalf("live conversation after destroy: %q, %v", pt, err)
	}
	// The backup, opened with the data directory's keys as they are now,
	// cannot decrypt the expired conversation.
	bst, err := sqlite.Open(ctx, backup)
	if err != nil {
		t.Fatal(err)
	}
	defer bst.Close()
	be, err := openEnvelope(ctx, bst, v.prov, 8, nil)
	if err == nil {
		pt, err := be.Open(ctx, "test:gone", ct, nil)
		if err == nil {
			t.Fatalf("the backup still decrypts the expired conversation: %q", pt)
		}
		t.Logf("backup refused as expected: %v", err)
	} else {
		t.Logf("backup refused at open: %v", err)
	}
	// The KEK's file is gone from the data directory, no remains.
	files, _ := os.ReadDir(filepath.Join(v.dir, "keys"))
	if len(files) != 2 {
		t.Fatalf("key directory holds %d files, want 2 (the active and next KEK)", len(files))
	}
	if _, err := v.e.DestroyKEK(ctx, active.ID, false); err != nil {
		t.Fatalf("destroying a destroyed KEK again = %v, want nil", err)
	}
}

func TestDestroyKEKInUseNeedsForce(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	_ = v.e.Prepare(ctx, "test:a")
	keys, _ := v.st.ListKeys(ctx, keyring.PurposeKEK)
	old := keys[0].ID
	// Retire the KEK without rewrapping (a rotation interrupted midway).
	if err := v.st.RotateKeys(ctx, keyring.PurposeKEK, nextKEK(t, v.st), store.Key{ID: "kek-manual", Purpose: keyring.PurposeKEK, Sealed: keys[1].Sealed, CreatedAt: time.Now()}, time.Now()); err != nil {
		t.Fatal(err)
	}
	v.e = v.reopen(t)
	_, err := v.e.DestroyKEK(ctx, old, false)
	if !errors.Is(err, keyring.ErrKEKInUse) || !strings.Contains(err.Error(), "1 data keys") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("DestroyKEK in use = %v; want ErrKEKInUse naming 1 data key and --force", err)
	}
	if d, err := v.e.DestroyKEK(ctx, old, true); err != nil || !strings.Contains(d.Effect, "1 data key") {
		t.Fatalf("forced DestroyKEK = %+v, %v", d, err)
	}
	if _, err := v.reopen(t).Open(ctx, "test:a", []byte("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), nil); !errors.Is(err, keyring.ErrKeyDestroyed) {
		t.Fatalf("Open under a destroyed KEK = %v, want ErrKeyDestroyed", err)
	}
}

// TestErasedDataKeyLeavesAnotherProcessesMemory: a data key deleted by
// another process stops working in this one within the cache lifetime.
func TestErasedDataKeyLeavesAnotherProcessesMemory(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	now := time.Now()
	e, err := openEnvelope(ctx, v.st, v.prov, 8, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	_ = e.Prepare(ctx, "test:x")
	ct, err := e.Seal(ctx, "test:x", []byte("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.st.DeleteDataKey(ctx, "test:x"); err != nil { // `parley erase` elsewhere
		t.Fatal(err)
	}
	if _, err := e.Open(ctx, "test:x", ct, nil); err != nil {
		t.Fatalf("within the cache lifetime the key is still in memory: %v", err)
	}
	now = now.Add(5 * time.Minute)
	if _, err := e.Open(ctx, "test:x", ct, nil); !errors.Is(err, keyring.ErrNoDataKey) {
		t.Fatalf("after the cache lifetime Open = %v, want ErrNoDataKey", err)
	}
	if _, err := e.Seal(ctx, "test:x", []byte("more"), nil); !errors.Is(err, keyring.ErrNoDataKey) {
		t.Fatalf("Seal under an erased key = %v, want ErrNoDataKey", err)
	}
}

// nextKEK is the id of the KEK a rotation would activate now.
func nextKEK(t testing.TB, st store.Store) string {
	t.Helper()
	keys, err := st.ListKeys(context.Background(), keyring.PurposeKEK)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.ActivatedAt.IsZero() && k.DestroyedAt.IsZero() {
			return k.ID
		}
	}
	t.Fatal("no next KEK")
	return ""
}
