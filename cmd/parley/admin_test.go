package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/server"
)

// run executes the CLI in-process and returns stdout, stderr and the error.
func run(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	root := (&app{stdout: &out, stderr: &errb, env: lookup, resolver: testHosts}).root()
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestAdminBotsSitesSecrets(t *testing.T) {
	data := t.TempDir()
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "Support", "--endpoint", "https://bot.example.com/api/messages", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var bot botJSON
	if err := json.Unmarshal([]byte(out), &bot); err != nil || bot.ID == "" || bot.InsecureNoAuth {
		t.Fatalf("bot create --json = %q, %v", out, err)
	}
	for name, args := range map[string][]string{
		"insecure off loopback": {"--endpoint", "http://bot.example.com/api", "--insecure-no-auth"},
		"https insecure remote": {"--endpoint", "https://bot.example.com/api", "--insecure-no-auth"},
		"plain http remote":     {"--endpoint", "http://bot.example.com/api"},
		"not a URL":             {"--endpoint", "bot"},
		"bad scheme":            {"--endpoint", "ftp://127.0.0.1/x"},
	} {
		args = append([]string{"bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "x"}, args...)
		if _, _, err := run(t, nil, args...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, stderr, err := run(t, nil, "bot", "create", "--data", data, "--name", "dev", "--endpoint", "http://127.0.0.1:3978/api/messages", "--insecure-no-auth"); err != nil || !strings.Contains(stderr, "INSECURE") {
		t.Fatalf("insecure loopback bot: %v, warning %q", err, stderr)
	}

	out, _, err = run(t, nil, "site", "create", "--data", data, "--bot", bot.ID, "--name", "www", "--origin", "https://WWW.Example.com:443", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var site siteJSON
	if err := json.Unmarshal([]byte(out), &site); err != nil || len(site.Secrets) != 2 || !site.EnhancedAuth {
		t.Fatalf("site create --json = %q, %v", out, err)
	}
	if site.TrustedOrigins[0] != "https://www.example.com" {
		t.Fatalf("origin not normalized: %v", site.TrustedOrigins)
	}
	for _, s := range site.Secrets {
		if !identity.LooksLikeSecret(s) {
			t.Fatalf("secret %q is not 256-bit base64url", s)
		}
	}
	// Only hashes are stored: the secrets appear nowhere in the data directory.
	assertNotInDir(t, data, site.Secrets...)

	// Listing never shows secrets again.
	out, _, _ = run(t, nil, "site", "list", "--data", data, "--json")
	if strings.Contains(out, site.Secrets[0]) || !strings.Contains(out, site.ID) {
		t.Fatalf("site list = %s", out)
	}

	// Regenerate slot 2: slot 1 keeps working, the old slot 2 stops.
	out, _, err = run(t, nil, "secret", "regenerate", "--data", data, "--site", site.ID, "--slot", "2", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var regen struct{ Secret string }
	_ = json.Unmarshal([]byte(out), &regen)
	st, err := server.OpenStore(context.Background(), config.Config{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for secret, want := range map[string]bool{site.Secrets[0]: true, regen.Secret: true, site.Secrets[1]: false} {
		_, err := st.SiteBySecretHash(ctx, identity.HashSecret(secret))
		if (err == nil) != want {
			t.Errorf("secret works = %v, want %v", err == nil, want)
		}
	}
	_ = st.Close()
	assertNotInDir(t, data, regen.Secret)

	for name, args := range map[string][]string{
		"bad slot":        {"secret", "regenerate", "--data", data, "--site", site.ID, "--slot", "3"},
		"unknown site":    {"secret", "regenerate", "--data", data, "--site", "nope", "--slot", "1"},
		"unknown bot":     {"site", "create", "--data", data, "--bot", "nope", "--name", "x"},
		"bad origin":      {"site", "create", "--data", data, "--bot", bot.ID, "--name", "x", "--origin", "https://x.example/path"},
		"bad set-origins": {"site", "set-origins", "--data", data, "--site", site.ID, "--origin", "javascript:alert(1)"},
		"missing data":    {"bot", "list", "--data", filepath.Join(data, "missing")},
	} {
		if _, _, err := run(t, nil, args...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	out, _, err = run(t, nil, "site", "set-origins", "--data", data, "--site", site.ID, "--origin", "https://a.example", "--origin", "http://localhost:3000", "--json")
	if err != nil || !strings.Contains(out, "http://localhost:3000") {
		t.Fatalf("set-origins = %q, %v", out, err)
	}
}

func assertNotInDir(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("secret stored in clear in %s", p)
			}
		}
		return nil
	})
}

func TestServeRefusesBadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "parley.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 0.0.0.0:8080\npublic_url: http://chat.example.com\ninsecure_http: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, nil, "serve", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "insecure_http") {
		t.Fatalf("serve with insecure_http off loopback: %v", err)
	}
	_, _, err = run(t, map[string]string{"PARLEY_DIRECTLINE_TOKEN_TTL": "5s"}, "serve", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "token_ttl") {
		t.Fatalf("serve with a 5s token TTL: %v", err)
	}
	if _, _, err := run(t, nil, "demo", "--listen", "0.0.0.0:0", "--data", t.TempDir()); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("demo off loopback: %v", err)
	}
}
