package server_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/server"
)

// A master key file mounted as a symbolic link (a Kubernetes Secret
// volume: master.key -> ..data/master.key) starts, as it did before the
// preflight: the link's target is checked (a regular file, private, a
// key). A dangling link and a link to a readable file are refused.
func TestPreflightMasterKeyBehindASymlink(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSignedUntil(t, dir, "chat.example.com", time.Now().Add(365*24*time.Hour))
	secret := filepath.Join(dir, "secret")
	if err := os.MkdirAll(filepath.Join(secret, "..data"), 0o700); err != nil {
		t.Fatal(err)
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	target := filepath.Join(secret, "..data", "master.key")
	if err := os.WriteFile(target, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(secret, "master.key")
	if err := os.Symlink("..data/master.key", link); err != nil {
		t.Fatal(err)
	}
	cfg := tlsConfig(t, dir, cert, key)
	cfg.MasterKeyFile = link
	ls, err := server.Preflight(cfg, time.Now(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("a master key file behind a symbolic link was refused: %v", err)
	}
	_ = ls.Close()

	if err := os.Chmod(target, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = server.Preflight(cfg, time.Now(), slog.New(slog.DiscardHandler))
	var pe *server.PreflightError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "master_key_file") || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a link to a readable key file: %v; want a refusal naming master_key_file and chmod 600", err)
	}

	if err := os.Remove(target); err != nil {
		t.Fatal(err)
	}
	_, err = server.Preflight(cfg, time.Now(), slog.New(slog.DiscardHandler))
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "master_key_file") || !strings.Contains(err.Error(), "..data/master.key") {
		t.Fatalf("a dangling link: %v; want a refusal naming master_key_file and the missing target", err)
	}
}

// A FIFO (or a link to one) as the master key file is refused at once:
// opening it to read would block the start forever.
func TestPreflightMasterKeyFIFODoesNotHang(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSignedUntil(t, dir, "chat.example.com", time.Now().Add(365*24*time.Hour))
	fifo := filepath.Join(dir, "fifo")
	if err := mkfifo(fifo); err != nil {
		t.Skip("no mkfifo:", err)
	}
	link := filepath.Join(dir, "master.key")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	cfg := tlsConfig(t, dir, cert, key)
	cfg.MasterKeyFile = link
	done := make(chan error, 1)
	go func() {
		_, err := server.Preflight(cfg, time.Now(), slog.New(slog.DiscardHandler))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("a FIFO master key: %v; want 'not a regular file'", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("preflight blocked on a FIFO master key file")
	}
}

// A FIFO as tls.cert_file is refused at once, not waited on.
func TestPreflightCertFIFODoesNotHang(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSignedUntil(t, dir, "chat.example.com", time.Now().Add(365*24*time.Hour))
	fifo := filepath.Join(dir, "cert-fifo")
	if err := mkfifo(fifo); err != nil {
		t.Skip("no mkfifo:", err)
	}
	cfg := tlsConfig(t, dir, cert, key)
	cfg.TLS.CertFile = fifo
	done := make(chan error, 1)
	go func() {
		_, err := server.Preflight(cfg, time.Now(), slog.New(slog.DiscardHandler))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "tls.cert_file") || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("a FIFO certificate: %v; want tls.cert_file: not a regular file", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("preflight blocked on a FIFO certificate file")
	}
}
