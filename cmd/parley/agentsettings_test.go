package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store/sqlite"
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
		"OutboundHostValidator__enabled":          "true",
		"OutboundHostValidator__includeDefaultMicrosoftHosts": "false",
		"OutboundHostValidator__hosts":                        "chat.example.com",
		"TOKEN_SERVICE_ENDPOINT":                              "https://chat.example.com",
		"IDENTITY_ENDPOINT":                                   "https://chat.example.com/botframework/msi/token",
		"IDENTITY_HEADER":                                     bot.ClientSecret,
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

// --delivery-timeout is stored on the bot; out-of-range values are
// refused with what to give, and create nothing.
func TestBotCreateDeliveryTimeout(t *testing.T) {
	data := t.TempDir()
	out, _, err := run(t, nil, "bot", "create", "--data", data, "--name", "Slow", "--endpoint", "https://bot.example.com/api/messages",
		"--delivery-timeout", "90s", "--public-url", "https://chat.example.com", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var bot botJSON
	if err := json.Unmarshal([]byte(out), &bot); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(data, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.GetBot(context.Background(), bot.ID)
	_ = st.Close()
	if err != nil || b.DeliveryTimeout != 90*time.Second {
		t.Fatalf("stored delivery timeout %v, %v; want 90s", b.DeliveryTimeout, err)
	}
	for _, bad := range []string{"500ms", "6m", "-5s", "soon"} {
		_, _, err := run(t, nil, "bot", "create", "--data", data, "--name", "Bad "+bad, "--endpoint", "https://bot.example.com/api/messages", "--delivery-timeout", bad)
		if err == nil || (!strings.Contains(err.Error(), "1s to 5m") && !strings.Contains(err.Error(), "invalid argument")) {
			t.Errorf("--delivery-timeout %s: %v", bad, err)
		}
	}
	list, _, _ := run(t, nil, "bot", "list", "--data", data, "--json")
	if strings.Contains(list, "Bad ") {
		t.Fatalf("a refused bot was created: %s", list)
	}
}

// bot update --delivery-timeout changes the stored per-attempt timeout (0
// puts the default back) and refuses what bot create refuses.
func TestBotUpdateDeliveryTimeout(t *testing.T) {
	data := t.TempDir()
	b := createBot(t, data, "Slow agent", "--endpoint", "https://bot.example.com/api/messages", "--public-url", "https://chat.example.com")
	out, _, err := run(t, nil, "bot", "update", b.ID, "--data", data, "--delivery-timeout", "2m", "--json")
	var got botJSON
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.DeliveryTimeout != "2m0s" {
		t.Fatalf("bot update --delivery-timeout 2m = %q, %v", out, err)
	}
	if bots := listBots(t, data); bots[0].DeliveryTimeout != "2m0s" {
		t.Fatalf("bot list shows %+v, want the 2m timeout", bots[0])
	}
	for _, bad := range []string{"500ms", "6m", "-5s"} {
		if _, _, err := run(t, nil, "bot", "update", b.ID, "--data", data, "--delivery-timeout", bad); err == nil || !strings.Contains(err.Error(), "1s to 5m") {
			t.Errorf("--delivery-timeout %s: %v", bad, err)
		}
	}
	if _, _, err := run(t, nil, "bot", "update", b.ID, "--data", data, "--delivery-timeout", "0"); err != nil {
		t.Fatal(err)
	}
	if bots := listBots(t, data); bots[0].DeliveryTimeout != "" {
		t.Fatalf("after --delivery-timeout 0 the bot keeps %q, want the default", bots[0].DeliveryTimeout)
	}
}
