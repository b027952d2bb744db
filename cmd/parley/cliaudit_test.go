package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/audit"
)

// The local CLI is a client of the service layer, so its changes land in
// the audit log like the API's: actor local:<user>, the action, the
// target, the outcome; never a secret. A refusal is recorded too.
func TestCLIChangesAreAudited(t *testing.T) {
	data := t.TempDir()
	bot := createBot(t, data, "Audited", "--endpoint", "https://bot.example.com/api/messages", "--public-url", "https://chat.example.com")
	out, _, err := run(t, nil, "site", "create", "--data", data, "--bot", bot.ID, "--name", "www", "--origin", "https://www.example.com", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var site struct {
		ID      string   `json:"id"`
		Secrets []string `json:"secrets"`
		Secret  string   `json:"secret"`
	}
	_ = json.Unmarshal([]byte(out), &site)
	if _, _, err := run(t, nil, "site", "create", "--data", data, "--bot", "no-such-bot", "--name", "x", "--origin", "https://x.example.com"); err == nil {
		t.Fatal("site create for an unknown bot succeeded")
	}
	export, _, err := run(t, nil, "audit", "export", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	var sawBot, sawSite, sawRefusal bool
	for _, line := range strings.Split(strings.TrimSpace(export), "\n") {
		var e struct {
			Actor, Action, Target, Outcome string
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		if !strings.HasPrefix(e.Actor, "local:") {
			t.Errorf("entry %q: actor %q, want local:<user>", line, e.Actor)
		}
		sawBot = sawBot || (e.Action == "bots.write" && e.Target == "bot:"+bot.ID && e.Outcome == "success")
		sawSite = sawSite || (e.Action == "sites.write" && site.ID != "" && e.Target == "site:"+site.ID && e.Outcome == "success")
		sawRefusal = sawRefusal || (e.Action == "sites.write" && e.Outcome == "failure")
	}
	if !sawBot || !sawSite || !sawRefusal {
		t.Fatalf("audit export lacks the bot creation (%v), the site creation (%v) or the refused one (%v):\n%s", sawBot, sawSite, sawRefusal, export)
	}
	for _, secret := range append(site.Secrets, site.Secret, bot.ClientSecret) {
		if secret != "" && strings.Contains(export, secret) {
			t.Fatalf("a secret is in the audit log")
		}
	}
	if _, _, err := run(t, nil, "audit", "verify", "--data", data); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
}

// failingRecorder refuses every audit event after the change it records
// was made (a full disk between the two writes, say).
type failingRecorder struct{}

func (failingRecorder) Record(context.Context, audit.Event) error {
	return errors.New("audit log unwritable")
}

// A change whose audit event cannot be recorded still shows what it made:
// a secret shown once must reach the operator, then the command fails with
// the audit error (review: the site existed and its secrets were lost).
func TestSecretsShownWhenTheAuditRecordFails(t *testing.T) {
	data := t.TempDir()
	bot := createBot(t, data, "Support", "--endpoint", "https://bot.example.com/api/messages", "--public-url", "https://chat.example.com")
	var stdout, stderr bytes.Buffer
	root := (&app{stdout: &stdout, stderr: &stderr, env: func(string) (string, bool) { return "", false }, resolver: testHosts, recorder: failingRecorder{}}).root()
	root.SetArgs([]string{"site", "create", "--data", data, "--bot", bot.ID, "--name", "web", "--origin", "https://www.example.com", "--json"})
	err := root.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "recording the audit event failed") {
		t.Fatalf("site create with the audit log failing: %v, want the audit error", err)
	}
	var site struct {
		ID      string   `json:"id"`
		Secrets []string `json:"secrets"`
	}
	if jerr := json.Unmarshal(stdout.Bytes(), &site); jerr != nil || site.ID == "" || len(site.Secrets) != 2 || site.Secrets[0] == "" {
		t.Fatalf("site create printed %q (%v): want the site and its two secrets", stdout.String(), jerr)
	}
}
