//go:build !pkcs11

package server

import (
	"context"
	"errors"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/keyring"
)

// errNoPKCS11 is what a default (static, cgo-free) binary says when asked
// for the HSM provider.
var errNoPKCS11 = errors.New("keys.provider is pkcs11, but this binary was built without PKCS#11 support; build it with `go build -tags pkcs11 ./cmd/parley` (needs cgo)")

func newPKCS11Provider(context.Context, config.PKCS11) (keyring.Provider, error) {
	return nil, errNoPKCS11
}
