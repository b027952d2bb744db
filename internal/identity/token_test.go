package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

func newIssuer(t testing.TB) (*Issuer, func() *Issuer) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	kr, _ := keyring.New(bytes.Repeat([]byte{1}, 32))
	mk := func() *Issuer {
		is, err := NewIssuer(context.Background(), st, kr, "https://gw.example")
		if err != nil {
			t.Fatal(err)
		}
		return is
	}
	return mk(), mk
}

func base() Claims {
	return Claims{Scope: ScopeConversation, Bot: "b", Site: "s", Conv: "c", User: "dl_u"}
}

func TestIssueVerify(t *testing.T) {
	is, again := newIssuer(t)
	tok, exp, err := is.Issue(base(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if time.Until(exp) < 59*time.Minute {
		t.Fatalf("exp %v", exp)
	}
	c, err := is.Verify(tok, ScopeConversation)
	if err != nil || c.User != "dl_u" || c.Conv != "c" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	// The key persists: a second issuer over the same store accepts it.
	if _, err := again().Verify(tok, ScopeConversation); err != nil {
		t.Fatalf("token not valid after reload: %v", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	is, _ := newIssuer(t)
	good, _, _ := is.Issue(base(), time.Hour)
	expired, _, _ := is.Issue(base(), -time.Hour)
	stream, _, _ := is.Issue(Claims{Scope: ScopeStream, Bot: "b", Site: "s", Conv: "c"}, time.Minute)
	parts := strings.Split(good, ".")

	kid := is.signingKid(t)
	// Forge: same kid, another key.
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	forger, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: otherPriv}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	c := base()
	c.Issuer, c.Audience = "https://gw.example", jwt.Audience{"https://gw.example"}
	c.Expiry, c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour)), jwt.NewNumericDate(time.Now())
	forged, _ := jwt.Signed(forger).Claims(c).Serialize()

	// HS256 keyed with the public key.
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(is.publicKey(kid))}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	hmacTok, _ := jwt.Signed(hs).Claims(c).Serialize()

	// alg none.
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"` + kid + `"}`))
	none := hdr + "." + parts[1] + "."

	// Tampered payload (user swapped).
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tp := base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte("dl_u"), []byte("dl_x"), 1))
	tampered := parts[0] + "." + tp + "." + parts[2]

	for name, tc := range map[string]struct {
		tok, scope string
		want       error
	}{
		"expired":            {expired, ScopeConversation, ErrTokenExpired},
		"stream as conv":     {stream, ScopeConversation, ErrTokenInvalid},
		"conv as stream":     {good, ScopeStream, ErrTokenInvalid},
		"forged same kid":    {forged, ScopeConversation, ErrTokenInvalid},
		"hs256 with pub key": {hmacTok, ScopeConversation, ErrTokenInvalid},
		"alg none":           {none, ScopeConversation, ErrTokenInvalid},
		"tampered":           {tampered, ScopeConversation, ErrTokenInvalid},
		"garbage":            {"a.b.c", ScopeConversation, ErrTokenInvalid},
		"huge":               {strings.Repeat("a", 10000), ScopeConversation, ErrTokenInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := is.Verify(tc.tok, tc.scope); !errors.Is(err, tc.want) {
				t.Fatalf("Verify err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	a, _ := NewSecret()
	b, _ := NewSecret()
	if a == b || !LooksLikeSecret(a) || LooksLikeSecret("short") || LooksLikeSecret(a+"x") {
		t.Fatal("secret shape checks wrong")
	}
	if bytes.Equal(HashSecret(a), HashSecret(b)) || !bytes.Equal(HashSecret(a), HashSecret(a)) {
		t.Fatal("hash not a function of the secret")
	}
	if bytes.Contains(HashSecret(a), []byte(a)) {
		t.Fatal("hash contains the secret")
	}
}

func FuzzVerify(f *testing.F) {
	is, _ := newIssuer(f)
	good, _, _ := is.Issue(base(), time.Hour)
	goodClaims, _ := is.Verify(good, ScopeConversation)
	f.Add(good)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJFZERTQSJ9.e30.AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := is.Verify(tok, ScopeConversation)
		// Only the issued token (or a re-encoding of it) may verify.
		if err == nil && c.ID != goodClaims.ID {
			t.Fatalf("forged input verified: %+v", c)
		}
	})
}
