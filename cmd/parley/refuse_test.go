package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func mkBot(t *testing.T, data, name string) botJSON {
	t.Helper()
	out, _, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", name, "--endpoint", "https://public.example.test/api/messages", "--json")
	if err != nil {
		t.Fatalf("bot create %s: %v", name, err)
	}
	var b botJSON
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mkSite(t *testing.T, data, bot, name string, extra ...string) (siteJSON, error) {
	t.Helper()
	out, _, err := run(t, nil, append([]string{"site", "create", "--data", data, "--bot", bot, "--name", name, "--json"}, extra...)...)
	var s siteJSON
	if err == nil {
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatal(err)
		}
	}
	return s, err
}

func TestDuplicateNamesRefused(t *testing.T) {
	data := t.TempDir()
	b := mkBot(t, data, "Support")
	for _, name := range []string{"Support", "support", "SUPPORT"} {
		_, _, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", name, "--endpoint", "https://public.example.test/api/messages")
		if err == nil || !strings.Contains(err.Error(), b.ID) || !strings.Contains(err.Error(), "choose another --name") {
			t.Errorf("bot create --name %s: err = %v; want a refusal naming %s", name, err, b.ID)
		}
	}
	// Unicode case folding (the CLI check; SQLite's lower() is ASCII only).
	u := mkBot(t, data, "Équipe")
	if _, _, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "éQUIPE", "--endpoint", "https://public.example.test/api/messages"); err == nil || !strings.Contains(err.Error(), u.ID) {
		t.Errorf("bot create éQUIPE: err = %v", err)
	}
	if out, _, _ := run(t, nil, "bot", "list", "--data", data); strings.Count(out, "\n") != 2 {
		t.Errorf("bot list after refusals:\n%s", out)
	}

	s, err := mkSite(t, data, b.ID, "www")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mkSite(t, data, b.ID, "WWW"); err == nil || !strings.Contains(err.Error(), s.ID) {
		t.Errorf("site create WWW: err = %v; want a refusal naming %s", err, s.ID)
	}
	other := mkBot(t, data, "Sales")
	if _, err := mkSite(t, data, other.ID, "www"); err != nil {
		t.Errorf("same site name under another bot: %v", err)
	}
}

func TestOriginsRefusedAtEntry(t *testing.T) {
	data := t.TempDir()
	b := mkBot(t, data, "Support")
	for origin, want := range map[string]string{
		"*":                           "wildcards",
		"https://*.example.com":       "wildcards",
		"https://www.*.com":           "wildcards",
		"http*://example.com":         "wildcards",
		"https://www.example.com/a":   "not an origin",
		"https://www.example.com?x":   "not an origin",
		"https://u:p@www.example.com": "not an origin",
		"https://www.example.com#f":   "not an origin",
		"www.example.com":             "not an origin",
		"ftp://www.example.com":       "not an origin",
		"https://":                    "not an origin",
		"https://exa_mple.com":        "not a host",
		"https://a b.com":             "",
		"https://example.com:0":       "port",
		"https://example.com:70000":   "",
		"null":                        "not an origin",
	} {
		_, err := mkSite(t, data, b.ID, "s", "--origin", origin)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--origin %q: err = %v; want a refusal with %q", origin, err, want)
		}
	}
	s, err := mkSite(t, data, b.ID, "ok", "--origin", "HTTPS://WWW.Example.com:443/", "--origin", "https://www.example.com", "--origin", "http://[::1]:3000", "--origin", "http://127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.TrustedOrigins, " "); got != "https://www.example.com http://[::1]:3000 http://127.0.0.1:8080" {
		t.Errorf("normalized origins = %q", got)
	}
	if _, _, err := run(t, nil, "site", "set-origins", "--data", data, "--site", s.ID, "--origin", "https://*.example.com"); err == nil || !strings.Contains(err.Error(), "wildcards") {
		t.Errorf("set-origins wildcard: %v", err)
	}
}

func TestSetOriginsNeedsNoneToClear(t *testing.T) {
	data := t.TempDir()
	b := mkBot(t, data, "Support")
	s, err := mkSite(t, data, b.ID, "www", "--origin", "https://www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	origins := func() string {
		out, _, err := run(t, nil, "site", "list", "--data", data, "--json")
		if err != nil {
			t.Fatal(err)
		}
		var sites []siteJSON
		if err := json.Unmarshal([]byte(out), &sites); err != nil || len(sites) != 1 {
			t.Fatalf("site list: %v %s", err, out)
		}
		return strings.Join(sites[0].TrustedOrigins, ",")
	}
	_, _, err = run(t, nil, "site", "set-origins", "--data", data, "--site", s.ID)
	if err == nil || !strings.Contains(err.Error(), "--none") {
		t.Errorf("set-origins without --origin: err = %v; want a refusal mentioning --none", err)
	}
	if got := origins(); got != "https://www.example.com" {
		t.Errorf("origins after a refused set-origins = %q", got)
	}
	_, _, err = run(t, nil, "site", "set-origins", "--data", data, "--site", s.ID, "--none", "--origin", "https://a.example.com")
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("--none with --origin: err = %v", err)
	}
	if got := origins(); got != "https://www.example.com" {
		t.Errorf("origins after --none --origin = %q", got)
	}
	out, _, err := run(t, nil, "site", "set-origins", "--data", data, "--site", s.ID, "--none")
	if err != nil || !strings.Contains(out, "(none)") {
		t.Errorf("set-origins --none: %v %q", err, out)
	}
	if got := origins(); got != "" {
		t.Errorf("origins after --none = %q", got)
	}
}

// A missing data directory says how to point the command at the right one.
func TestNoDataDirectoryMentionsConfig(t *testing.T) {
	missing := t.TempDir() + "/nope"
	for _, args := range [][]string{{"bot", "list"}, {"site", "list"}, {"keys", "list"}, {"deliveries", "dead", "list"}} {
		_, _, err := run(t, nil, append(args, "--data", missing)...)
		if err == nil || !strings.Contains(err.Error(), "no data directory") || !strings.Contains(err.Error(), "--config") || !strings.Contains(err.Error(), "--data") {
			t.Errorf("%v: err = %v; want one naming --config and --data", args, err)
		}
	}
}
