//go:build pkcs11

package pkcs11

import (
	"context"
	"os"
	"testing"

	"github.com/parley-gw/parley/internal/keyring/pkcs11/softhsmtest"
)

// open opens a fresh SoftHSM2 token, closed when the test ends.
func open(t testing.TB, sessions int) *Provider {
	t.Helper()
	tok := softhsmtest.New(t)
	p, err := Open(context.Background(), Options{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Sessions: sessions})
	if err != nil {
		t.Fatalf("open SoftHSM2 token: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.RemoveAll()
	os.Exit(code)
}
