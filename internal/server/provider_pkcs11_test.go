//go:build pkcs11

package server

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/keyring/pkcs11/softhsmtest"
)

// The HSM binary opens the configured token with the PIN from a 0600 file
// or the environment, and refuses a PIN file others can read.
func TestPKCS11ProviderFromConfig(t *testing.T) {
	tok := softhsmtest.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Keys.Provider = "pkcs11"
	cfg.Keys.PKCS11.Module, cfg.Keys.PKCS11.TokenLabel, cfg.Keys.PKCS11.PINFile = tok.Module, tok.Label, pinFile

	for name, env := range map[string]config.Secret{"pin_file": "", "PARLEY_PKCS11_PIN": config.Secret(tok.PIN)} {
		c := cfg
		if env != "" {
			c.Keys.PKCS11.PINFile, c.Keys.PKCS11.EnvPIN = "", env
		}
		p, err := NewKEKProvider(ctx, c, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		h, err := p.CreateKEK(ctx)
		if err != nil {
			t.Fatalf("%s: CreateKEK: %v", name, err)
		}
		a, err := p.AEAD(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := a.Encrypt([]byte("data key"), []byte("ad"))
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := a.Decrypt(ct, []byte("ad")); err != nil || !bytes.Equal(pt, []byte("data key")) {
			t.Fatalf("%s: round trip: %q, %v", name, pt, err)
		}
		if p.Name() != "pkcs11" {
			t.Fatalf("Name() = %q", p.Name())
		}
		p.(io.Closer).Close()
	}

	if err := os.Chmod(pinFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewKEKProvider(ctx, cfg, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable PIN file: %v; want refused", err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.RemoveAll()
	os.Exit(code)
}
