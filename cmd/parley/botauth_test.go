package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestBotCreatePrintsEverySettingAndRotatesKeys(t *testing.T) {
	data := t.TempDir()
	out, _, err := run(t, nil, "bot", "create", "--data", data, "--name", "Support", "--endpoint", "https://bot.example.com/api/messages", "--public-url", "https://chat.example.com/", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var bot struct {
		ID, ClientSecret, Snippet string
		Settings                  map[string]string
	}
	if err := json.Unmarshal([]byte(out), &bot); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(bot.ID) {
		t.Fatalf("app id %q is not a UUID", bot.ID)
	}
	want := map[string]string{
		"MicrosoftAppId":                     bot.ID,
		"MicrosoftAppPassword":               bot.ClientSecret,
		"MicrosoftAppType":                   "MultiTenant",
		"ToBotFromChannelOpenIdMetadataUrl":  "https://chat.example.com/v1/.well-known/openidconfiguration",
		"ToBotFromChannelTokenIssuer":        "https://chat.example.com",
		"ToBotFromEmulatorOpenIdMetadataUrl": "https://chat.example.com/v1/.well-known/openidconfiguration",
		"ToChannelFromBotLoginUrl":           "https://chat.example.com/botframework",
		"ToChannelFromBotOAuthScope":         "https://chat.example.com",
		"OAuthUrl":                           "https://chat.example.com",
		"CallerId":                           "urn:parley:chat.example.com",
	}
	for k, v := range want {
		if bot.Settings[k] != v {
			t.Errorf("setting %s = %q, want %q", k, bot.Settings[k], v)
		}
	}
	if len(bot.Settings) != len(want) || bot.ClientSecret == "" || !strings.Contains(bot.Snippet, "MsalServiceClientCredentialsFactory") {
		t.Fatalf("bot create output incomplete: %s", out)
	}
	assertNotInDir(t, data, bot.ClientSecret)

	out, _, err = run(t, nil, "bot", "secret", "regenerate", "--data", data, "--bot", bot.ID, "--slot", "2", "--json")
	var regen struct{ ClientSecret string }
	if err != nil || json.Unmarshal([]byte(out), &regen) != nil || regen.ClientSecret == "" || regen.ClientSecret == bot.ClientSecret {
		t.Fatalf("bot secret regenerate = %q, %v", out, err)
	}
	assertNotInDir(t, data, regen.ClientSecret)

	// Keys: a fresh store gets a signing and a next key per purpose; a
	// rotation right away is refused (bots may not have the next key yet)
	// unless forced.
	if _, _, err := run(t, nil, "keys", "rotate", "--data", data, "--purpose", "channel"); err == nil || !strings.Contains(err.Error(), "24 hours") {
		t.Fatalf("early rotation: %v", err)
	}
	out, _, err = run(t, nil, "keys", "rotate", "--data", data, "--purpose", "channel", "--force", "--json")
	if err != nil || !strings.Contains(out, `"channel"`) {
		t.Fatalf("forced rotation = %q, %v", out, err)
	}
	out, _, err = run(t, nil, "keys", "list", "--data", data, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var keys []struct{ Purpose, ID, State string }
	_ = json.Unmarshal([]byte(out), &keys)
	states := map[string]int{}
	for _, k := range keys {
		states[k.Purpose+":"+k.State]++
	}
	if states["channel:retired"] != 1 || states["channel:active"] != 1 || states["channel:next"] != 1 {
		t.Fatalf("key states after rotation: %v", states)
	}
	if _, _, err := run(t, nil, "bot", "secret", "regenerate", "--data", data, "--bot", bot.ID, "--slot", "3"); err == nil {
		t.Fatal("slot 3 accepted")
	}
}

func TestServeRefusesInsecureBotsInProduction(t *testing.T) {
	data := t.TempDir()
	if _, _, err := run(t, nil, "bot", "create", "--data", data, "--name", "dev", "--endpoint", "http://127.0.0.1:3978/api/messages", "--insecure-no-auth"); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "parley.yaml")
	cert, key := writeValidCert(t, t.TempDir()) // serve checks them first
	yaml := "listen: 127.0.0.1:0\nmetrics:\n  listen: 127.0.0.1:0\npublic_url: https://chat.example.com\ndata_dir: " + data + "\ntls:\n  cert_file: " + cert + "\n  key_file: " + key + "\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, nil, "serve", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "insecure-no-auth") {
		t.Fatalf("serve with an insecure bot in production: %v", err)
	}
}

// botPublicURL is admin.PublicURL in the flags' words: the flag wins over
// the configuration, a base URL only, its errors naming --public-url.
func TestBotPublicURLWording(t *testing.T) {
	for _, c := range []struct{ flag, configured, want, err string }{
		{"https://chat.example.com/", "https://cfg.example.com", "https://chat.example.com", ""},
		{"", "https://cfg.example.com", "https://cfg.example.com", ""},
		{"", "", "", "--public-url https://chat.example.com, or the server's configuration with --config"},
		{"https://chat.example.com/x", "", "", `--public-url "https://chat.example.com/x" must be a base URL`},
		{"", "ftp://cfg.example.com", "", `--public-url "ftp://cfg.example.com" must be a base URL`},
	} {
		got, err := botPublicURL(c.flag, c.configured)
		if got != c.want || (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("botPublicURL(%q, %q) = %q, %v; want %q, %q", c.flag, c.configured, got, err, c.want, c.err)
		}
	}
}
