//go:build pkcs11

package pkcs11

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/miekg/pkcs11"
)

const (
	ivSize  = 12 // bytes of the random GCM IV put before the ciphertext
	tagBits = 128
)

// errRelabelled means a cached object handle now names another object: the
// key was destroyed and the token reused its handle.
var errRelabelled = errors.New("object handle names another key")

// aead is a tink.AEAD whose AES-GCM runs inside the token. Its output is
// IV (12 bytes) ‖ ciphertext ‖ tag (16 bytes).
type aead struct {
	p     *Provider
	label string
	obj   atomic.Uint64 // the key's object handle, found again when stale
}

// Encrypt seals plaintext under the KEK with associatedData authenticated.
func (a *aead) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	iv := make([]byte, ivSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("encrypt with key %s: %w", a.label, err)
	}
	var out []byte
	err := a.do(func(c *pkcs11.Ctx, sh pkcs11.SessionHandle, obj pkcs11.ObjectHandle) error {
		// Encrypting under a reused handle would wrap data under a key
		// the row does not name; decrypting is safe either way (GCM
		// refuses), so only encryption checks the label.
		attrs, err := c.GetAttributeValue(sh, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
		if err != nil {
			return err
		}
		if len(attrs) != 1 || string(attrs[0].Value) != a.label {
			return errRelabelled
		}
		params := pkcs11.NewGCMParams(iv, associatedData, tagBits)
		defer params.Free()
		if err := c.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, obj); err != nil {
			return err
		}
		ct, err := c.Encrypt(sh, plaintext)
		if err != nil {
			return err
		}
		// Some HSMs ignore the caller's IV and write their own back.
		used := params.IV()
		if len(used) != ivSize {
			return fmt.Errorf("token returned a %d-byte GCM IV, want %d", len(used), ivSize)
		}
		out = append(used, ct...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("encrypt with key %s in token %q: %w", a.label, a.p.token, err)
	}
	return out, nil
}

// Decrypt opens a ciphertext made by Encrypt under the same key and
// associatedData; anything else fails with ErrDecrypt.
func (a *aead) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	if len(ciphertext) < ivSize+tagBits/8 {
		return nil, fmt.Errorf("decrypt with key %s: %w", a.label, ErrDecrypt)
	}
	var out []byte
	authFailed := false
	err := a.do(func(c *pkcs11.Ctx, sh pkcs11.SessionHandle, obj pkcs11.ObjectHandle) error {
		params := pkcs11.NewGCMParams(ciphertext[:ivSize], associatedData, tagBits)
		defer params.Free()
		if err := c.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, obj); err != nil {
			return err
		}
		pt, err := c.Decrypt(sh, ciphertext[ivSize:])
		if err != nil {
			authFailed = !staleHandle(err)
			return err
		}
		out = pt
		return nil
	})
	switch {
	case err == nil:
		return out, nil
	// SoftHSM2 reports a failed GCM tag as CKR_GENERAL_ERROR; others
	// use CKR_ENCRYPTED_DATA_INVALID.
	case authFailed && is(err, pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE, pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_FUNCTION_FAILED):
		return nil, fmt.Errorf("decrypt with key %s: %w (%w)", a.label, ErrDecrypt, err)
	default:
		return nil, fmt.Errorf("decrypt with key %s in token %q: %w", a.label, a.p.token, err)
	}
}

// do runs f with the key's object handle on a session of its own. A stale
// handle (the key destroyed, or the token's handles renumbered) is looked
// up again by label once: ErrKeyNotFound when the key is gone.
func (a *aead) do(f func(*pkcs11.Ctx, pkcs11.SessionHandle, pkcs11.ObjectHandle) error) error {
	ctx := context.Background() // tink.AEAD carries no context
	for try := 0; ; try++ {
		obj := pkcs11.ObjectHandle(a.obj.Load())
		err := a.p.session(ctx, func(sh pkcs11.SessionHandle) error { return f(a.p.ctx, sh, obj) })
		if err == nil || (!staleHandle(err) && !errors.Is(err, errRelabelled)) {
			return err
		}
		if try > 0 {
			return ErrKeyNotFound
		}
		found, err := a.p.lookup(ctx, a.label)
		if errors.Is(err, ErrKeyNotFound) {
			return ErrKeyNotFound
		}
		if err != nil {
			return err
		}
		a.obj.Store(uint64(found))
	}
}
