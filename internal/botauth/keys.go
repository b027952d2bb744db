// Package botauth makes Parley the Bot Framework authority for its bots:
// RSA keys published as OpenID metadata and JWKS, the channel→bot JWT on
// every delivery, a client-credentials token service for bots, and the
// check of the bearer token on every Bot Connector call.
package botauth

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// Key purposes: the channel key signs what Parley sends to bots; the STS
// key signs the access tokens bots present to Parley. They never mix.
const (
	PurposeChannel = "channel"
	PurposeSTS     = "sts"
)

// RetiredKeyRetention is how long a retired key stays published: the SDK
// refreshes its key cache every 24 hours, plus a token lifetime and margin.
const RetiredKeyRetention = 25 * time.Hour

// rsaBits is the size of generated keys.
const rsaBits = 2048

// KeySet is one purpose's keys: the one that signs, and every key that is
// published (the next key ahead of its use, retired keys for a while).
type KeySet struct {
	st      store.Store
	kr      *keyring.Keyring
	purpose string
	now     func() time.Time

	mu        sync.RWMutex
	signer    jose.Signer
	signKid   string
	published []publicKey // oldest first
	byKid     map[string]*rsa.PublicKey
}

type publicKey struct {
	kid string
	pub *rsa.PublicKey
}

// LoadKeySet loads purpose's keys, creating the first signing key and the
// next key when missing.
func LoadKeySet(ctx context.Context, st store.Store, kr *keyring.Keyring, purpose string) (*KeySet, error) {
	ks := &KeySet{st: st, kr: kr, purpose: purpose, now: time.Now}
	if err := ks.ensure(ctx); err != nil {
		return nil, err
	}
	if err := ks.Reload(ctx); err != nil {
		return nil, err
	}
	return ks, nil
}

// ensure creates an active key and a next key if there are none.
func (ks *KeySet) ensure(ctx context.Context) error {
	keys, err := ks.st.ListKeys(ctx, ks.purpose)
	if err != nil {
		return fmt.Errorf("load %s keys: %w", ks.purpose, err)
	}
	var active, next bool
	for _, k := range keys {
		switch {
		case k.ActivatedAt.IsZero():
			next = true
		case k.RetiredAt.IsZero():
			active = true
		}
	}
	now := ks.now()
	if !active {
		k, err := NewKey(ks.kr, ks.purpose, now)
		if err != nil {
			return err
		}
		k.ActivatedAt = now
		if err := ks.st.PutKey(ctx, k); err != nil {
			return fmt.Errorf("save %s key: %w", ks.purpose, err)
		}
	}
	if !next {
		k, err := NewKey(ks.kr, ks.purpose, now.Add(time.Millisecond))
		if err != nil {
			return err
		}
		if err := ks.st.PutKey(ctx, k); err != nil {
			return fmt.Errorf("save next %s key: %w", ks.purpose, err)
		}
	}
	return nil
}

// Reload reads the keys from the store (a rotation made by another process
// or replica takes effect here).
func (ks *KeySet) Reload(ctx context.Context) error {
	keys, err := ks.st.ListKeys(ctx, ks.purpose)
	if err != nil {
		return fmt.Errorf("load %s keys: %w", ks.purpose, err)
	}
	cutoff := ks.now().Add(-RetiredKeyRetention)
	var published []publicKey
	byKid := map[string]*rsa.PublicKey{}
	var signKey *rsa.PrivateKey
	var signKid string
	var signSince time.Time
	for _, k := range keys {
		if !k.RetiredAt.IsZero() && k.RetiredAt.Before(cutoff) {
			continue // past retention: no longer published or accepted
		}
		der, err := ks.kr.Open(k.Sealed, aad(ks.purpose, k.ID))
		if err != nil {
			return fmt.Errorf("open %s key %s (wrong master key?): %w", ks.purpose, k.ID, err)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("%s key %s: %w", ks.purpose, k.ID, err)
		}
		priv, ok := parsed.(*rsa.PrivateKey)
		if !ok {
			return fmt.Errorf("%s key %s: not an RSA key", ks.purpose, k.ID)
		}
		published = append(published, publicKey{kid: k.ID, pub: &priv.PublicKey})
		byKid[k.ID] = &priv.PublicKey
		if !k.ActivatedAt.IsZero() && k.RetiredAt.IsZero() && !k.ActivatedAt.Before(signSince) {
			signKey, signKid, signSince = priv, k.ID, k.ActivatedAt
		}
	}
	if signKey == nil {
		return fmt.Errorf("no active %s key", ks.purpose)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: signKey},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", signKid))
	if err != nil {
		return fmt.Errorf("%s signer: %w", ks.purpose, err)
	}
	ks.mu.Lock()
	ks.signer, ks.signKid, ks.published, ks.byKid = signer, signKid, published, byKid
	ks.mu.Unlock()
	return nil
}

// SigningKid is the kid of the key that signs now.
func (ks *KeySet) SigningKid() string {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.signKid
}

// Sign serializes claims as a compact RS256 JWT.
func (ks *KeySet) Sign(claims []byte) (string, error) {
	ks.mu.RLock()
	signer := ks.signer
	ks.mu.RUnlock()
	obj, err := signer.Sign(claims)
	if err != nil {
		return "", fmt.Errorf("sign %s token: %w", ks.purpose, err)
	}
	return obj.CompactSerialize()
}

// PublicKey returns the published key with kid, or nil.
func (ks *KeySet) PublicKey(kid string) *rsa.PublicKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.byKid[kid]
}

// JWK is a published RSA public key. It is built field by field from the
// public key, so no private material can reach it.
type JWK struct {
	Kty          string   `json:"kty"`
	Use          string   `json:"use"`
	Alg          string   `json:"alg"`
	Kid          string   `json:"kid"`
	N            string   `json:"n"`
	E            string   `json:"e"`
	Endorsements []string `json:"endorsements,omitempty"`
}

// JWKS returns the published keys; endorsements, when given, are attached
// to every key.
func (ks *KeySet) JWKS(endorsements []string) []JWK {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	out := make([]JWK, 0, len(ks.published))
	for _, p := range ks.published {
		out = append(out, JWK{
			Kty: "RSA", Use: "sig", Alg: "RS256", Kid: p.kid,
			N:            base64.RawURLEncoding.EncodeToString(p.pub.N.Bytes()),
			E:            base64.RawURLEncoding.EncodeToString(big.NewInt(int64(p.pub.E)).Bytes()),
			Endorsements: endorsements,
		})
	}
	return out
}

// NewKey generates an RSA key for purpose, sealed for the store, with the
// RFC 7638 thumbprint as its kid (so a kid is never reused).
func NewKey(kr *keyring.Keyring, purpose string, now time.Time) (store.Key, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return store.Key{}, fmt.Errorf("generate %s key: %w", purpose, err)
	}
	tp, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return store.Key{}, fmt.Errorf("%s key thumbprint: %w", purpose, err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.Key{}, fmt.Errorf("encode %s key: %w", purpose, err)
	}
	sealed, err := kr.Seal(der, aad(purpose, kid))
	if err != nil {
		return store.Key{}, fmt.Errorf("seal %s key: %w", purpose, err)
	}
	return store.Key{ID: kid, Purpose: purpose, Sealed: sealed, CreatedAt: now}, nil
}

func aad(purpose, kid string) []byte { return []byte("parley-" + purpose + "-key:" + kid) }

// ErrTooSoon refuses a rotation to a key published too recently for every
// bot to have fetched it.
var ErrTooSoon = errors.New("the next key was published less than 24 hours ago; bots may not have fetched it yet")

// Rotate switches signing to the next key (published since the previous
// rotation), retires the current key, publishes a new next key and removes
// keys retired more than RetiredKeyRetention ago. Unless force is set it
// refuses when the next key is younger than 24 hours. With purgeRetired,
// every retired key (the one just retired too) stops being published and
// accepted at once: for a key that may be compromised.
func Rotate(ctx context.Context, st store.Store, kr *keyring.Keyring, purpose string, now time.Time, force, purgeRetired bool) (activated string, err error) {
	keys, err := st.ListKeys(ctx, purpose)
	if err != nil {
		return "", fmt.Errorf("rotate %s keys: %w", purpose, err)
	}
	for _, k := range keys {
		if k.ActivatedAt.IsZero() {
			if activated == "" {
				activated = k.ID
				if !force && now.Sub(k.CreatedAt) < 24*time.Hour {
					return "", ErrTooSoon
				}
			}
		}
	}
	if activated == "" {
		return "", fmt.Errorf("rotate %s keys: no next key (start the server once first)", purpose)
	}
	next, err := NewKey(kr, purpose, now)
	if err != nil {
		return "", err
	}
	purgeBefore := now.Add(-RetiredKeyRetention)
	if purgeRetired {
		purgeBefore = now.Add(time.Nanosecond)
	}
	if err := st.RotateKeys(ctx, purpose, next, now, purgeBefore); err != nil {
		return "", fmt.Errorf("rotate %s keys: %w", purpose, err)
	}
	return activated, nil
}
