package keyring

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var testRules = PurposeRules{TokenOverlap: 24*time.Hour + 30*time.Second, ReloadEvery: 30 * time.Second}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func testKeyring(t *testing.T) *Keyring {
	t.Helper()
	kr, err := New(bytes.Repeat([]byte{9}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func newTestKeySet(t *testing.T, st store.Store, c *clock, purposes ...Purpose) *KeySet {
	t.Helper()
	if len(purposes) == 0 {
		purposes = []Purpose{DirectLineTokenPurpose(testRules), LogPseudonymPurpose()}
	}
	ks := NewKeySet(KeySetConfig{Store: st, Keyring: testKeyring(t), Purposes: purposes, Now: c.now})
	if err := ks.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ks
}

func stateOf(t *testing.T, ks *KeySet, id string) State {
	t.Helper()
	list, err := ks.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range list {
		if k.ID == id {
			return k.State
		}
	}
	t.Fatalf("key %s not listed", id)
	return ""
}

// One key through its whole life, for each purpose: next → active →
// retired (accepted) → expired (neither accepted nor published, material
// kept) → destroyed (material gone, row kept).
func TestLifecycle(t *testing.T) {
	for _, tc := range []struct {
		purpose Purpose
		overlap time.Duration
	}{
		{DirectLineTokenPurpose(testRules), testRules.TokenOverlap},
		{LogPseudonymPurpose(), 0},
		{RSAPurpose(PurposeChannel), PublishedRetiredOverlap},
	} {
		t.Run(tc.purpose.Name, func(t *testing.T) {
			ctx := context.Background()
			st := openStore(t)
			c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			ks := newTestKeySet(t, st, c, tc.purpose)
			name := tc.purpose.Name
			v, _ := ks.View(name)
			first := v.Active().ID
			if len(v.AcceptedKeys()) != 2 {
				t.Fatalf("a fresh store has %d accepted keys, want active + next", len(v.AcceptedKeys()))
			}
			var next string
			for _, k := range v.AcceptedKeys() {
				if k.State == StateNext {
					next = k.ID
				}
			}
			if next == "" || stateOf(t, ks, next) != StateNext || stateOf(t, ks, first) != StateActive {
				t.Fatalf("fresh keys: first %s next %q", stateOf(t, ks, first), next)
			}
			if got := len(v.Published()); tc.purpose.Published != (got == 2) {
				t.Fatalf("%d keys published; published purpose: %v", got, tc.purpose.Published)
			}

			c.advance(tc.purpose.MinNextAge)
			r, err := ks.Rotate(ctx, name, RotateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Activated != next || len(r.Retired) != 1 || r.Retired[0] != first || r.Next == "" || r.Next == next {
				t.Fatalf("rotation = %+v, want %s activated, %s retired, a new next", r, next, first)
			}
			v, _ = ks.View(name)
			if v.Active().ID != next {
				t.Fatalf("after rotation %s signs, want %s", v.Active().ID, next)
			}
			wantRetired := StateRetired
			if tc.overlap == 0 {
				wantRetired = StateExpired
			}
			if got := stateOf(t, ks, first); got != wantRetired {
				t.Fatalf("just retired key is %s, want %s", got, wantRetired)
			}
			if (v.Accepted(first) != nil) != (tc.overlap > 0) {
				t.Fatalf("retired key accepted = %v within an overlap of %v", v.Accepted(first) != nil, tc.overlap)
			}

			if tc.overlap > 0 {
				c.advance(tc.overlap - time.Second)
				if err := ks.Reload(ctx); err != nil {
					t.Fatal(err)
				}
				if v, _ = ks.View(name); v.Accepted(first) == nil {
					t.Fatal("retired key refused before its overlap ended")
				}
				c.advance(2 * time.Second)
			}
			if err := ks.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			v, _ = ks.View(name)
			if v.Accepted(first) != nil || stateOf(t, ks, first) != StateExpired {
				t.Fatalf("past its overlap the key is %s and accepted = %v", stateOf(t, ks, first), v.Accepted(first) != nil)
			}
			for _, k := range v.Published() {
				if k.ID == first {
					t.Fatal("key past its overlap still published")
				}
			}
			// Past its overlap the material is still there: destroyed
			// only on request.
			rows, _ := st.ListKeys(ctx, name)
			if len(rows) != 3 || len(rows[0].Sealed) == 0 {
				t.Fatalf("rows after overlap: %d, first sealed %d bytes; want 3 rows, material kept", len(rows), len(rows[0].Sealed))
			}

			d, err := ks.Destroy(ctx, first)
			if err != nil {
				t.Fatal(err)
			}
			if d.Effect == "" || d.Key.State != StateDestroyed {
				t.Fatalf("destruction = %+v", d)
			}
			rows, _ = st.ListKeys(ctx, name)
			if len(rows) != 3 || rows[0].ID != first || len(rows[0].Sealed) != 0 || rows[0].DestroyedAt.IsZero() {
				t.Fatalf("destroyed row = %+v, want a tombstone without material", rows[0])
			}
			if stateOf(t, ks, first) != StateDestroyed {
				t.Fatal("listing does not show the key destroyed")
			}
			// Destroying again changes nothing.
			if d, err := ks.Destroy(ctx, first); err != nil || !d.AlreadyDestroyed {
				t.Fatalf("second destroy = %+v, %v", d, err)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	ks := newTestKeySet(t, st, c, DirectLineTokenPurpose(testRules), LogPseudonymPurpose(), KEKPurpose(nil, nil))
	v, _ := ks.View(PurposeDirectLineToken)
	active := v.Active().ID
	var next string
	for _, k := range v.AcceptedKeys() {
		if k.State == StateNext {
			next = k.ID
		}
	}
	for _, tc := range []struct {
		name string
		do   func() error
		want error
		say  string
	}{
		{"destroy the active key", func() error { _, err := ks.Destroy(ctx, active); return err }, ErrNotRetired, "active"},
		{"destroy the next key", func() error { _, err := ks.Destroy(ctx, next); return err }, ErrNotRetired, "next"},
		{"destroy an unknown key", func() error { _, err := ks.Destroy(ctx, "nope"); return err }, ErrKeyNotFound, "nope"},
		{"rotate too soon", func() error {
			_, err := ks.Rotate(ctx, PurposeDirectLineToken, RotateOptions{})
			return err
		}, ErrTooSoon, "refuses the Direct Line tokens"},
		{"rotate an unknown purpose", func() error { _, err := ks.Rotate(ctx, "signing", RotateOptions{}); return err }, ErrUnknownPurpose, "valid purposes: directline-token, kek, log-pseudonym"},
		{"list an unknown purpose", func() error { _, err := ks.List(ctx, "x"); return err }, ErrUnknownPurpose, "valid purposes"},
		{"rotate KEKs without a provider", func() error { _, err := ks.Rotate(ctx, PurposeKEK, RotateOptions{Force: true}); return err }, ErrUnsupported, "provider"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.say)
			}
		})
	}
	// Nothing changed: the same key signs, both keys still there.
	if err := ks.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := ks.View(PurposeDirectLineToken); v.Active().ID != active || v.Accepted(next) == nil {
		t.Fatal("a refused operation changed the keys")
	}
	// Force rotates a young next key.
	if _, err := ks.Rotate(ctx, PurposeDirectLineToken, RotateOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if v, _ := ks.View(PurposeDirectLineToken); v.Active().ID != next {
		t.Fatal("forced rotation did not activate the next key")
	}
}

// A rotation and a destruction made by another process (the CLI) take
// effect in a running key set at its next reload, for every purpose.
func TestReloadSeesOtherProcess(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	server := newTestKeySet(t, st, c)
	cli := newTestKeySet(t, st, c)
	for _, p := range []string{PurposeDirectLineToken, PurposeLogPseudonym} {
		before, _ := server.Active(p)
		r, err := cli.Rotate(ctx, p, RotateOptions{Force: true, PurgeRetired: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Destroyed) != 1 || r.Destroyed[0] != before.ID {
			t.Fatalf("%s: purge destroyed %v, want %s", p, r.Destroyed, before.ID)
		}
		if still, _ := server.Active(p); still.ID != before.ID {
			t.Fatalf("%s: changed before reload", p)
		}
		if err := server.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		after, _ := server.Active(p)
		v, _ := server.View(p)
		if after.ID != r.Activated || v.Accepted(before.ID) != nil {
			t.Fatalf("%s: after reload %s signs and the purged key accepted = %v", p, after.ID, v.Accepted(before.ID) != nil)
		}
	}
}

func TestMaterial(t *testing.T) {
	st := openStore(t)
	c := &clock{t: time.Now()}
	ks := newTestKeySet(t, st, c, SigningPurposes(testRules)...)
	for p, check := range map[string]func(any) bool{
		PurposeDirectLineToken: func(v any) bool { _, ok := v.(ed25519.PrivateKey); return ok },
		PurposeChannel:         func(v any) bool { k, ok := v.(*rsa.PrivateKey); return ok && k.N.BitLen() == 2048 },
		PurposeSTS:             func(v any) bool { _, ok := v.(*rsa.PrivateKey); return ok },
		PurposeLogPseudonym:    func(v any) bool { b, ok := v.([]byte); return ok && len(b) == 32 },
	} {
		k, err := ks.Active(p)
		if err != nil || !check(k.Value) {
			t.Fatalf("%s: active key %T, %v", p, k.Value, err)
		}
	}
	if id, key, err := ks.HMACKey(PurposeLogPseudonym); err != nil || len(key) != 32 || !strings.HasPrefix(id, "lp-") {
		t.Fatalf("HMACKey = %q, %d bytes, %v", id, len(key), err)
	}
	_, key, _ := ks.HMACKey(PurposeLogPseudonym)
	rows, _ := st.ListKeys(context.Background(), PurposeLogPseudonym)
	for _, r := range rows {
		if len(r.Sealed) == 0 || bytes.Contains(r.Sealed, key) {
			t.Fatal("the log pseudonym key is stored in the clear")
		}
	}
	if _, _, err := ks.HMACKey(PurposeChannel); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("HMACKey of an RSA purpose: %v", err)
	}
	// The store holds only sealed material; a key set with another master
	// key cannot open it.
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	if err := NewKeySet(KeySetConfig{Store: st, Keyring: other, Purposes: SigningPurposes(testRules)}).Load(context.Background()); !errors.Is(err, ErrOpen) {
		t.Fatalf("load with another master key: %v", err)
	}
	list, _ := ks.List(context.Background(), "")
	if len(list) != 8 {
		t.Fatalf("%d keys listed, want active + next of 4 purposes", len(list))
	}
}

// fakeProvider is a Provider that remembers which KEKs exist.
type fakeProvider struct {
	mu   sync.Mutex
	n    int
	live map[string]bool
}

func (f *fakeProvider) Name() string { return "fake" }
func (f *fakeProvider) CreateKEK(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	h := "fake:" + string(rune('a'+f.n))
	f.live[h] = true
	return h, nil
}
func (f *fakeProvider) AEAD(context.Context, string) (tink.AEAD, error) { return nil, nil }
func (f *fakeProvider) DestroyKEK(_ context.Context, h string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.live, h)
	return nil
}

// The KEK hook: rotation calls the re-wrap function with the retired and
// activated ids; retired KEKs stay usable until destroyed; destruction
// goes through the provider and says how many data keys it still wraps.
func TestKEKHooks(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	fp := &fakeProvider{live: map[string]bool{}}
	var rewrapped []Rotation
	ks := newTestKeySet(t, st, c, KEKPurpose(fp, func(_ context.Context, r Rotation) error {
		rewrapped = append(rewrapped, r)
		return nil
	}))
	first, _ := ks.Active(PurposeKEK)
	if first.Handle == "" || !fp.live[first.Handle] {
		t.Fatalf("active KEK handle %q not in the provider", first.Handle)
	}
	if err := st.PutDataKey(ctx, store.DataKey{Scope: "test:1", KEKID: first.ID, Wrapped: []byte("w"), CreatedAt: c.now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Rotate(ctx, PurposeKEK, RotateOptions{PurgeRetired: true}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("purging retired KEKs: %v", err)
	}
	r, err := ks.Rotate(ctx, PurposeKEK, RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rewrapped) != 1 || rewrapped[0].Retired[0] != first.ID || rewrapped[0].Activated != r.Activated {
		t.Fatalf("re-wrap hook got %+v", rewrapped)
	}
	c.advance(365 * 24 * time.Hour)
	if err := ks.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := ks.View(PurposeKEK); v.Accepted(first.ID) == nil {
		t.Fatal("a retired KEK stopped being usable before it was destroyed")
	}
	list, _ := ks.List(ctx, PurposeKEK)
	for _, k := range list {
		if k.Handle == "" || k.Published {
			t.Fatalf("KEK listed as %+v", k)
		}
	}
	// It still wraps a data key (the fake hook re-wrapped nothing): refused
	// unless forced.
	if _, err := ks.Destroy(ctx, first.ID); !errors.Is(err, ErrKEKInUse) {
		t.Fatalf("destroy KEK in use without force = %v, want ErrKEKInUse", err)
	}
	if !fp.live[first.Handle] {
		t.Fatal("a refused destruction destroyed the provider's key")
	}
	d, err := ks.Destroy(ctx, first.ID, DestroyOptions{Force: true})
	if err != nil || !strings.Contains(d.Effect, "still wraps 1 data key") {
		t.Fatalf("destroy KEK = %+v, %v", d, err)
	}
	if fp.live[first.Handle] {
		t.Fatal("the provider still holds the destroyed KEK")
	}
}
