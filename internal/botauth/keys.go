// Package botauth makes Parley the Bot Framework authority for its bots:
// RSA keys published as OpenID metadata and JWKS, the channel→bot JWT on
// every delivery, a client-credentials token service for bots, and the
// check of the bearer token on every Bot Connector call.
package botauth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
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
	PurposeChannel = keyring.PurposeChannel
	PurposeSTS     = keyring.PurposeSTS
)

// RetiredKeyRetention is how long a retired key stays published: the SDK
// refreshes its key cache every 24 hours, plus a token lifetime and margin.
const RetiredKeyRetention = keyring.PublishedRetiredOverlap

// ErrTooSoon refuses a rotation to a key published too recently for every
// bot to have fetched it (the error is a *keyring.TooSoonError).
var ErrTooSoon = keyring.ErrTooSoon

// KeySet is one purpose's keys within the gateway's key set: the one that
// signs, and every key that is published (the next key ahead of its use,
// retired keys for a while).
type KeySet struct {
	keys    *keyring.KeySet
	purpose string

	mu     sync.Mutex
	signer *signer // for the active key last seen
}

type signer struct {
	kid string
	s   jose.Signer
}

// LoadKeySet loads purpose's keys into a key set of their own, creating
// the first signing key and the next key when missing.
func LoadKeySet(ctx context.Context, st store.Store, kr *keyring.Keyring, purpose string) (*KeySet, error) {
	if purpose != PurposeChannel && purpose != PurposeSTS {
		return nil, fmt.Errorf("load keys: %w %q", keyring.ErrUnknownPurpose, purpose)
	}
	keys := keyring.NewKeySet(keyring.KeySetConfig{Store: st, Keyring: kr, Purposes: []keyring.Purpose{keyring.RSAPurpose(purpose)}})
	if err := keys.Load(ctx); err != nil {
		return nil, err
	}
	return NewKeySet(keys, purpose)
}

// NewKeySet is purpose's keys in keys (loaded already).
func NewKeySet(keys *keyring.KeySet, purpose string) (*KeySet, error) {
	ks := &KeySet{keys: keys, purpose: purpose}
	if _, err := ks.current(); err != nil {
		return nil, err
	}
	return ks, nil
}

// Reload reads the keys from the store (a rotation made by another process
// or replica takes effect here). It reloads every purpose of the key set.
func (ks *KeySet) Reload(ctx context.Context) error {
	if err := ks.keys.Reload(ctx); err != nil {
		return err
	}
	_, err := ks.current()
	return err
}

// current is the signer of the active key, built once per key.
func (ks *KeySet) current() (*signer, error) {
	k, err := ks.keys.Active(ks.purpose)
	if err != nil {
		return nil, err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.signer != nil && ks.signer.kid == k.ID {
		return ks.signer, nil
	}
	priv, ok := k.Value.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s key %s: not an RSA key", ks.purpose, k.ID)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.ID))
	if err != nil {
		return nil, fmt.Errorf("%s signer: %w", ks.purpose, err)
	}
	ks.signer = &signer{kid: k.ID, s: s}
	return ks.signer, nil
}

// SigningKid is the kid of the key that signs now.
func (ks *KeySet) SigningKid() string {
	k, err := ks.keys.Active(ks.purpose)
	if err != nil {
		return ""
	}
	return k.ID
}

// Sign serializes claims as a compact RS256 JWT.
func (ks *KeySet) Sign(claims []byte) (string, error) {
	s, err := ks.current()
	if err != nil {
		return "", fmt.Errorf("sign %s token: %w", ks.purpose, err)
	}
	obj, err := s.s.Sign(claims)
	if err != nil {
		return "", fmt.Errorf("sign %s token: %w", ks.purpose, err)
	}
	return obj.CompactSerialize()
}

// PublicKey returns the published key with kid, or nil.
func (ks *KeySet) PublicKey(kid string) *rsa.PublicKey {
	v, err := ks.keys.View(ks.purpose)
	if err != nil {
		return nil
	}
	k := v.Accepted(kid)
	if k == nil {
		return nil
	}
	priv, ok := k.Value.(*rsa.PrivateKey)
	if !ok {
		return nil
	}
	return &priv.PublicKey
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
	out := []JWK{}
	v, err := ks.keys.View(ks.purpose)
	if err != nil {
		return out
	}
	for _, k := range v.Published() {
		priv, ok := k.Value.(*rsa.PrivateKey)
		if !ok {
			continue
		}
		pub := &priv.PublicKey
		out = append(out, JWK{
			Kty: "RSA", Use: "sig", Alg: "RS256", Kid: k.ID,
			N:            base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			E:            base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
			Endorsements: endorsements,
		})
	}
	return out
}

// Rotate switches purpose's signing to the next key (published since the
// previous rotation), retires the current key and publishes a new next
// key. Unless force is set it refuses (ErrTooSoon) when the next key is
// younger than 24 hours. Retired keys stay published and accepted for
// RetiredKeyRetention, then are kept (unpublished) until destroyed. With
// purgeRetired, every retired key (the one just retired too) is destroyed
// at once: for a key that may be compromised.
func Rotate(ctx context.Context, st store.Store, kr *keyring.Keyring, purpose string, now time.Time, force, purgeRetired bool) (activated string, err error) {
	if purpose != PurposeChannel && purpose != PurposeSTS {
		return "", fmt.Errorf("rotate keys: %w %q", keyring.ErrUnknownPurpose, purpose)
	}
	keys := keyring.NewKeySet(keyring.KeySetConfig{Store: st, Keyring: kr, Purposes: []keyring.Purpose{keyring.RSAPurpose(purpose)},
		Now: func() time.Time { return now }})
	r, err := keys.Rotate(ctx, purpose, keyring.RotateOptions{Force: force, PurgeRetired: purgeRetired})
	if err != nil {
		return "", err
	}
	return r.Activated, nil
}
