//go:build pkcs11

package server_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/keyring/pkcs11/softhsmtest"
)

// hsmOpt configures the harness with a fresh SoftHSM2 token as the key
// provider.
func hsmOpt(t *testing.T) harnessOpt {
	tok := softhsmtest.New(t)
	return func(c *configT) {
		c.Keys.Provider = "pkcs11"
		c.Keys.PKCS11.Module, c.Keys.PKCS11.TokenLabel, c.Keys.PKCS11.EnvPIN = tok.Module, tok.Label, config.Secret(tok.PIN)
	}
}

// The canary scan with the key-encryption keys in an HSM: no canary in the
// clear, and no KEK material in the data directory at all.
func TestCanariesNeverInTheClearOnDiskPKCS11(t *testing.T) {
	var dir string
	opt := hsmOpt(t)
	canaryScan(t, func(c *configT) { opt(c); dir = c.DataDir })
	if files, _ := filepath.Glob(filepath.Join(dir, "keys", "kek-*")); len(files) != 0 {
		t.Fatalf("KEK files in the data directory with the HSM provider: %v", files)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

// KEK rotation under load with the HSM provider.
func TestKEKRotationUnderLoadPKCS11(t *testing.T) {
	kekRotationUnderLoad(t, hsmOpt(t))
}
