package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `bot update --insecure-no-auth` against a production configuration (TLS,
// no insecure_http) is refused: serve refuses to start with such a bot,
// and a server already running would call it without authentication from
// then on. Nothing changes; with --data (no configuration to judge) and
// with an insecure_http configuration it is allowed.
func TestBotUpdateInsecureRefusedInProduction(t *testing.T) {
	data := t.TempDir()
	b := createBot(t, data, "bot", "--endpoint", "http://127.0.0.1:3978/api/messages", "--public-url", testPublicURL)
	cert, key := writeCert(t, t.TempDir(), "serve", time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
	prod := filepath.Join(t.TempDir(), "parley.yaml")
	if err := os.WriteFile(prod, []byte("listen: 127.0.0.1:0\nmetrics:\n  listen: 127.0.0.1:0\npublic_url: https://chat.example.com\ndata_dir: "+data+"\ntls:\n  cert_file: "+cert+"\n  key_file: "+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, nil, "bot", "update", b.ID, "--config", prod, "--insecure-no-auth")
	if err == nil || !strings.Contains(err.Error(), "insecure_http") {
		t.Fatalf("bot update --insecure-no-auth with a TLS configuration: %v; want a refusal naming insecure_http", err)
	}
	if bots := listBots(t, data); len(bots) != 1 || bots[0].InsecureNoAuth {
		t.Fatalf("a refused update changed the bot: %+v", bots)
	}
	if s := storedBotSecrets(t, data, b.ID); s[0] == nil {
		t.Fatal("a refused update revoked the bot's client secret")
	}
	dev := filepath.Join(t.TempDir(), "parley.yaml")
	if err := os.WriteFile(dev, []byte("listen: 127.0.0.1:0\nmetrics:\n  listen: 127.0.0.1:0\npublic_url: http://127.0.0.1:8080\ninsecure_http: true\ndata_dir: "+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, nil, "bot", "update", b.ID, "--config", dev, "--insecure-no-auth"); err != nil {
		t.Fatalf("bot update --insecure-no-auth with an insecure_http configuration: %v", err)
	}
}

// `bot create --insecure-no-auth` against a production configuration is
// refused the same way, and creates nothing.
func TestBotCreateInsecureRefusedInProduction(t *testing.T) {
	data := t.TempDir()
	createBot(t, data, "first", "--endpoint", "https://bot.example.com/api/messages", "--public-url", testPublicURL) // the data directory exists
	cert, key := writeCert(t, t.TempDir(), "serve", time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
	prod := filepath.Join(t.TempDir(), "parley.yaml")
	if err := os.WriteFile(prod, []byte("listen: 127.0.0.1:0\nmetrics:\n  listen: 127.0.0.1:0\npublic_url: https://chat.example.com\ndata_dir: "+data+"\ntls:\n  cert_file: "+cert+"\n  key_file: "+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, nil, "bot", "create", "--config", prod, "--name", "dev", "--endpoint", "http://127.0.0.1:3978/api/messages", "--insecure-no-auth")
	if err == nil || !strings.Contains(err.Error(), "insecure_http") {
		t.Fatalf("bot create --insecure-no-auth with a TLS configuration: %v; want a refusal naming insecure_http", err)
	}
	if bots := listBots(t, data); len(bots) != 1 {
		t.Fatalf("a refused create left %d bots, want the 1 from before", len(bots))
	}
}
