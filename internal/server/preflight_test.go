package server_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

func selfSignedUntil(t *testing.T, dir, host string, notAfter time.Time) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	c, k := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := os.WriteFile(c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c, k
}

func tlsConfig(t *testing.T, dir, cert, key string) config.Config {
	cfg := config.Default()
	cfg.Listen, cfg.PublicURL, cfg.DataDir = "127.0.0.1:0", "https://chat.example.com", filepath.Join(dir, "data")
	cfg.MasterKeyFile = filepath.Join(dir, "data", "master.key")
	cfg.TLS.CertFile, cfg.TLS.KeyFile = cert, key
	cfg.Metrics.Listen = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A good configuration: the listener is bound on the address, nothing is
// created, and warnings name what to fix.
func TestPreflightBindsAndWarns(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSignedUntil(t, dir, "other.example.com", time.Now().Add(365*24*time.Hour))
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ls, err := server.Preflight(tlsConfig(t, dir, cert, key), time.Now(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	if _, err := net.Dial("tcp", ls.Main.Addr().String()); err != nil {
		t.Fatalf("the returned listener is not bound: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Fatalf("preflight created the data directory: %v", err)
	}
	for _, w := range []string{"does not name public_url's host", "readable by every user", "tls.key_file=" + key} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("no %q in the logs:\n%s", w, logs.String())
		}
	}
	// The address is now taken: a second preflight says so, with exit 78.
	cfg := tlsConfig(t, dir, cert, key)
	cfg.Listen = ls.Main.Addr().String()
	_, err = server.Preflight(cfg, time.Now(), slog.New(slog.DiscardHandler))
	var pe *server.PreflightError
	if !errors.As(err, &pe) || pe.ExitCode() != server.ExitConfig || len(pe.Problems) != 1 || pe.Problems[0].Field != "listen" {
		t.Fatalf("second preflight = %v", err)
	}
}

// Not a valid certificate at a given time: refused before, after; warned
// close to the expiry.
func TestPreflightCertificateTimes(t *testing.T) {
	dir := t.TempDir()
	notAfter := time.Now().Add(30 * 24 * time.Hour)
	cert, key := selfSignedUntil(t, dir, "chat.example.com", notAfter)
	cfg := tlsConfig(t, dir, cert, key)
	for name, c := range map[string]struct {
		at   time.Time
		want string
	}{
		"expired":       {notAfter.Add(time.Minute), "expired at"},
		"not yet valid": {time.Now().Add(-2 * time.Hour), "is not valid before"},
	} {
		_, err := server.Preflight(cfg, c.at, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "tls.cert_file: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	var logs bytes.Buffer
	ls, err := server.Preflight(cfg, notAfter.Add(-3*24*time.Hour), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ls.Close()
	if !strings.Contains(logs.String(), "expires soon") {
		t.Errorf("no warning 3 days before expiry:\n%s", logs.String())
	}
}

// A PKCS#11 PIN file readable by others is refused, naming the field.
func TestPreflightPKCS11PinFile(t *testing.T) {
	dir := t.TempDir()
	pin := filepath.Join(dir, "pin")
	if err := os.WriteFile(pin, []byte("1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pin, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen, cfg.PublicURL, cfg.InsecureHTTP, cfg.DataDir = "127.0.0.1:0", "http://127.0.0.1:1", true, filepath.Join(dir, "data")
	cfg.MasterKeyFile = filepath.Join(dir, "master.key")
	cfg.Keys.Provider = "pkcs11"
	cfg.Keys.PKCS11 = config.PKCS11{Module: filepath.Join(dir, "none.so"), TokenLabel: "t", PINFile: pin, Sessions: 1}
	_, err := server.Preflight(cfg, time.Now(), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "keys.") {
		t.Fatalf("preflight = %v", err)
	}
}

// The metrics bearer token file, an alert's webhook key file and the audit
// anchor file are checked before anything is created: each bad one is
// named, with the configuration exit code, and the data directory is not
// made (review: these were read after the database and keys existed, and
// an unwritable anchor file went unnoticed).
func TestPreflightSecretAndAnchorFiles(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSignedUntil(t, dir, "chat.example.com", time.Now().Add(90*24*time.Hour))
	loose := filepath.Join(dir, "token.loose")
	if err := os.WriteFile(loose, []byte(strings.Repeat("a", 64)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "hook.short")
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := tlsConfig(t, dir, cert, key)
	cfg.Metrics.BearerTokenFile = loose
	cfg.Security.Alerts = []config.SecurityAlert{{Name: "stuffing", Threshold: 10, Window: config.Duration(time.Minute), By: "client",
		WebhookURL: "https://hooks.example.com/x", WebhookSecretFile: short}}
	cfg.Audit.AnchorFile = filepath.Join(dir, "no-such-dir", "anchor.jsonl")
	_, err := server.Preflight(cfg, time.Now(), slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	var pe *server.PreflightError
	if !errors.As(err, &pe) || pe.ExitCode() != server.ExitConfig {
		t.Fatalf("Preflight = %v, want a PreflightError", err)
	}
	for _, field := range []string{"metrics.bearer_token_file", "security.alerts[0].webhook_secret_file", "audit.anchor_file"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("no problem named %s in:\n%v", field, err)
		}
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the data directory was created: %v", err)
	}
}
