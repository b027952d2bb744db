package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// A site's policy for attachment links from clients: refuse unless told
// otherwise, settable at creation and later, shown by list, nothing else
// accepted.
func TestAdminSiteClientAttachmentURLs(t *testing.T) {
	data := t.TempDir()
	out, _, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "Support", "--endpoint", "https://bot.example.com/api/messages", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var bot botJSON
	_ = json.Unmarshal([]byte(out), &bot)
	n := 0 // site names are unique per bot
	create := func(extra ...string) (siteJSON, string, error) {
		n++
		args := append([]string{"site", "create", "--data", data, "--bot", bot.ID, "--name", "www" + string(rune('0'+n)), "--json"}, extra...)
		out, stderr, err := run(t, nil, args...)
		var s siteJSON
		_ = json.Unmarshal([]byte(out), &s)
		return s, stderr, err
	}
	def, _, err := create()
	if err != nil || def.ClientAttachmentURLs != "refuse" {
		t.Fatalf("default site: %+v, %v", def, err)
	}
	un, stderr, err := create("--client-attachment-urls", "untrusted")
	if err != nil || un.ClientAttachmentURLs != "untrusted" || !strings.Contains(stderr, "parleyUntrusted") {
		t.Fatalf("untrusted site: %+v, %v, %q", un, err, stderr)
	}
	if _, _, err := create("--client-attachment-urls", "allow"); err == nil {
		t.Fatal("an unknown policy was accepted at create")
	}
	out, _, err = run(t, nil, "site", "set-client-attachment-urls", "--data", data, "--site", def.ID, "--client-attachment-urls", "untrusted", "--json")
	if err != nil || !strings.Contains(out, `"clientAttachmentUrls": "untrusted"`) {
		t.Fatalf("set = %q, %v", out, err)
	}
	for name, args := range map[string][]string{
		"unknown policy": {"--site", def.ID, "--client-attachment-urls", "Untrusted"},
		"unknown site":   {"--site", "nope", "--client-attachment-urls", "refuse"},
		"no policy":      {"--site", def.ID},
	} {
		if _, _, err := run(t, nil, append([]string{"site", "set-client-attachment-urls", "--data", data}, args...)...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	out, _, err = run(t, nil, "site", "list", "--data", data)
	if err != nil || strings.Count(out, "client-attachment-urls=untrusted") != 2 {
		t.Fatalf("list = %q, %v", out, err)
	}
}
