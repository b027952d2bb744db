package botauth

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

func kids(jwks []JWK) map[string]bool {
	m := map[string]bool{}
	for _, k := range jwks {
		m[k.Kid] = true
	}
	return m
}

// The channel key set on the shared lifecycle keeps its publication
// rules: next and active published, a retired key published for 25 hours
// then dropped (and no longer accepted), a purged key gone at once.
func TestKeySetPublication(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr, _ := keyring.New(bytes.Repeat([]byte{3}, keyring.KeySize))
	ks, err := LoadKeySet(ctx, st, kr, PurposeChannel)
	if err != nil {
		t.Fatal(err)
	}
	first := ks.SigningKid()
	pub := kids(ks.JWKS(nil))
	if len(pub) != 2 || !pub[first] {
		t.Fatalf("fresh JWKS %v, want the signing key and the next key", pub)
	}
	var next string
	for k := range pub {
		if k != first {
			next = k
		}
	}
	if _, err := Rotate(ctx, st, kr, PurposeChannel, time.Now(), false, false); !errors.Is(err, ErrTooSoon) {
		t.Fatalf("rotation to a fresh next key: %v", err)
	}
	// Rotated 26 hours ago (forced): the retired key is past its 25 hours.
	if got, err := Rotate(ctx, st, kr, PurposeChannel, time.Now().Add(-26*time.Hour), true, false); err != nil || got != next {
		t.Fatalf("rotate = %s, %v; want %s", got, err, next)
	}
	if err := ks.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	pub = kids(ks.JWKS(nil))
	if ks.SigningKid() != next || len(pub) != 2 || pub[first] || ks.PublicKey(first) != nil {
		t.Fatalf("after rotation: signing %s, JWKS %v, retired key accepted %v", ks.SigningKid(), pub, ks.PublicKey(first) != nil)
	}
	// A fresh rotation: the retired key stays published and accepted.
	if _, err := Rotate(ctx, st, kr, PurposeChannel, time.Now(), true, false); err != nil {
		t.Fatal(err)
	}
	if err := ks.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if pub = kids(ks.JWKS([]string{"directline"})); len(pub) != 3 || !pub[next] || ks.PublicKey(next) == nil {
		t.Fatalf("JWKS after a fresh rotation %v, want retired + active + next", pub)
	}
	// What the signer signs verifies with the published key of its kid.
	tok, err := ks.Sign([]byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsed.Verify(ks.PublicKey(parsed.Signatures[0].Header.KeyID)); err != nil || parsed.Signatures[0].Header.KeyID != ks.SigningKid() {
		t.Fatalf("signed token does not verify with the published key: %v", err)
	}
	// Purge: the just retired key leaves at once.
	if _, err := Rotate(ctx, st, kr, PurposeChannel, time.Now(), true, true); err != nil {
		t.Fatal(err)
	}
	if err := ks.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if pub = kids(ks.JWKS(nil)); len(pub) != 2 || ks.PublicKey(next) != nil {
		t.Fatalf("JWKS after a purge %v; purged key accepted %v", pub, ks.PublicKey(next) != nil)
	}
	if _, err := LoadKeySet(ctx, st, kr, "kek"); !errors.Is(err, keyring.ErrUnknownPurpose) {
		t.Fatalf("LoadKeySet of another purpose: %v", err)
	}
}
