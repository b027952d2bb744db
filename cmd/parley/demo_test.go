package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

func TestDemoPageAndTokenEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	p := startDemo(t, bin, freePort(t), t.TempDir())
	status, hdr, page := get(t, p.info.Page)
	if status != 200 || !strings.Contains(page, "http://127.0.0.1:1/webchat.js") || !strings.Contains(page, "Parley demo") {
		t.Fatalf("demo page = %d %.200s", status, page)
	}
	if strings.Contains(page, p.info.Secret) {
		t.Fatal("the demo page contains the site secret")
	}
	if p.info.Admin != "" {
		t.Fatalf("the console is on without --admin: %s", p.info.Admin)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP = %q", csp)
	}
	users := map[string]bool{}
	for i := 0; i < 2; i++ {
		res, err := http.Post(p.info.Page+"demo/token", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		var tok struct{ Token, UserID, ConversationID string }
		_ = json.NewDecoder(res.Body).Decode(&tok)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(tok.UserID, "dl_") || len(tok.UserID) < 20 || tok.Token == "" || strings.Contains(tok.Token, p.info.Secret) {
			t.Fatalf("demo token = %d %+v", res.StatusCode, tok)
		}
		users[tok.UserID] = true
	}
	if len(users) != 2 {
		t.Fatal("each page load must get a fresh user id")
	}
	if status, _, _ := get(t, p.info.Page+"metrics"); status != http.StatusNotFound {
		t.Fatalf("/metrics on the public listener = %d, want 404 (it is on the metrics listener)", status)
	}
	status, _, metrics := get(t, p.info.Metrics)
	if status != 200 || !strings.Contains(metrics, `parley_http_requests_total{route="POST /v3/directline/tokens/generate",status="200"}`) || !strings.Contains(metrics, "parley_open_streams") {
		t.Fatalf("metrics = %d %.500s", status, metrics)
	}
	for _, path := range []string{"healthz", "readyz"} {
		if status, _, _ := get(t, p.info.Page+path); status != 200 {
			t.Fatalf("%s = %d", path, status)
		}
	}
}

// parley demo --admin serves the web console and the admin API on its own
// loopback port, never on the public one, and prints the first owner's
// one-time enrollment code on stderr only.
func TestDemoAdminConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	cmd := exec.Command(bin, "demo", "--json", "--admin", "--listen", freePort(t), "--data", t.TempDir(), "--webchat-url", "http://127.0.0.1:1/webchat.js")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("demo --admin printed nothing: %v\n%s", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	var info demoInfo
	if err := json.Unmarshal([]byte(line), &info); err != nil || !strings.HasPrefix(info.Admin, "http://127.0.0.1:") || info.Admin == info.Page {
		t.Fatalf("demo --admin --json = %q (%v), want the console's own loopback URL", line, err)
	}
	if status, hdr, page := get(t, info.Admin); status != 200 || !strings.Contains(hdr.Get("Content-Type"), "text/html") || !strings.Contains(hdr.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("console = %d %q %.200s", status, hdr.Get("Content-Security-Policy"), page)
	}
	if status, _, body := get(t, info.Admin+"admin/v1/openapi.yaml"); status != 200 || !strings.HasPrefix(body, "openapi: 3.1") {
		t.Fatalf("admin API on the console's port = %d %.40s", status, body)
	}
	if status, _, _ := get(t, info.Page+"admin/v1/openapi.yaml"); status != http.StatusNotFound {
		t.Fatalf("the public listener serves the admin API: %d", status)
	}
	if status, _, _ := get(t, info.Admin+"admin/v1/bots"); status != http.StatusUnauthorized {
		t.Fatalf("admin API without a session = %d, want 401", status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "pec_") {
		if time.Now().After(deadline) {
			t.Fatalf("no enrollment code on stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(line, "pec_") {
		t.Fatal("the enrollment code is in the JSON on stdout")
	}
}
