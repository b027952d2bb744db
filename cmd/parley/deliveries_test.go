package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
	"github.com/parley-gw/parley/internal/store"
)

// deadLetters makes n dead letters for one conversation of bot, as the
// delivery worker would, in a data directory the CLI then opens.
func deadLetters(t *testing.T, data, botID, conv string, n int) {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir = data
	cfg.MasterKeyFile = filepath.Join(data, "master.key")
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := server.OpenKeys(ctx, cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetBot(ctx, botID); err != nil {
		if err := st.CreateBot(ctx, store.Bot{ID: botID, Name: botID, // names are unique
			Endpoint: "https://bot.example.com/api/messages?code=SECRETFUNCTIONKEY", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateSite(ctx, store.Site{ID: "site-" + botID, BotID: botID, Name: "web", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CreateConversation(ctx, store.Conversation{ID: conv, BotID: botID, SiteID: "site-" + botID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := keys.Codec.Prepare(ctx, conv); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		aid := conv + "|" + string(rune('a'+i))
		if _, err := st.Append(ctx, conv, nil, []store.NewOutbox{{BotID: botID, Build: func([]int64) (string, []byte, error) {
			body, _ := keys.Codec.EncodeOutbox(ctx, conv, []byte(`{"type":"message","id":"`+aid+`","text":"PRIVATE-TEXT"}`))
			return aid, body, nil
		}}}); err != nil {
			t.Fatal(err)
		}
	}
	pend, _ := st.PendingOutbox(ctx, conv)
	for _, it := range pend {
		if err := st.DeadLetterOutbox(ctx, store.DeadLetter{OutboxItem: store.OutboxItem{ID: it.ID, Attempts: 7}, LastAttemptAt: time.Now(), LastStatus: 503, LastError: "bot answered 503", DeadAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeliveriesDeadListAndRedeliver(t *testing.T) {
	data := t.TempDir()
	deadLetters(t, data, "bot-a", "conv-1", 2)
	deadLetters(t, data, "bot-b", "conv-2", 1)

	out, _, err := run(t, nil, "deliveries", "dead", "list", "--data", data, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var all []deadLetterJSON
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 3 {
		t.Fatalf("list --json = %s, %v", out, err)
	}
	if all[0].ActivityID != "conv-1|a" || all[0].Attempts != 7 || all[0].LastStatus != 503 || all[0].LastError == "" || all[0].Activity != nil {
		t.Fatalf("first dead letter = %+v", all[0])
	}
	if strings.Contains(out, "PRIVATE-TEXT") {
		t.Fatalf("list shows message text without --body: %s", out)
	}
	out, _, _ = run(t, nil, "deliveries", "dead", "list", "--data", data, "--bot", "bot-b")
	if !strings.Contains(out, "conv-2|a") || strings.Contains(out, "conv-1") {
		t.Fatalf("list --bot bot-b = %s", out)
	}
	out, _, _ = run(t, nil, "deliveries", "dead", "list", "--data", data, "--bot", "bot-b", "--body")
	if !strings.Contains(out, "PRIVATE-TEXT") {
		t.Fatalf("list --body does not show the activity: %s", out)
	}
	// Reading the activities is a read of user data: audited, with the count.
	if export, _, err := run(t, nil, "audit", "export", "--data", data); err != nil ||
		!regexp.MustCompile(`"action":"deadletters\.content","target":"bot:bot-b"[^\n]*"count":"1"`).MatchString(export) {
		t.Fatalf("no audit entry for list --body (%v):\n%s", err, export)
	}

	for name, args := range map[string][]string{
		"neither":     {},
		"both":        {"--all", "--id", "1"},
		"bot with id": {"--id", "1", "--bot", "bot-a"},
	} {
		if _, _, err := run(t, nil, append([]string{"deliveries", "dead", "redeliver", "--data", data}, args...)...); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("redeliver %s: err = %v, want one that says which flags to give", name, err)
		}
	}
	idB := all[2].ID
	if _, _, err := run(t, nil, "deliveries", "dead", "redeliver", "--data", data, "--id", "999"); err == nil || !strings.Contains(err.Error(), "parley deliveries dead list") {
		t.Fatalf("redeliver unknown id: %v, want a pointer to the list command", err)
	}
	out, _, err = run(t, nil, "deliveries", "dead", "redeliver", "--data", data, "--all", "--bot", "bot-a", "--json")
	if err != nil || !strings.Contains(out, "redelivered") {
		t.Fatalf("redeliver --all --bot bot-a = %s, %v", out, err)
	}
	out, _, _ = run(t, nil, "deliveries", "dead", "list", "--data", data, "--json")
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 1 || all[0].ID != idB {
		t.Fatalf("left after redelivering bot-a's: %s", out)
	}
	// Back in the outbox, in their original order, ready for the worker.
	cfg := config.Default()
	cfg.DataDir = data
	st, err := server.OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	pend, _ := st.PendingOutbox(context.Background(), "conv-1")
	_ = st.Close()
	if len(pend) != 2 || pend[0].ActivityID != "conv-1|a" || pend[1].ActivityID != "conv-1|b" || pend[0].Attempts != 0 {
		t.Fatalf("outbox after redelivery = %+v", pend)
	}
	if _, _, err := run(t, nil, "deliveries", "dead", "redeliver", "--data", data, "--id", itoa(idB)); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := run(t, nil, "deliveries", "dead", "list", "--data", data); !strings.Contains(out, "no dead letters") {
		t.Fatalf("list after redelivering everything = %q", out)
	}
}

// The operator's CLI never echoes an endpoint's function key or userinfo.
func TestBotEndpointRedactedInCLI(t *testing.T) {
	data := t.TempDir()
	out, _, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "Fn", "--endpoint", "https://fn.example.com/api/messages?code=SECRETFUNCTIONKEY")
	if err != nil || strings.Contains(out, "SECRETFUNCTIONKEY") || !strings.Contains(out, "https://fn.example.com/api/messages?REDACTED") {
		t.Fatalf("bot create = %v\n%s", err, out)
	}
	for _, args := range [][]string{{"bot", "list", "--data", data}, {"bot", "list", "--data", data, "--json"}} {
		if out, _, _ := run(t, nil, args...); strings.Contains(out, "SECRETFUNCTIONKEY") || !strings.Contains(out, "fn.example.com") {
			t.Fatalf("%v = %s", args, out)
		}
	}
	for _, ep := range []string{"http://fn.example.com/api?code=SECRETFUNCTIONKEY", "https://user:hunter2pass@fn.example.com/api?code=SECRETFUNCTIONKEY"} {
		_, _, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "x", "--endpoint", ep)
		if err == nil || strings.Contains(err.Error(), "SECRETFUNCTIONKEY") || strings.Contains(err.Error(), "hunter2pass") {
			t.Fatalf("bot create --endpoint %s: err = %v", ep, err)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
