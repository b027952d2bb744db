//go:build pkcs11

package pkcs11

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The tests run against a real SoftHSM2 token in a temporary token
// directory of their own (SOFTHSM2_CONF), never the system's.
const installHint = "apt-get install -y softhsm2"

// Tokens the tests create. The PINs are test values, not secrets.
const (
	tokenMain     = "parley-test"
	tokenWrongPIN = "parley-test-pin"
	userPIN       = "4711-user"
	soPIN         = "0815-so"
)

// hsm is what TestMain set up; skip is why the tests cannot run.
var hsm struct {
	module string
	skip   string
}

// softhsmModules are where Debian's libsofthsm2 puts the library.
var softhsmModules = []string{"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"}

func TestMain(m *testing.M) {
	if err := setUpSoftHSM(); err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "pkcs11 tests: %v (CI is set: SoftHSM2 must be installed: %s)\n", err, installHint)
			os.Exit(1)
		}
		hsm.skip = fmt.Sprintf("SoftHSM2 not available (%v); install it with: %s", err, installHint)
	}
	code := m.Run()
	if d := os.Getenv("SOFTHSM2_CONF"); hsm.skip == "" && d != "" {
		_ = os.RemoveAll(filepath.Dir(d))
	}
	os.Exit(code)
}

func setUpSoftHSM() error {
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		return fmt.Errorf("softhsm2-util not found")
	}
	for _, m := range softhsmModules {
		if _, err := os.Stat(m); err == nil {
			hsm.module = m
			break
		}
	}
	if hsm.module == "" {
		return fmt.Errorf("libsofthsm2.so not found in %v", softhsmModules)
	}
	dir, err := os.MkdirTemp("", "parley-softhsm-")
	if err != nil {
		return err
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		return err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return err
	}
	// Before any C_Initialize in this process: SoftHSM2 reads it then.
	os.Setenv("SOFTHSM2_CONF", conf)
	for _, label := range []string{tokenMain, tokenWrongPIN} {
		out, err := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", userPIN, "--so-pin", soPIN).CombinedOutput()
		if err != nil {
			return fmt.Errorf("softhsm2-util --init-token %s: %v: %s", label, err, out)
		}
	}
	return nil
}

// open opens the test token, closed when the test ends.
func open(t testing.TB, sessions int) *Provider {
	t.Helper()
	if hsm.skip != "" {
		t.Skip(hsm.skip)
	}
	p, err := Open(context.Background(), Options{Module: hsm.module, TokenLabel: tokenMain, PIN: userPIN, Sessions: sessions})
	if err != nil {
		t.Fatalf("open SoftHSM2 token: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}
