package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Keys chooses where the key-encryption keys (KEKs) that wrap the data
// keys live.
type Keys struct {
	// Provider is "local" (a keyset in data_dir/keys sealed by the master
	// key; the default) or "pkcs11" (a hardware security module; needs a
	// binary built with -tags pkcs11).
	Provider string `yaml:"provider"`
	PKCS11   PKCS11 `yaml:"pkcs11"`
	// DataKeyCache bounds the unwrapped data keys held in memory (about
	// 1 KB each); past it the least recently used are dropped and
	// unwrapped again on their next use.
	DataKeyCache int `yaml:"data_key_cache"`
}

// PKCS11 names the token that holds the KEKs and how to log in to it.
// The user PIN never comes from the configuration file: PARLEY_PKCS11_PIN
// when it is set, else the file pin_file names (see PIN).
type PKCS11 struct {
	// Module is the absolute path of the vendor's PKCS#11 library.
	Module string `yaml:"module"`
	// TokenLabel names the token (slots are found by their token's label).
	TokenLabel string `yaml:"token_label"`
	// PINFile holds the user PIN (mode 0600 or stricter).
	PINFile string `yaml:"pin_file"`
	// Sessions caps the PKCS#11 sessions open at once.
	Sessions int `yaml:"sessions"`
	// EnvPIN is PARLEY_PKCS11_PIN, when set.
	EnvPIN Secret `yaml:"-"`
}

// Secret is a string that prints as [redacted] (fmt, %v, slog).
type Secret string

// String hides the value.
func (Secret) String() string { return "[redacted]" }

// GoString hides the value.
func (Secret) GoString() string { return "[redacted]" }

// LogValue hides the value.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// DefaultKeys is the local provider, with four PKCS#11 sessions should
// pkcs11 be chosen.
func DefaultKeys() Keys {
	return Keys{Provider: "local", PKCS11: PKCS11{Sessions: 4}, DataKeyCache: 4096}
}

func (k *Keys) applyEnv(env func(string) (string, bool)) error {
	str := func(name string, dst *string) {
		if v, ok := env(name); ok {
			*dst = v
		}
	}
	str("PARLEY_KEYS_PROVIDER", &k.Provider)
	str("PARLEY_KEYS_PKCS11_MODULE", &k.PKCS11.Module)
	str("PARLEY_KEYS_PKCS11_TOKEN_LABEL", &k.PKCS11.TokenLabel)
	str("PARLEY_KEYS_PKCS11_PIN_FILE", &k.PKCS11.PINFile)
	if v, ok := env("PARLEY_PKCS11_PIN"); ok {
		k.PKCS11.EnvPIN = Secret(v)
	}
	if v, ok := env("PARLEY_KEYS_PKCS11_SESSIONS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("PARLEY_KEYS_PKCS11_SESSIONS: %q is not a whole number", v)
		}
		k.PKCS11.Sessions = n
	}
	return nil
}

func (k Keys) validate() []error {
	var errs []error
	bad := func(field, format string, a ...any) { errs = append(errs, fmt.Errorf(field+": "+format, a...)) }
	if k.DataKeyCache < 16 || k.DataKeyCache > 1<<20 {
		bad("keys.data_key_cache", "%d is outside 16..1048576 data keys", k.DataKeyCache)
	}
	switch k.Provider {
	case "local":
	case "pkcs11":
		p := k.PKCS11
		if p.Module == "" {
			bad("keys.pkcs11.module", "is required with provider pkcs11 (the vendor's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so)")
		} else if !filepath.IsAbs(p.Module) {
			bad("keys.pkcs11.module", "%q must be an absolute path (a bare name would be looked up in the loader's search path)", p.Module)
		}
		if strings.TrimSpace(p.TokenLabel) == "" {
			bad("keys.pkcs11.token_label", "is required with provider pkcs11")
		} else if len(p.TokenLabel) > 32 {
			bad("keys.pkcs11.token_label", "%q is longer than PKCS#11's 32 bytes", p.TokenLabel)
		}
		if p.EnvPIN == "" && p.PINFile == "" {
			bad("keys.pkcs11.pin_file", "is required with provider pkcs11 unless PARLEY_PKCS11_PIN is set")
		}
		if p.Sessions < 1 || p.Sessions > 256 {
			bad("keys.pkcs11.sessions", "%d is outside 1..256", p.Sessions)
		}
	default:
		bad("keys.provider", "%q is not one of local, pkcs11", k.Provider)
	}
	return errs
}

// PIN returns the token's user PIN: PARLEY_PKCS11_PIN when it is set and
// not empty, else the first line of pin_file. A PIN file readable by group
// or others is refused, like the master key file.
func (p PKCS11) PIN() (string, error) {
	if p.EnvPIN != "" {
		return string(p.EnvPIN), nil
	}
	if p.PINFile == "" {
		return "", errors.New("keys.pkcs11.pin_file: not set and PARLEY_PKCS11_PIN is empty")
	}
	st, err := os.Stat(p.PINFile)
	if err != nil {
		return "", fmt.Errorf("keys.pkcs11.pin_file: %w", err)
	}
	if !st.Mode().IsRegular() { // before opening it: a FIFO would block the start
		return "", fmt.Errorf("keys.pkcs11.pin_file: %s is not a regular file (mode %v)", p.PINFile, st.Mode())
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("keys.pkcs11.pin_file: %s is readable by others (mode %v); chmod 600 it", p.PINFile, st.Mode().Perm())
	}
	b, err := os.ReadFile(p.PINFile)
	if err != nil {
		return "", fmt.Errorf("keys.pkcs11.pin_file: %w", err)
	}
	pin, _, _ := strings.Cut(string(b), "\n")
	pin = strings.TrimRight(pin, "\r")
	if pin == "" {
		return "", fmt.Errorf("keys.pkcs11.pin_file: %s is empty", p.PINFile)
	}
	return pin, nil
}
