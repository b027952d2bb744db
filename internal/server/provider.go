package server

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/keyring"
)

// NewKEKProvider opens the key-encryption-key provider cfg.Keys chooses:
// the local keyset in data_dir/keys sealed by the master key, or a PKCS#11
// token (only in a binary built with -tags pkcs11). A provider that is an
// io.Closer (pkcs11) must be closed at shutdown.
func NewKEKProvider(ctx context.Context, cfg config.Config, master []byte) (keyring.Provider, error) {
	switch cfg.Keys.Provider {
	case "local", "": // "": a Config built in code rather than by config.Load
		p, err := keyring.NewLocalProvider(filepath.Join(cfg.DataDir, "keys"), master)
		if err != nil {
			return nil, fmt.Errorf("open local key provider: %w", err)
		}
		return p, nil
	case "pkcs11":
		return newPKCS11Provider(ctx, cfg.Keys.PKCS11)
	default:
		return nil, fmt.Errorf("keys.provider: %q is not one of local, pkcs11", cfg.Keys.Provider)
	}
}
