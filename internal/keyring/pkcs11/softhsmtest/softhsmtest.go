//go:build pkcs11

// Package softhsmtest gives tests a fresh SoftHSM2 token in a token
// directory of the test process's own (SOFTHSM2_CONF), never the system's.
// Without SoftHSM2 a test is skipped, with the command that installs it;
// when the environment variable CI is set it fails instead.
package softhsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Install is the command that installs SoftHSM2 on Debian.
const Install = "apt-get install -y softhsm2"

// Modules are where Debian's libsofthsm2 puts the library.
var Modules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
}

// Token is an initialized token. The PINs are test values.
type Token struct {
	Module string
	Label  string
	PIN    string
	SOPIN  string
}

var setup struct {
	once   sync.Once
	util   string
	module string
	err    error
}

// New initializes a token with a fresh label and PIN, deleted when the
// test ends. The first call points SOFTHSM2_CONF at a temporary token
// directory: it must come before the process loads libsofthsm2.
func New(t testing.TB) Token {
	t.Helper()
	setup.once.Do(configure)
	if setup.err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("SoftHSM2 is needed (CI is set): %v; install it with: %s", setup.err, Install)
		}
		t.Skipf("SoftHSM2 not available (%v); install it with: %s", setup.err, Install)
	}
	tok := Token{Module: setup.module, Label: "parley-" + random(6), PIN: random(8), SOPIN: random(8)}
	out, err := exec.Command(setup.util, "--init-token", "--free", "--label", tok.Label, "--pin", tok.PIN, "--so-pin", tok.SOPIN).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(setup.util, "--delete-token", "--token", tok.Label).Run() })
	return tok
}

func configure() {
	setup.util, setup.err = exec.LookPath("softhsm2-util")
	if setup.err != nil {
		setup.err = fmt.Errorf("softhsm2-util not found")
		return
	}
	for _, m := range Modules {
		if _, err := os.Stat(m); err == nil {
			setup.module = m
			break
		}
	}
	if setup.module == "" {
		setup.err = fmt.Errorf("libsofthsm2.so not found in %v", Modules)
		return
	}
	dir, err := os.MkdirTemp("", "parley-softhsm-")
	if err != nil {
		setup.err = err
		return
	}
	tokens := filepath.Join(dir, "tokens")
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.Mkdir(tokens, 0o700); err != nil {
		setup.err = err
		return
	}
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		setup.err = err
		return
	}
	setup.err = os.Setenv("SOFTHSM2_CONF", conf)
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RemoveAll removes the temporary token directory; call it from TestMain
// after m.Run.
func RemoveAll() {
	if conf := os.Getenv("SOFTHSM2_CONF"); setup.err == nil && setup.module != "" && conf != "" {
		_ = os.RemoveAll(filepath.Dir(conf))
	}
}
