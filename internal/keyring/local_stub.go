package keyring

// TEMPORARY STUB (helper b, issue 10): the lead's branch has the real local
// provider. Delete this file when merging.

import (
	"context"
	"errors"

	"github.com/tink-crypto/tink-go/v2/tink"
)

var errLocalStub = errors.New("keyring: the local key provider is not on this branch (stub)")

// LocalProvider is a stub of the local provider.
type LocalProvider struct{}

// NewLocalProvider is a stub: it always fails.
func NewLocalProvider(dir string, master []byte) (*LocalProvider, error) {
	return nil, errLocalStub
}

// Name is "local".
func (*LocalProvider) Name() string { return "local" }

// CreateKEK fails.
func (*LocalProvider) CreateKEK(context.Context) (string, error) { return "", errLocalStub }

// AEAD fails.
func (*LocalProvider) AEAD(context.Context, string) (tink.AEAD, error) { return nil, errLocalStub }

// DestroyKEK fails.
func (*LocalProvider) DestroyKEK(context.Context, string) error { return errLocalStub }
