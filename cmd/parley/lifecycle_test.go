package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

const testPublicURL = "https://chat.example.com"

// createBot registers a bot (args after the name) and returns it.
func createBot(t *testing.T, data, name string, args ...string) botJSON {
	t.Helper()
	out, _, err := run(t, nil, append([]string{"bot", "create", "--data", data, "--name", name, "--json"}, args...)...)
	var b botJSON
	if err != nil || json.Unmarshal([]byte(out), &b) != nil || b.ID == "" {
		t.Fatalf("bot create %s: %q, %v", name, out, err)
	}
	return b
}

func createSite(t *testing.T, data, bot, name string) siteJSON {
	t.Helper()
	out, _, err := run(t, nil, "site", "create", "--data", data, "--bot", bot, "--name", name, "--json")
	var s siteJSON
	if err != nil || json.Unmarshal([]byte(out), &s) != nil || len(s.Secrets) != 2 {
		t.Fatalf("site create %s: %q, %v", name, out, err)
	}
	return s
}

func listBots(t *testing.T, data string) []botJSON {
	t.Helper()
	out, _, err := run(t, nil, "bot", "list", "--data", data, "--json")
	var bots []botJSON
	if err != nil || json.Unmarshal([]byte(out), &bots) != nil {
		t.Fatalf("bot list: %q, %v", out, err)
	}
	return bots
}

// storedBotSecrets reads a bot's secret slots from the store.
func storedBotSecrets(t *testing.T, data, id string) [2][]byte {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(data, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err := st.GetBot(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return b.SecretHashes
}

// Item 3: bot create never prints a guessed public URL.
func TestBotCreateNeedsAPublicURL(t *testing.T) {
	data := t.TempDir()
	out, _, err := run(t, nil, "bot", "create", "--data", data, "--name", "Support", "--endpoint", "https://public.example.test/api/messages")
	if err == nil || !strings.Contains(err.Error(), "--public-url") || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("bot create without a public URL: err = %v; want a refusal naming --public-url and --config", err)
	}
	if strings.Contains(out, "127.0.0.1:8080") || strings.Contains(out, "MicrosoftAppPassword") {
		t.Fatalf("a refused bot create printed settings:\n%s", out)
	}
	if bots := listBots(t, data); len(bots) != 0 {
		t.Fatalf("a refused bot create stored a bot: %+v", bots)
	}
	// From the environment, as for serve.
	out, _, err = run(t, map[string]string{"PARLEY_PUBLIC_URL": "https://env.example.com"}, "bot", "create", "--data", data, "--name", "Support", "--endpoint", "https://public.example.test/api/messages", "--json")
	var b botJSON
	if err != nil || json.Unmarshal([]byte(out), &b) != nil || b.Settings["ToChannelFromBotLoginUrl"] != "https://env.example.com/botframework" || b.ClientSecret == "" {
		t.Fatalf("bot create with PARLEY_PUBLIC_URL = %q, %v", out, err)
	}
	// From the configuration.
	cfg := filepath.Join(t.TempDir(), "parley.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\npublic_url: https://cfg.example.com\ninsecure_http: false\ndata_dir: "+data+"\ntls:\n  cert_file: c.pem\n  key_file: k.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, nil, "bot", "create", "--config", cfg, "--name", "Other", "--endpoint", "https://public.example.test/api/messages")
	if err != nil || !strings.Contains(out, "ToChannelFromBotLoginUrl=https://cfg.example.com/botframework") || strings.Contains(out, "127.0.0.1") {
		t.Fatalf("bot create --config = %v\n%s", err, out)
	}
	// An insecure bot prints no settings, so needs no public URL.
	if out, _, err := run(t, nil, "bot", "create", "--data", data, "--name", "dev", "--endpoint", "http://127.0.0.1:3978/api/messages", "--insecure-no-auth"); err != nil || strings.Contains(out, "http://127.0.0.1:8080") {
		t.Fatalf("insecure bot create = %v\n%s", err, out)
	}
}

func TestBotUpdate(t *testing.T) {
	data := t.TempDir()
	a := createBot(t, data, "Support", "--endpoint", "https://public.example.test/api/messages", "--public-url", testPublicURL)
	b := createBot(t, data, "Sales", "--endpoint", "https://public.example.test/api/sales", "--public-url", testPublicURL)
	before := storedBotSecrets(t, data, a.ID)

	out, _, err := run(t, nil, "bot", "update", a.ID, "--data", data, "--name", "Help desk", "--endpoint", "https://public.example.test/api/v2", "--json")
	var got botJSON
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.Name != "Help desk" || got.Endpoint != "https://public.example.test/api/v2" || got.ClientSecret != "" {
		t.Fatalf("bot update = %q, %v", out, err)
	}
	if after := storedBotSecrets(t, data, a.ID); !bytes.Equal(after[0], before[0]) {
		t.Fatal("a rename or new endpoint changed the client secret")
	}
	// A change of case only is the bot's own name.
	if _, _, err := run(t, nil, "bot", "update", a.ID, "--data", data, "--name", "HELP DESK"); err != nil {
		t.Fatalf("rename to its own name in other case: %v", err)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"duplicate name":        {[]string{"bot", "update", a.ID, "--name", "sales"}, b.ID},
		"wildcard endpoint":     {[]string{"bot", "update", a.ID, "--endpoint", "https://*.example.com/api/messages"}, "wildcards"},
		"plain http remote":     {[]string{"bot", "update", a.ID, "--endpoint", "http://public.example.test/api"}, "plain http"},
		"internal endpoint":     {[]string{"bot", "update", a.ID, "--endpoint", "https://10.0.0.5/api/messages"}, "10.0.0.5"},
		"insecure remote":       {[]string{"bot", "update", a.ID, "--insecure-no-auth"}, "loopback"},
		"bad name":              {[]string{"bot", "update", a.ID, "--name", "<script>"}, "--name"},
		"nothing to change":     {[]string{"bot", "update", a.ID}, "--name, --endpoint, --auth, --insecure-no-auth or --delivery-timeout"},
		"both modes":            {[]string{"bot", "update", a.ID, "--auth", "--insecure-no-auth"}, "give one"},
		"auth already":          {[]string{"bot", "update", a.ID, "--auth"}, "bot secret regenerate"},
		"unknown bot":           {[]string{"bot", "update", "nope", "--name", "x"}, "parley bot list"},
		"no id":                 {[]string{"bot", "update", "--name", "x"}, "bot update ID"},
		"two ids":               {[]string{"bot", "update", a.ID, b.ID, "--name", "x"}, "one bot id"},
		"site: unknown":         {[]string{"site", "update", "nope", "--name", "x"}, "parley site list"},
		"site: nothing":         {[]string{"site", "update", "nope"}, "--enhanced-auth"},
		"bot delete: unknown":   {[]string{"bot", "delete", "nope", "--yes"}, "parley bot list"},
		"site delete: unknown":  {[]string{"site", "delete", "nope", "--yes"}, "parley site list"},
		"site delete: no id":    {[]string{"site", "delete", "--yes"}, "site delete ID"},
		"conversation: no id":   {[]string{"conversation", "delete", "--yes"}, "conversation delete ID"},
		"conversation: unknown": {[]string{"conversation", "delete", "nope", "--yes"}, "conversation list"},
	} {
		_, _, err := run(t, nil, append(tc.args, "--data", data)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v; want a refusal mentioning %q", name, err, tc.want)
		}
	}
	bots := listBots(t, data)
	if len(bots) != 2 || bots[0].Name != "HELP DESK" || bots[0].Endpoint != "https://public.example.test/api/v2" || bots[0].InsecureNoAuth {
		t.Fatalf("a refused update changed the bot: %+v", bots)
	}

	// Switched to no authentication (with a loopback endpoint): its client
	// secrets are revoked.
	_, stderr, err := run(t, nil, "bot", "update", a.ID, "--data", data, "--insecure-no-auth", "--endpoint", "http://127.0.0.1:3978/api/messages")
	if err != nil || !strings.Contains(stderr, "INSECURE") {
		t.Fatalf("bot update --insecure-no-auth = %v (stderr %q)", err, stderr)
	}
	if s := storedBotSecrets(t, data, a.ID); s[0] != nil || s[1] != nil {
		t.Fatalf("client secrets kept after --insecure-no-auth: %v", s)
	}
	if _, _, err := run(t, nil, "bot", "secret", "regenerate", "--data", data, "--bot", a.ID, "--slot", "1"); err == nil || !strings.Contains(err.Error(), "bot update "+a.ID+" --auth") {
		t.Fatalf("a client secret regenerated for an insecure bot, or the refusal does not say how: %v", err)
	}
	// An insecure bot cannot move off loopback; with --auth in the same
	// command it can, and gets its secret.
	if _, _, err := run(t, nil, "bot", "update", a.ID, "--data", data, "--endpoint", "https://public.example.test/api/v3"); err == nil || !strings.Contains(err.Error(), "add --auth") {
		t.Fatalf("insecure bot moved off loopback: %v", err)
	}
	out, _, err = run(t, nil, "bot", "update", a.ID, "--data", data, "--endpoint", "https://public.example.test/api/v3", "--auth", "--public-url", testPublicURL, "--json")
	got = botJSON{}
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.InsecureNoAuth || got.ClientSecret == "" || got.Endpoint != "https://public.example.test/api/v3" {
		t.Fatalf("bot update --auth --endpoint = %q, %v", out, err)
	}
}

// A dev bot registered with --insecure-no-auth makes serve refuse to
// start; the refusal names the two ways out, and both work.
func TestInsecureBotCanBeFixedOrRemoved(t *testing.T) {
	data := t.TempDir()
	dev := createBot(t, data, "dev", "--endpoint", "http://127.0.0.1:3978/api/messages", "--insecure-no-auth")
	cfg := filepath.Join(t.TempDir(), "parley.yaml")
	cert, key := writeCert(t, t.TempDir(), "serve", time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
	yaml := "listen: 127.0.0.1:0\nmetrics:\n  listen: 127.0.0.1:0\npublic_url: https://chat.example.com\ndata_dir: " + data + "\ntls:\n  cert_file: " + cert + "\n  key_file: " + key + "\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, nil, "serve", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "parley bot update "+dev.ID+" --auth") || !strings.Contains(err.Error(), "parley bot delete "+dev.ID) {
		t.Fatalf("serve's refusal = %v; want it to name 'parley bot update %s --auth' and 'parley bot delete %s'", err, dev.ID, dev.ID)
	}

	// --auth needs the public URL for the settings it prints: never a
	// guessed one, and nothing changes without it.
	if _, _, err := run(t, nil, "bot", "update", dev.ID, "--data", data, "--auth"); err == nil || !strings.Contains(err.Error(), "--public-url") {
		t.Fatalf("bot update --auth without a public URL: %v", err)
	}
	if bots := listBots(t, data); !bots[0].InsecureNoAuth {
		t.Fatal("a refused --auth switched the bot")
	}
	out, _, err := run(t, nil, "bot", "update", dev.ID, "--config", cfg, "--auth", "--json")
	var got botJSON
	if err != nil || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("bot update --auth = %q, %v", out, err)
	}
	if got.InsecureNoAuth || got.ClientSecret == "" || got.Settings["MicrosoftAppPassword"] != got.ClientSecret || got.Settings["ToChannelFromBotLoginUrl"] != "https://chat.example.com/botframework" {
		t.Fatalf("bot update --auth printed %+v", got)
	}
	if s := storedBotSecrets(t, data, dev.ID); !bytes.Equal(s[0], botauth.HashClientSecret(got.ClientSecret)) || s[1] != nil {
		t.Fatal("the stored client secret is not the one printed")
	}
	// serve would now start (and run): its insecure-bot check passes.
	if err := insecureBotCheck(t, cfg); err != nil {
		t.Fatalf("serve's insecure-bot check after bot update --auth: %v", err)
	}

	// The other way out: delete it.
	dev2 := createBot(t, data, "dev2", "--endpoint", "http://127.0.0.1:3979/api/messages", "--insecure-no-auth")
	if _, _, err := run(t, nil, "serve", "--config", cfg); err == nil || !strings.Contains(err.Error(), dev2.ID) {
		t.Fatalf("serve with dev2: %v", err)
	}
	if _, _, err := run(t, nil, "bot", "delete", dev2.ID, "--config", cfg, "--yes"); err != nil {
		t.Fatal(err)
	}
	if err := insecureBotCheck(t, cfg); err != nil {
		t.Fatalf("serve's insecure-bot check after bot delete: %v", err)
	}
}

// insecureBotCheck runs serve's insecure-bot check on the store of the
// configuration file cfgPath (serve itself would start serving once it
// passes).
func insecureBotCheck(t *testing.T, cfgPath string) error {
	t.Helper()
	a := &app{stdout: io.Discard, stderr: io.Discard, env: func(string) (string, bool) { return "", false }, resolver: testHosts}
	cfg, st, err := a.openAdmin(context.Background(), cfgPath, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return refuseInsecureBots(context.Background(), cfg, st)
}

func TestSiteUpdate(t *testing.T) {
	data := t.TempDir()
	b := createBot(t, data, "Support", "--endpoint", "https://public.example.test/api/messages", "--public-url", testPublicURL)
	s := createSite(t, data, b.ID, "www")
	other := createSite(t, data, b.ID, "app")
	if _, _, err := run(t, nil, "site", "set-origins", "--data", data, "--site", s.ID, "--origin", "https://www.example.com"); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := run(t, nil, "site", "update", s.ID, "--data", data, "--name", "Website", "--enhanced-auth=false", "--json")
	var got siteJSON
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.Name != "Website" || got.EnhancedAuth || len(got.TrustedOrigins) != 1 || !strings.Contains(stderr, "enhanced authentication is OFF") {
		t.Fatalf("site update = %q, %v (stderr %q)", out, err, stderr)
	}
	if _, _, err := run(t, nil, "site", "update", s.ID, "--data", data, "--name", "APP"); err == nil || !strings.Contains(err.Error(), other.ID) {
		t.Fatalf("rename to a sibling's name: %v", err)
	}
	if _, _, err := run(t, nil, "site", "update", s.ID, "--data", data, "--enhanced-auth=maybe"); err == nil {
		t.Fatal("--enhanced-auth=maybe accepted")
	}
	if _, _, err := run(t, nil, "site", "update", s.ID, "--data", data, "--enhanced-auth"); err != nil {
		t.Fatal(err)
	}
	out, _, _ = run(t, nil, "site", "list", "--data", data, "--json")
	var sites []siteJSON
	if err := json.Unmarshal([]byte(out), &sites); err != nil || len(sites) != 2 || sites[0].Name != "Website" || !sites[0].EnhancedAuth || sites[0].TrustedOrigins[0] != "https://www.example.com" {
		t.Fatalf("site list after updates = %s", out)
	}
}

// startServer runs a server on data in this process (insecure_http on
// loopback), as 'parley serve' would, and returns its Direct Line base URL.
func startServer(t *testing.T, data string, logs io.Writer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen, cfg.PublicURL, cfg.DataDir, cfg.InsecureHTTP = ln.Addr().String(), "http://"+ln.Addr().String(), data, true
	cfg.MasterKeyFile = filepath.Join(data, "master.key")
	cfg.Metrics.Listen = "off"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, server.Listeners{Main: ln}) }()
	t.Cleanup(func() { cancel(); <-done })
	return cfg.PublicURL + "/v3/directline"
}

// eventually polls until ok, for at most 10 s (a running server trusts
// its caches for a few seconds).
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Deleting a site, then a bot, while the server runs: everything of them
// goes in one transaction, their secrets and tokens stop working, and the
// other bot's conversation carries on.
func TestDeleteSiteAndBotWhileServing(t *testing.T) {
	data, err := filepath.Abs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 9: deliveries to these bots stay queued.
	botA := createBot(t, data, "A", "--endpoint", "http://127.0.0.1:9/api/messages", "--insecure-no-auth")
	botB := createBot(t, data, "B", "--endpoint", "http://127.0.0.1:9/api/b", "--insecure-no-auth")
	s1, s2, s3 := createSite(t, data, botA.ID, "one"), createSite(t, data, botA.ID, "two"), createSite(t, data, botB.ID, "three")
	var logs lockedBuffer
	dl := startServer(t, data, &logs)

	start := func(secret, user string) (token, conv string) {
		t.Helper()
		st, body := call(t, "POST", dl+"/tokens/generate", secret, `{"user":{"id":"`+user+`"}}`)
		if st != 200 {
			t.Fatalf("generate: %d %v", st, body)
		}
		token = body["token"].(string)
		st, body = call(t, "POST", dl+"/conversations", token, `{}`)
		if st != 201 {
			t.Fatalf("start: %d %v", st, body)
		}
		conv = body["conversationId"].(string)
		// The bot does not answer: 502 (the activity is stored and its
		// delivery queued for retry).
		if st, _ := call(t, "POST", dl+"/conversations/"+conv+"/activities", token, `{"type":"message","from":{"id":"`+user+`"},"text":"the secret plan"}`); st != 200 && st != 502 {
			t.Fatalf("post: %d", st)
		}
		return token, conv
	}
	t1, c1 := start(s1.Secrets[0], "dl_one")
	// A token minted before the deletion, used after it.
	st, body := call(t, "POST", dl+"/tokens/generate", s1.Secrets[0], `{"user":{"id":"dl_later"}}`)
	if st != 200 {
		t.Fatalf("generate: %d %v", st, body)
	}
	unused := body["token"].(string)
	t3, c3 := start(s3.Secrets[0], "dl_three")

	// Off a terminal, without --yes: the plan is printed, nothing deleted.
	_, stderr, err := run(t, nil, "site", "delete", s1.ID, "--data", data)
	if exitCode(err) != exitRefused || !strings.Contains(err.Error(), "--yes") || !strings.Contains(stderr, "1 conversation(s)") || !strings.Contains(stderr, "2 secret(s)") {
		t.Fatalf("site delete without --yes: exit %d, %v\n%s", exitCode(err), err, stderr)
	}
	if st, _ := call(t, "GET", dl+"/conversations/"+c1+"/activities", t1, ""); st != 200 {
		t.Fatalf("a refused delete removed something: GET = %d", st)
	}
	out, _, err := run(t, nil, "site", "delete", s1.ID, "--data", data, "--yes", "--json")
	var d deletionJSON
	if err != nil || json.Unmarshal([]byte(out), &d) != nil {
		t.Fatalf("site delete --yes = %q, %v", out, err)
	}
	if d.Removed.Conversations != 1 || d.Removed.SecretsRevoked != 2 || d.Removed.Activities < 1 || d.Removed.Deliveries < 1 || d.Removed.DataKeys != 1 || !d.Scrubbed {
		t.Fatalf("site delete removed %+v", d)
	}
	// At once, while the server may still trust its cached site: never
	// an internal error.
	if st, _ := call(t, "POST", dl+"/conversations", unused, `{}`); st != 403 && st != 404 {
		t.Errorf("starting a conversation with a token of the deleted site: %d; want 403 or 404", st)
	}
	eventually(t, "the deleted site's token refused", func() bool {
		st, _ := call(t, "GET", dl+"/conversations/"+c1+"/activities", t1, "")
		return st == 403 || st == 404
	})
	if st, _ := call(t, "POST", dl+"/tokens/generate", s1.Secrets[0], `{"user":{"id":"dl_one"}}`); st != 403 {
		t.Errorf("the deleted site's secret: %d; want 403", st)
	}
	if st, _ := call(t, "POST", dl+"/tokens/refresh", t1, ``); st != 403 && st != 404 {
		t.Errorf("refresh of the deleted site's token: %d", st)
	}

	// A bot with a site left is refused without --cascade.
	if _, _, err := run(t, nil, "bot", "delete", botA.ID, "--data", data, "--yes"); err == nil || !strings.Contains(err.Error(), s2.ID) || !strings.Contains(err.Error(), "--cascade") {
		t.Fatalf("bot delete with a site: %v; want a refusal naming %s and --cascade", err, s2.ID)
	}
	if st, _ := call(t, "POST", dl+"/tokens/generate", s2.Secrets[0], `{"user":{"id":"dl_two"}}`); st != 200 {
		t.Fatalf("a refused bot delete revoked a secret: %d", st)
	}
	if _, _, err := run(t, nil, "bot", "delete", botA.ID, "--data", data, "--cascade"); exitCode(err) != exitRefused {
		t.Fatalf("bot delete --cascade without --yes off a terminal: %v", err)
	}
	out, _, err = run(t, nil, "bot", "delete", botA.ID, "--data", data, "--cascade", "--yes")
	if err != nil || !strings.Contains(out, "bot "+botA.ID+" (A) deleted") {
		t.Fatalf("bot delete --cascade --yes = %v\n%s", err, out)
	}
	eventually(t, "the deleted bot's site secret refused", func() bool {
		st, _ := call(t, "POST", dl+"/tokens/generate", s2.Secrets[0], `{"user":{"id":"dl_two"}}`)
		return st == 403
	})
	if bots := listBots(t, data); len(bots) != 1 || bots[0].ID != botB.ID {
		t.Fatalf("bots left: %+v", bots)
	}
	// The other bot's conversation carries on.
	if st, _ := call(t, "POST", dl+"/conversations/"+c3+"/activities", t3, `{"type":"message","from":{"id":"dl_three"},"text":"still here"}`); st != 200 && st != 502 {
		t.Fatalf("the other bot's conversation after the deletions: %d", st)
	}
	// The delivery worker found the deleted items gone without an error.
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=ERROR") && !strings.Contains(line, "BotRejectedActivity") {
			t.Errorf("server error after the deletions: %s", line)
		}
	}
	if b, err := os.ReadFile(filepath.Join(data, "parley.db")); err != nil || bytes.Contains(b, []byte("the secret plan")) {
		t.Fatalf("message text in the database file in the clear (%v)", err)
	}
}
