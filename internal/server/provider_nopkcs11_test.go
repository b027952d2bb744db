//go:build !pkcs11

package server

import (
	"context"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/config"
)

// A default binary asked for the HSM says how to build one that has it.
func TestDefaultBinaryRefusesPKCS11(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Keys.Provider = "pkcs11"
	cfg.Keys.PKCS11 = config.PKCS11{Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "parley", EnvPIN: "1234", Sessions: 1}
	p, err := NewKEKProvider(context.Background(), cfg, make([]byte, 32))
	if err == nil || p != nil {
		t.Fatalf("newKEKProvider = %v, %v; want an error", p, err)
	}
	for _, want := range []string{"built without PKCS#11 support", "go build -tags pkcs11 ./cmd/parley", "cgo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
