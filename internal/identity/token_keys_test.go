package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

func (is *Issuer) signingKid(t testing.TB) string {
	t.Helper()
	s, err := is.current()
	if err != nil {
		t.Fatal(err)
	}
	return s.kid
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var testRules = keyring.PurposeRules{TokenOverlap: time.Hour + Leeway, ReloadEvery: 30 * time.Second}

// keyWorld is a store with two key sets over it: the server's (an Issuer
// on it) and the CLI's, sharing a clock.
type keyWorld struct {
	st    store.Store
	clock *testClock
	srv   *keyring.KeySet
	cli   *keyring.KeySet
	is    *Issuer
}

func newKeyWorld(t *testing.T) *keyWorld {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	kr, _ := keyring.New(bytes.Repeat([]byte{1}, 32))
	w := &keyWorld{st: st, clock: &testClock{t: time.Now()}}
	mk := func() *keyring.KeySet {
		ks := keyring.NewKeySet(keyring.KeySetConfig{Store: st, Keyring: kr, Now: w.clock.now,
			Purposes: append(keyring.SigningPurposes(testRules), keyring.KEKPurpose(nil, nil))})
		if err := ks.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		return ks
	}
	w.srv, w.cli = mk(), mk()
	if w.is, err = NewIssuerWithKeys(w.srv, "https://gw.example"); err != nil {
		t.Fatal(err)
	}
	w.is.now = w.clock.now
	return w
}

// useTwice verifies tok twice (the second use puts it in the cache).
func useTwice(t *testing.T, is *Issuer, tok string) {
	t.Helper()
	for i := 0; i < 3; i++ {
		if _, err := is.Verify(tok, ScopeConversation); err != nil {
			t.Fatalf("use %d: %v", i, err)
		}
	}
}

// A rotation by the CLI: the server signs with the new key after its
// reload; tokens signed before stay valid through the overlap, across a
// restart, and stop at its end.
func TestRotationKeepsTokensWithinOverlap(t *testing.T) {
	ctx := context.Background()
	w := newKeyWorld(t)
	oldKid := w.is.signingKid(t)
	old, _, err := w.is.Issue(base(), 3*time.Hour) // outlives the overlap
	if err != nil {
		t.Fatal(err)
	}
	useTwice(t, w.is, old)
	if _, err := w.cli.Rotate(ctx, keyring.PurposeDirectLineToken, keyring.RotateOptions{}); !errors.Is(err, keyring.ErrTooSoon) {
		t.Fatalf("rotation to a next key younger than the reload interval: %v", err)
	}
	w.clock.advance(testRules.ReloadEvery)
	r, err := w.cli.Rotate(ctx, keyring.PurposeDirectLineToken, keyring.RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Before the server reloads, the new key's tokens (minted by a
	// replica that reloaded first) verify already: the next key was
	// loaded ahead of use.
	newIs, err := NewIssuerWithKeys(w.cli, "https://gw.example")
	if err != nil {
		t.Fatal(err)
	}
	newIs.now = w.clock.now
	fresh, _, _ := newIs.Issue(base(), time.Minute)
	if _, err := w.is.Verify(fresh, ScopeConversation); err != nil {
		t.Fatalf("a token of the new key refused before reload: %v", err)
	}
	if err := w.is.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.is.signingKid(t); got != r.Activated || got == oldKid {
		t.Fatalf("after reload signing with %s, want %s", got, r.Activated)
	}
	if _, err := w.is.Verify(old, ScopeConversation); err != nil {
		t.Fatalf("token from before the rotation refused: %v", err)
	}
	// A restart keeps it valid too.
	restarted, err := NewIssuer(ctx, w.st, func() *keyring.Keyring { kr, _ := keyring.New(bytes.Repeat([]byte{1}, 32)); return kr }(), "https://gw.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Verify(old, ScopeConversation); err != nil || restarted.signingKid(t) != r.Activated {
		t.Fatalf("after restart: old token %v, signing %s", err, restarted.signingKid(t))
	}
	// Past the overlap, the retired key's tokens are refused, even while
	// unexpired and cached.
	w.clock.advance(testRules.TokenOverlap + time.Second)
	if err := w.is.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.is.Verify(old, ScopeConversation); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("token of a key past its overlap: %v", err)
	}
}

// Withdrawal: the CLI rotates and destroys the old key; once the server
// reloads, every token that key signed is refused, cached or not.
func TestDestroyedKeyTokensRefused(t *testing.T) {
	ctx := context.Background()
	w := newKeyWorld(t)
	cached, _, _ := w.is.Issue(base(), time.Hour)
	useTwice(t, w.is, cached)
	uncached, _, _ := w.is.Issue(base(), time.Hour)
	stream, _, _ := w.is.Issue(Claims{Scope: ScopeStream, Bot: "b", Site: "s", Conv: "c"}, time.Minute)
	old := w.is.signingKid(t)
	if _, err := w.cli.Destroy(ctx, old); !errors.Is(err, keyring.ErrNotRetired) {
		t.Fatalf("destroying the active token key: %v", err)
	}
	if _, err := w.cli.Rotate(ctx, keyring.PurposeDirectLineToken, keyring.RotateOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.cli.Destroy(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := w.is.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ tok, scope string }{
		"cached":   {cached, ScopeConversation},
		"uncached": {uncached, ScopeConversation},
		"stream":   {stream, ScopeStream},
	} {
		if _, err := w.is.Verify(tc.tok, tc.scope); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("%s token of a destroyed key: %v", name, err)
		}
	}
	// New tokens work.
	tok, _, _ := w.is.Issue(base(), time.Hour)
	if _, err := w.is.Verify(tok, ScopeConversation); err != nil {
		t.Fatal(err)
	}
}

// Tokens signed by keys the issuer does not hold for Direct Line tokens:
// an unknown kid, another purpose's kid (in the same store), algorithms
// other than EdDSA.
func TestForeignKeysRefused(t *testing.T) {
	w := newKeyWorld(t)
	now := w.clock.now()
	c := base()
	c.Issuer, c.Audience = "https://gw.example", jwt.Audience{"https://gw.example"}
	c.Expiry, c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)), jwt.NewNumericDate(now)
	sign := func(alg jose.SignatureAlgorithm, key any, kid string) string {
		t.Helper()
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	channel, _ := w.srv.Active(keyring.PurposeChannel)
	pseudo, _ := w.srv.Active(keyring.PurposeLogPseudonym)
	dlKid := w.is.signingKid(t)
	for name, tok := range map[string]string{
		"unknown kid":                         sign(jose.EdDSA, stranger, "not-a-key"),
		"no kid":                              sign(jose.EdDSA, stranger, ""),
		"channel key, RS256, its kid":         sign(jose.RS256, channel.Value.(*rsa.PrivateKey), channel.ID),
		"channel key, RS256, token kid":       sign(jose.RS256, channel.Value.(*rsa.PrivateKey), dlKid),
		"log key as HS256 secret, token kid":  sign(jose.HS256, pseudo.Value, dlKid),
		"token public key as HS256, its kid":  sign(jose.HS256, []byte(w.is.publicKey(dlKid)), dlKid),
		"stranger EdDSA claiming a token kid": sign(jose.EdDSA, stranger, dlKid),
	} {
		if _, err := w.is.Verify(tok, ScopeConversation); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The issuer's own token passes the same checks (the test can fail).
	good, _, _ := w.is.Issue(base(), time.Hour)
	if _, err := w.is.Verify(good, ScopeConversation); err != nil {
		t.Fatal(err)
	}
}

// A store written before the key lifecycle holds one Direct Line token key
// that was never marked active. After the upgrade (migration 0008) it
// still signs and its tokens stay valid; a next key joins it.
func TestUpgradeKeepsLegacyTokenKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	kr, _ := keyring.New(bytes.Repeat([]byte{1}, 32))
	p := keyring.DirectLineTokenPurpose(testRules)
	kid, seed, err := p.Generate()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := kr.Seal(seed, []byte("directline-token:"+kid)) // the format NewIssuer always used
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO signing_keys (kid, purpose, sealed, created_at) VALUES (?, 'directline-token', ?, ?)`, kid, sealed, time.Now().Add(-time.Hour).UnixNano()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = 8`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	if st, err = sqlite.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	is, err := NewIssuer(ctx, st, kr, "https://gw.example")
	if err != nil {
		t.Fatal(err)
	}
	if got := is.signingKid(t); got != kid {
		t.Fatalf("after the upgrade %s signs, want the legacy key %s", got, kid)
	}
	keys, _ := st.ListKeys(ctx, keyring.PurposeDirectLineToken)
	if len(keys) != 2 || keys[0].ActivatedAt.IsZero() || !keys[1].ActivatedAt.IsZero() {
		t.Fatalf("keys after the upgrade: %+v; want the legacy key active and a next key", keys)
	}
}
