//go:build pkcs11

package server

import (
	"context"
	"fmt"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/keyring/pkcs11"
)

// newPKCS11Provider logs in to the configured token. The PIN comes from
// PARLEY_PKCS11_PIN or keys.pkcs11.pin_file (config.PKCS11.PIN) and goes
// nowhere but C_Login.
func newPKCS11Provider(ctx context.Context, c config.PKCS11) (keyring.Provider, error) {
	pin, err := c.PIN()
	if err != nil {
		return nil, fmt.Errorf("open HSM key provider: %w", err)
	}
	p, err := pkcs11.Open(ctx, pkcs11.Options{Module: c.Module, TokenLabel: c.TokenLabel, PIN: pin, Sessions: c.Sessions})
	if err != nil {
		return nil, fmt.Errorf("open HSM key provider: %w", err)
	}
	return p, nil
}
