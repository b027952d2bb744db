package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// bot create prints, beside the botbuilder settings, every setting an
// Agents SDK agent reads, with Parley's URLs, in the text and the JSON.
func TestBotCreatePrintsAgentsSDKSettings(t *testing.T) {
	data := t.TempDir()
	out, _, err := run(t, nil, "bot", "create", "--data", data, "--name", "Agent", "--endpoint", "https://bot.example.com/api/messages",
		"--public-url", "https://chat.example.com/", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var bot botJSON
	if err := json.Unmarshal([]byte(out), &bot); err != nil {
		t.Fatal(err)
	}
	const p = "Connections__serviceConnection__Settings__"
	want := map[string]string{
		p + "clientId":                            bot.ID,
		p + "authType":                            "UserManagedIdentity",
		p + "authorityEndpoint":                   "https://chat.example.com",
		p + "tenantId":                            "channel",
		p + "issuers":                             "https://chat.example.com",
		p + "validateIssuer":                      "true",
		p + "scopes":                              "https://chat.example.com/.default",
		"ConnectionsMap__0__ServiceUrl":           "*",
		"ConnectionsMap__0__Connection":           "serviceConnection",
		"CloudAdapterOptions__validateServiceUrl": "true",
		"TOKEN_SERVICE_ENDPOINT":                  "https://chat.example.com",
		"IDENTITY_ENDPOINT":                       "https://chat.example.com/botframework/msi/token",
		"IDENTITY_HEADER":                         bot.ClientSecret,
	}
	if bot.ClientSecret == "" || len(bot.AgentsSDK) != len(want) {
		t.Fatalf("agentsSdkSettings = %v", bot.AgentsSDK)
	}
	for k, v := range want {
		if bot.AgentsSDK[k] != v {
			t.Errorf("%s = %q, want %q", k, bot.AgentsSDK[k], v)
		}
	}
	if bot.Settings["MicrosoftAppId"] != bot.ID {
		t.Error("the botbuilder settings are gone")
	}
	text, _, err := run(t, nil, "bot", "create", "--data", data, "--name", "Agent2", "--endpoint", "https://bot.example.com/api/messages",
		"--public-url", "http://127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"MicrosoftAppId=", "Agents SDK", p + "authType=UserManagedIdentity", "IDENTITY_ENDPOINT=http://127.0.0.1:8080/botframework/msi/token", "TLS only"} {
		if !strings.Contains(text, s) {
			t.Errorf("text output lacks %q:\n%s", s, text)
		}
	}
}
