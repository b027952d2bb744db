package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// A site's masking policy: off unless told, set with set-masking, shown by
// list (text and --json), bad combinations and unknown sites refused.
func TestAdminSiteMasking(t *testing.T) {
	data := t.TempDir()
	out, _, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "Support", "--endpoint", "https://bot.example.com/api/messages", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var bot botJSON
	_ = json.Unmarshal([]byte(out), &bot)
	out, _, err = run(t, nil, "site", "create", "--data", data, "--bot", bot.ID, "--name", "www", "--json")
	var site siteJSON
	_ = json.Unmarshal([]byte(out), &site)
	if err != nil || site.Masking != "off" {
		t.Fatalf("new site: %+v, %v", site, err)
	}
	set := func(args ...string) (siteJSON, error) {
		out, _, err := run(t, nil, append([]string{"site", "set-masking", "--data", data, "--json"}, args...)...)
		var s siteJSON
		_ = json.Unmarshal([]byte(out), &s)
		return s, err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cards"}, "cards"},
		{[]string{"--cards", "--all-pii"}, "all-pii"},
		{[]string{"--off"}, "off"},
		{[]string{"--all-pii"}, "all-pii"},
	} {
		s, err := set(append([]string{"--site", site.ID}, tc.args...)...)
		if err != nil || s.Masking != tc.want {
			t.Fatalf("set-masking %v = %+v, %v; want %s", tc.args, s, err, tc.want)
		}
	}
	for name, args := range map[string][]string{
		"nothing to mask": {"--site", site.ID},
		"off and cards":   {"--site", site.ID, "--off", "--cards"},
		"unknown site":    {"--site", "nope", "--cards"},
		"no site":         {"--cards"},
	} {
		if _, err := set(args...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	out, _, err = run(t, nil, "site", "list", "--data", data)
	if err != nil || !strings.Contains(out, "masking=all-pii") {
		t.Fatalf("list = %q, %v", out, err)
	}
	out, _, err = run(t, nil, "site", "list", "--data", data, "--json")
	if err != nil || !strings.Contains(out, `"masking": "all-pii"`) {
		t.Fatalf("list --json = %q, %v", out, err)
	}
}
