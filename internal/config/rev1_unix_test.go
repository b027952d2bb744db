//go:build unix

package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The secret files read at start (metrics.bearer_token_file, an alert's
// webhook_secret_file) naming a FIFO are refused at once: opening one to
// read blocks the start forever.
func TestSecretFilesFIFODoNotHang(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "secret")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no mkfifo:", err)
	}
	for name, read := range map[string]func() error{
		"metrics.bearer_token_file": func() error {
			_, err := Metrics{Listen: "127.0.0.1:9464", BearerTokenFile: fifo}.BearerToken()
			return err
		},
		"webhook_secret_file": func() error {
			_, err := SecurityAlert{Name: "r", WebhookSecretFile: fifo}.WebhookSecret()
			return err
		},
		"keys.pkcs11.pin_file": func() error {
			_, err := PKCS11{PINFile: fifo}.PIN()
			return err
		},
	} {
		done := make(chan error, 1)
		go func() { done <- read() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), name) {
				t.Errorf("%s on a FIFO: %v; want 'not a regular file' naming the field", name, err)
			}
		case <-time.After(3 * time.Second):
			t.Errorf("%s: reading a FIFO blocked", name)
		}
	}
}

// The webhook secret file is checked like the metrics token file and the
// master key: readable by group or others is refused (it forges alerts).
func TestWebhookSecretFileMustBePrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := SecurityAlert{Name: "r", WebhookSecretFile: p}
	if _, err := a.WebhookSecret(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a 0644 webhook secret file: %v; want a refusal saying chmod 600", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := a.WebhookSecret(); err != nil || string(b) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("a 0600 webhook secret file: %q, %v", b, err)
	}
}
