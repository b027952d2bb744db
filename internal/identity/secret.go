// Package identity issues and checks the credentials Parley hands out:
// site secrets (stored only as hashes) and Direct Line tokens (signed JWTs
// bound to a conversation, a user and trusted origins).
package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// SecretBytes is the entropy of a site secret: 256 bits.
const SecretBytes = 32

// NewSecret returns a fresh random secret, URL-safe base64 without padding.
func NewSecret() (string, error) {
	b := make([]byte, SecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashSecret is the stored form of a secret. Secrets are 256-bit random
// values, so a fast cryptographic hash is enough (a password hash such as
// argon2id adds nothing against brute force of 2^256 and would cap token
// issuance at a few per second); lookup by hash equality is constant-time
// with respect to the secret.
func HashSecret(secret string) []byte { return HashSecretFor("site", secret) }

// HashSecretFor is the stored form of a secret of another kind (such as a
// bot's client secret): the same construction, separated by kind so a
// hash of one kind never matches a secret of another.
func HashSecretFor(kind, secret string) []byte {
	h := sha256.Sum256([]byte("parley-" + kind + "-secret:" + secret))
	return h[:]
}

// LooksLikeSecret reports whether s has the shape of a Parley secret, so
// that garbage never reaches the store.
func LooksLikeSecret(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(SecretBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}
