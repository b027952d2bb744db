package keyring

import (
	"context"

	"github.com/tink-crypto/tink-go/v2/tink"
)

// Provider holds key-encryption keys (KEKs): the keys that wrap the data
// keys of envelope encryption. The key's lifecycle (next, active, retired,
// destroyed) lives in the store as a key row of purpose "kek"; the row
// keeps only the provider's handle, and the provider keeps the material:
// sealed by the master key in a local keyset (the embedded default), or
// inside a hardware security module that never lets it out (PKCS#11).
//
// The primitive is Tink's AEAD, the interface Tink's own KMS clients
// (Google Cloud KMS, AWS KMS, HashiCorp Vault Transit) already return for
// a key URI, so such a provider is a handle that is the key's URI and an
// AEAD from that client: callers do not change.
type Provider interface {
	// Name identifies the provider ("local", "pkcs11"); it prefixes
	// handles in listings.
	Name() string
	// CreateKEK makes a new key-encryption key and returns its handle: a
	// reference to the key, never key material in the clear.
	CreateKEK(ctx context.Context) (handle string, err error)
	// AEAD returns the primitive that wraps and unwraps data keys under
	// the KEK handle names. Errors say whether the key is unknown or
	// destroyed.
	AEAD(ctx context.Context, handle string) (tink.AEAD, error)
	// DestroyKEK destroys the KEK's material: every data key wrapped by it
	// becomes unrecoverable. Destroying a destroyed key is not an error.
	DestroyKEK(ctx context.Context, handle string) error
}
