// Package keyring holds every key Parley has. KeySet (keyset.go) is one
// lifecycle for keys of every purpose (next, active, retired, expired,
// destroyed on request); Envelope (envelope.go, kek.go) encrypts content
// under per-scope data keys wrapped by key-encryption keys that a Provider
// holds (local.go: Tink keysets sealed by the master key; pkcs11/: an HSM).
// Keyring (this file) seals small values with the master key (AES-256-GCM,
// random nonce, associated data binding each ciphertext to its purpose);
// the master key never enters the store.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// version prefixes every ciphertext so the format can evolve.
const version byte = 1

// KeySize is the master key length in bytes.
const KeySize = 32

// Keyring seals and opens small values.
type Keyring struct {
	aead cipher.AEAD
}

// New builds a keyring from a 32-byte master key.
func New(master []byte) (*Keyring, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("keyring: master key must be %d bytes, got %d", KeySize, len(master))
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return &Keyring{aead: aead}, nil
}

// Seal encrypts plaintext; aad must be given again to Open.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize(), 1+k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	out := append([]byte{version}, nonce...)
	return k.aead.Seal(out, nonce, plaintext, aad), nil
}

// ErrOpen means a ciphertext was tampered with, truncated or sealed under
// another key or associated data.
var ErrOpen = errors.New("keyring: cannot open sealed value")

// Open decrypts a value made by Seal with the same aad.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(sealed) < 1+ns+k.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := k.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// ParseKey decodes a base64 (standard or URL, padded or not) master key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("master key must decode to %d bytes, got %d", KeySize, len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("master key is not valid base64")
}

// LoadOrCreateFile reads a base64 master key from path, creating it (mode
// 0600) with a fresh random key if it does not exist. A key file readable by
// group or others is refused.
func LoadOrCreateFile(path string) ([]byte, error) {
	return loadFile(path, true)
}

// LoadFile reads a base64 master key from path as LoadOrCreateFile does,
// but never creates it: a missing file is an error that wraps
// os.ErrNotExist.
func LoadFile(path string) ([]byte, error) {
	return loadFile(path, false)
}

func loadFile(path string, create bool) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !create {
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate master key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create key directory: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create master key file: %w", err)
		}
		if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("write master key file: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("write master key file: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat master key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	key, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return key, nil
}
