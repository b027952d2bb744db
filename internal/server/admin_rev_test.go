package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/server"
)

// revAdmin runs the wired admin side on loopback and enrolls the owner
// alice; it returns her client (cookie session with its CSRF token).
func revAdmin(t *testing.T) *adminClient {
	t.Helper()
	var announce bytes.Buffer
	as := startAdminServer(t, slog.New(slog.NewJSONHandler(io.Discard, nil)), func(srv *server.Server) error {
		return srv.EnableAdmin(context.Background(), server.AdminOptions{Announce: &announce})
	})
	bootstrap := regexp.MustCompile(`pec_[A-Za-z0-9_-]+`).FindString(announce.String())
	owner, _, csrf := enrollOwner(t, as.adminBase, bootstrap)
	owner.csrf = csrf
	return owner
}

// Any API token holder (here an auditor's, refused the write itself)
// sends a path with a byte that is not UTF-8: token.use records the path,
// and the audit log must still verify.
func TestAdminRevHostilePathKeepsAuditVerifiable(t *testing.T) {
	owner := revAdmin(t)
	st, body := owner.do("POST", "/tokens", map[string]any{"name": "ro", "role": "auditor", "expiresInDays": 1})
	if st != 201 {
		t.Fatalf("create token: %d %s", st, body)
	}
	var tok struct {
		Token string `json:"token"`
	}
	_ = json.Unmarshal(body, &tok)
	req, _ := http.NewRequest("POST", owner.base+admin.Prefix+"/bots/%FF%00/secret", strings.NewReader(`{"slot":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("auditor token write: %d", resp.StatusCode)
	}
	st, body = owner.do("GET", "/audit/verify", nil)
	if st != 200 || !strings.Contains(string(body), `"ok":true`) {
		t.Fatalf("audit verify after a hostile path: %d %s", st, body)
	}
}

// DNS rebinding: a page on evil.example whose name now resolves to
// 127.0.0.1 talks to the plain-HTTP loopback admin listener as its own
// origin (Host and Origin agree, so the origin check passes). The
// listener answers only loopback host names.
func TestAdminRevLoopbackRefusesForeignHost(t *testing.T) {
	owner := revAdmin(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(owner.base, "http://"), ":")
	for _, path := range []string{admin.Prefix + "/session", admin.Prefix + "/openapi.yaml", "/"} {
		for _, method := range []string{"GET", "POST"} {
			req, _ := http.NewRequest(method, owner.base+path, strings.NewReader(`{"name":"alice","password":"x"}`))
			req.Host = "evil.example:" + port
			req.Header.Set("Origin", "http://evil.example:"+port)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMisdirectedRequest {
				t.Errorf("%s %s with Host evil.example: %d, want 421", method, path, resp.StatusCode)
			}
		}
	}
	// Loopback names still work.
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port} {
		req, _ := http.NewRequest("GET", owner.base+admin.Prefix+"/openapi.yaml", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("Host %s: %d", host, resp.StatusCode)
		}
	}
}
