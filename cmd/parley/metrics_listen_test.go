package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A metrics port in use stops serve before its "serving" line, naming
// metrics.listen.
func TestServeRefusesMetricsPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	data := t.TempDir()
	cfg := filepath.Join(data, "parley.yaml")
	body := "listen: 127.0.0.1:0\npublic_url: http://127.0.0.1:1\ninsecure_http: true\ndata_dir: " + data + "\nmetrics:\n  listen: " + busy.Addr().String() + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := run(t, nil, "serve", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "metrics.listen") {
		t.Fatalf("serve with its metrics port in use: %v", err)
	}
	if strings.Contains(stderr, "parley serving") {
		t.Fatalf("serve said it was serving:\n%s", stderr)
	}
}
