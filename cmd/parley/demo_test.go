package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
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
