//go:build pkcs11

package pkcs11

import (
	"errors"

	"github.com/miekg/pkcs11"
)

var (
	// ErrKeyNotFound means the token holds no key under the handle: it was
	// destroyed, or never existed in this token. Data wrapped by it cannot
	// be recovered.
	ErrKeyNotFound = errors.New("key-encryption key not found in the token: destroyed or unknown")
	// ErrDecrypt means a ciphertext failed authentication: it was modified
	// or truncated, or made under another key or other associated data.
	ErrDecrypt = errors.New("ciphertext does not authenticate: modified, truncated, or made under another key or associated data")
	// ErrNotLoggedIn means the token ended the login (it was reset or
	// reinserted): keys are not reachable, but not gone either.
	ErrNotLoggedIn = errors.New("not logged in to the token any more (was it reset?); restart Parley to log in again")
	// ErrClosed means the provider was closed.
	ErrClosed = errors.New("pkcs11 provider is closed")
)

// is reports whether err is one of the PKCS#11 return values.
func is(err error, rvs ...uint) bool {
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, rv := range rvs {
		if uint(e) == rv {
			return true
		}
	}
	return false
}

// staleHandle reports an object handle the token no longer knows.
func staleHandle(err error) bool {
	return is(err, pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID)
}
