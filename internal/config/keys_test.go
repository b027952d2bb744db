package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const keysBase = "public_url: https://x.example\ntls: {cert_file: a, key_file: b}\n"

func TestKeysDefaultIsLocal(t *testing.T) {
	c, err := Load(write(t, keysBase), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Keys.Provider != "local" || c.Keys.PKCS11.Sessions != 4 {
		t.Fatalf("keys = %+v", c.Keys)
	}
}

func TestKeysPKCS11FromFileAndEnv(t *testing.T) {
	y := keysBase + "keys:\n  provider: pkcs11\n  pkcs11: {module: /usr/lib/softhsm/libsofthsm2.so, token_label: parley, pin_file: /etc/parley/pin}\n"
	c, err := Load(write(t, y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Keys.PKCS11
	if c.Keys.Provider != "pkcs11" || p.Module != "/usr/lib/softhsm/libsofthsm2.so" || p.TokenLabel != "parley" || p.PINFile != "/etc/parley/pin" {
		t.Fatalf("keys = %+v", c.Keys)
	}
	c, err = Load(write(t, keysBase), env(map[string]string{
		"PARLEY_KEYS_PROVIDER": "pkcs11", "PARLEY_KEYS_PKCS11_MODULE": "/opt/hsm/lib.so",
		"PARLEY_KEYS_PKCS11_TOKEN_LABEL": "t1", "PARLEY_PKCS11_PIN": "1234", "PARLEY_KEYS_PKCS11_SESSIONS": "8",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Keys.PKCS11; p.Module != "/opt/hsm/lib.so" || p.TokenLabel != "t1" || p.Sessions != 8 {
		t.Fatalf("env not applied: %+v", p)
	}
	if pin, err := c.Keys.PKCS11.PIN(); err != nil || pin != "1234" {
		t.Fatalf("PIN() = %q, %v", pin, err)
	}
	// The PIN never prints, however the config is printed or logged.
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("config", "keys", c.Keys, "pin", c.Keys.PKCS11.EnvPIN)
	for _, s := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), sb.String()} {
		if strings.Contains(s, "1234") {
			t.Fatalf("PIN printed: %s", s)
		}
	}
}

func TestKeysRefusedNamingTheField(t *testing.T) {
	for name, c := range map[string]struct {
		yaml string
		env  map[string]string
		want string
	}{
		"unknown provider": {"keys: {provider: vault}\n", nil, "keys.provider"},
		"no module":        {"keys: {provider: pkcs11, pkcs11: {token_label: t, pin_file: /p}}\n", nil, "keys.pkcs11.module"},
		"relative module":  {"keys: {provider: pkcs11, pkcs11: {module: libsofthsm2.so, token_label: t, pin_file: /p}}\n", nil, "keys.pkcs11.module"},
		"no token label":   {"keys: {provider: pkcs11, pkcs11: {module: /m.so, pin_file: /p}}\n", nil, "keys.pkcs11.token_label"},
		"long token label": {"keys: {provider: pkcs11, pkcs11: {module: /m.so, token_label: " + strings.Repeat("t", 33) + ", pin_file: /p}}\n", nil, "keys.pkcs11.token_label"},
		"no PIN at all":    {"keys: {provider: pkcs11, pkcs11: {module: /m.so, token_label: t}}\n", nil, "keys.pkcs11.pin_file"},
		"empty env PIN":    {"keys: {provider: pkcs11, pkcs11: {module: /m.so, token_label: t}}\n", map[string]string{"PARLEY_PKCS11_PIN": ""}, "keys.pkcs11.pin_file"},
		"sessions":         {"keys: {provider: pkcs11, pkcs11: {module: /m.so, token_label: t, pin_file: /p, sessions: 0}}\n", nil, "keys.pkcs11.sessions"},
		"bad env sessions": {"", map[string]string{"PARLEY_KEYS_PKCS11_SESSIONS": "many"}, "PARLEY_KEYS_PKCS11_SESSIONS"},
		// A PIN has no place in the configuration file.
		"PIN in the file": {"keys: {provider: pkcs11, pkcs11: {module: /m.so, token_label: t, pin: \"1234\"}}\n", nil, "keys.pkcs11.pin (line 3): unknown setting"},
	} {
		_, err := Load(write(t, keysBase+c.yaml), env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want mention of %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "1234") {
			t.Errorf("%s: error shows the PIN: %v", name, err)
		}
	}
	// The local provider ignores an incomplete pkcs11 block.
	if _, err := Load(write(t, keysBase+"keys: {provider: local, pkcs11: {module: rel.so}}\n"), env(nil)); err != nil {
		t.Fatalf("local with a pkcs11 block: %v", err)
	}
}

func TestPINFile(t *testing.T) {
	dir := t.TempDir()
	pinFile := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := pinFile("pin", "s3cret\n", 0o600)
	if pin, err := (PKCS11{PINFile: good}).PIN(); err != nil || pin != "s3cret" {
		t.Fatalf("PIN() = %q, %v", pin, err)
	}
	if pin, err := (PKCS11{PINFile: pinFile("crlf", "s3cret\r\n", 0o400)}).PIN(); err != nil || pin != "s3cret" {
		t.Fatalf("CRLF PIN() = %q, %v", pin, err)
	}
	// The environment wins over the file.
	if pin, err := (PKCS11{PINFile: good, EnvPIN: "from-env"}).PIN(); err != nil || pin != "from-env" {
		t.Fatalf("env PIN() = %q, %v", pin, err)
	}
	for name, c := range map[string]struct {
		p    PKCS11
		want string
	}{
		"group readable":  {PKCS11{PINFile: pinFile("g", "s3cret\n", 0o640)}, "chmod 600"},
		"world readable":  {PKCS11{PINFile: pinFile("w", "s3cret\n", 0o604)}, "chmod 600"},
		"empty":           {PKCS11{PINFile: pinFile("e", "\n", 0o600)}, "empty"},
		"missing":         {PKCS11{PINFile: filepath.Join(dir, "nope")}, "keys.pkcs11.pin_file"},
		"neither env nor": {PKCS11{}, "PARLEY_PKCS11_PIN"},
	} {
		pin, err := c.p.PIN()
		if err == nil || !strings.Contains(err.Error(), c.want) || pin != "" {
			t.Errorf("%s: PIN() = %q, %v; want error mentioning %q", name, pin, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error shows the PIN: %v", name, err)
		}
	}
}
