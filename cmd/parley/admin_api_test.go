package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/adminapi"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

// ownerAuth: every request is an unscoped owner (the CLI's rights).
type ownerAuth struct{}

func (ownerAuth) Authenticate(*http.Request) (admin.Principal, error) {
	return admin.Principal{Kind: admin.KindToken, ID: "t", Role: admin.RoleOwner}, nil
}
func (ownerAuth) Reauthenticated(admin.Principal) bool { return true }

// TestCLIAndAPIAgree does the same operations through the CLI and through
// the admin API, on two sites of one bot, and compares the results: the
// CLI is a client of the same service layer.
func TestCLIAndAPIAgree(t *testing.T) {
	data := t.TempDir()
	out, _, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "Support", "--endpoint", "https://bot.example.com/api/messages", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var bot admin.Bot
	if err := json.Unmarshal([]byte(out), &bot); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir, cfg.MasterKeyFile = data, filepath.Join(data, "master.key")
	st, err := server.OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := &app{stdout: io.Discard, stderr: io.Discard, resolver: testHosts}
	srv := httptest.NewServer(adminapi.New(adminapi.Config{Service: a.newService(cfg, st, ""), Auth: ownerAuth{}}))
	defer srv.Close()
	api := func(method, path string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+admin.Prefix+path, rd)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// policy is a site's JSON without what differs by nature (id, name).
	policy := func(b []byte) string {
		var s admin.Site
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("site %s: %v", b, err)
		}
		s.ID, s.Name, s.Secrets, s.Warnings = "", "", nil, nil
		j, _ := json.Marshal(s)
		return string(j)
	}

	// Create: the same origins, normalized the same way.
	cliOut, _, err := run(t, nil, "site", "create", "--data", data, "--bot", bot.ID, "--name", "cli", "--origin", "https://WWW.Example.com:443", "--origin", "http://localhost:8080/", "--json")
	if err != nil {
		t.Fatal(err)
	}
	code, apiOut := api("POST", "/sites", map[string]any{"bot": bot.ID, "name": "api", "trustedOrigins": []string{"https://WWW.Example.com:443", "http://localhost:8080/"}})
	if code != 201 {
		t.Fatalf("API create: %d %s", code, apiOut)
	}
	if c, p := policy([]byte(cliOut)), policy(apiOut); c != p {
		t.Errorf("create:\nCLI %s\nAPI %s", c, p)
	}
	var cliSite, apiSite admin.Site
	_ = json.Unmarshal([]byte(cliOut), &cliSite)
	_ = json.Unmarshal(apiOut, &apiSite)
	if len(cliSite.Secrets) != 2 || len(apiSite.Secrets) != 2 {
		t.Errorf("secrets shown once: CLI %d, API %d", len(cliSite.Secrets), len(apiSite.Secrets))
	}

	// Refusals: the same rule, the same words.
	for _, bad := range []string{"https://*.example.com", "*", "ftp://x.example.com", "https://a.example.com/path"} {
		_, _, cerr := run(t, nil, "site", "set-origins", "--data", data, "--site", cliSite.ID, "--origin", bad)
		code, body := api("PUT", "/sites/"+apiSite.ID+"/origins", map[string]any{"origins": []string{bad}})
		var eb admin.ErrorBody
		_ = json.Unmarshal(body, &eb)
		if cerr == nil || code != 400 || admin.APIMessage(cerr.Error()) != eb.Error.Message || strings.Contains(eb.Error.Message, "--") {
			t.Errorf("origin %q: CLI %v; API %d %q", bad, cerr, code, eb.Error.Message)
		}
	}

	// Updates: clear the origins, retention, masking, enhanced auth.
	steps := []struct {
		cli  []string
		verb string
		path string
		body any
	}{
		{[]string{"site", "set-origins", "--none"}, "PUT", "/origins", map[string]any{"origins": []string{}}},
		{[]string{"site", "set-retention", "--after", "90d"}, "PUT", "/retention", map[string]any{"mode": "after", "after": "90d"}},
		{[]string{"site", "set-retention", "--on-end-of-conversation", "--after", "2d"}, "PUT", "/retention", map[string]any{"mode": "end-of-conversation", "after": "2d"}},
		{[]string{"site", "set-masking", "--all-pii"}, "PATCH", "", map[string]any{"masking": "all-pii"}},
		{[]string{"site", "set-client-attachment-urls", "--client-attachment-urls", "untrusted"}, "PATCH", "", map[string]any{"clientAttachmentUrls": "untrusted"}},
	}
	for _, s := range steps {
		args := append(append([]string{}, s.cli...), "--data", data, "--site", cliSite.ID, "--json")
		if _, _, err := run(t, nil, args...); err != nil {
			t.Fatalf("%v: %v", s.cli, err)
		}
		if code, body := api(s.verb, "/sites/"+apiSite.ID+s.path, s.body); code != 200 {
			t.Fatalf("%s %s: %d %s", s.verb, s.path, code, body)
		}
		cliNow, _, _ := run(t, nil, "site", "list", "--data", data, "--json")
		var sites []admin.Site
		_ = json.Unmarshal([]byte(cliNow), &sites)
		_, a1 := api("GET", "/sites/"+cliSite.ID, nil)
		_, a2 := api("GET", "/sites/"+apiSite.ID, nil)
		if policy(a1) != policy(a2) {
			t.Errorf("after %v:\nCLI-made %s\nAPI-made %s", s.cli, a1, a2)
		}
		if len(sites) != 2 {
			t.Fatalf("site list: %s", cliNow)
		}
	}

	// Delete: the same plan and the same result shape.
	_, _, err = run(t, nil, "site", "delete", cliSite.ID, "--data", data, "--yes", "--json")
	if err != nil {
		t.Fatal(err)
	}
	code, body := api("DELETE", "/sites/"+apiSite.ID, nil)
	if code != 200 || !strings.Contains(string(body), `"deleted":"site"`) {
		t.Errorf("API delete: %d %s", code, body)
	}
	cliNow, _, _ := run(t, nil, "site", "list", "--data", data, "--json")
	if strings.TrimSpace(cliNow) != "[]" {
		t.Errorf("sites left: %s", cliNow)
	}
	// The bot: both see the same.
	cliBots, _, _ := run(t, nil, "bot", "list", "--data", data, "--json")
	_, apiBots := api("GET", "/bots", nil)
	var cb, ab []admin.Bot
	_ = json.Unmarshal([]byte(cliBots), &cb)
	_ = json.Unmarshal(apiBots, &ab)
	if fmt.Sprint(cb) != fmt.Sprint(ab) {
		t.Errorf("bots: CLI %v, API %v", cb, ab)
	}
}
