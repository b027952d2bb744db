package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

type listedKey struct {
	ID, Purpose, State, Handle string
	ActivatedAt, RetiredAt     *time.Time
	DestroyedAt                *time.Time
}

func listKeys(t *testing.T, data string, args ...string) []listedKey {
	t.Helper()
	out, _, err := run(t, nil, append([]string{"keys", "list", "--data", data, "--json"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var keys []listedKey
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return keys
}

// states counts keys by purpose:state.
func states(keys []listedKey) map[string]int {
	m := map[string]int{}
	for _, k := range keys {
		m[k.Purpose+":"+k.State]++
	}
	return m
}

func keyIn(keys []listedKey, purpose, state string) string {
	for _, k := range keys {
		if k.Purpose == purpose && k.State == state {
			return k.ID
		}
	}
	return ""
}

func TestKeysRotateListDestroy(t *testing.T) {
	data := t.TempDir()
	// Unknown purposes are refused with the list of valid ones.
	for _, args := range [][]string{
		{"keys", "rotate", "--data", data, "--purpose", "signing"},
		{"keys", "list", "--data", data, "--purpose", "signing"},
	} {
		_, _, err := run(t, nil, args...)
		if err == nil || !strings.Contains(err.Error(), "valid purposes: audit-checkpoint, channel, directline-token, kek, log-pseudonym, sts") {
			t.Fatalf("%v: %v", args, err)
		}
	}
	if _, _, err := run(t, nil, "keys", "rotate", "--data", data); err == nil || !strings.Contains(err.Error(), "purpose") {
		t.Fatalf("rotate without --purpose: %v", err)
	}

	// A rotation to a next key made just now is refused for each purpose
	// that needs its next key to age, with what --force would risk.
	for purpose, risk := range map[string]string{
		"directline-token": "refuses the Direct Line tokens the new key signs",
		"channel":          "bots may not have fetched it yet",
		"sts":              "bots may not have fetched it yet",
	} {
		_, _, err := run(t, nil, "keys", "rotate", "--data", data, "--purpose", purpose)
		if err == nil || !strings.Contains(err.Error(), "--force") || !strings.Contains(err.Error(), risk) {
			t.Fatalf("early %s rotation: %v", purpose, err)
		}
	}
	// Every signing purpose rotates (with --force where it must).
	for _, purpose := range []string{"directline-token", "channel", "sts", "log-pseudonym"} {
		out, _, err := run(t, nil, "keys", "rotate", "--data", data, "--purpose", purpose, "--force", "--json")
		var r struct{ Purpose, Activated, Next string }
		if err != nil || json.Unmarshal([]byte(out), &r) != nil || r.Purpose != purpose || r.Activated == "" || r.Next == "" {
			t.Fatalf("rotate %s = %q, %v", purpose, out, err)
		}
	}
	// KEKs rotate through their provider (the local one here), re-wrapping.
	if out, _, err := run(t, nil, "keys", "rotate", "--data", data, "--purpose", "kek", "--json"); err != nil || !strings.Contains(out, `"activated": "kek-`) {
		t.Fatalf("kek rotation = %q, %v", out, err)
	}
	if out, _, err := run(t, nil, "keys", "rewrap", "--data", data); err != nil || !strings.Contains(out, "re-wrapped 0 data keys") {
		t.Fatalf("keys rewrap = %q, %v", out, err)
	}
	// The re-wrap goes through the service layer: audited like the rotation.
	if export, _, err := run(t, nil, "audit", "export", "--data", data); err != nil || !strings.Contains(export, `"target":"keys:kek"`) || !regexp.MustCompile(`"action":"keys\.manage"[^\n]*"rewrapped":"0"`).MatchString(export) {
		t.Fatalf("no audit entry for the re-wrap (%v):\n%s", err, export)
	}

	keys := listKeys(t, data)
	got := states(keys)
	for _, p := range []string{"directline-token", "channel", "sts"} {
		if got[p+":retired"] != 1 || got[p+":active"] != 1 || got[p+":next"] != 1 {
			t.Fatalf("%s after one rotation: %v", p, got)
		}
	}
	// The pseudonym key has no overlap: retired means expired at once.
	if got["log-pseudonym:expired"] != 1 || got["log-pseudonym:active"] != 1 || got["log-pseudonym:next"] != 1 {
		t.Fatalf("log-pseudonym after one rotation: %v", got)
	}
	if only := listKeys(t, data, "--purpose", "sts"); len(only) != 3 || states(only)["sts:active"] != 1 {
		t.Fatalf("--purpose sts listed %v", states(only))
	}
	out, _, err := run(t, nil, "keys", "list", "--data", data)
	if err != nil || !strings.Contains(out, "PURPOSE") || strings.Count(out, "\n") != len(keys)+1 {
		t.Fatalf("text listing: %v\n%s", err, out)
	}

	// Destroy: never the active or the next key.
	for _, state := range []string{"active", "next"} {
		id := keyIn(keys, "directline-token", state)
		_, _, err := run(t, nil, "keys", "destroy", "--data", data, "--id", id, "--yes")
		if err == nil || !strings.Contains(err.Error(), "only a retired key") || !strings.Contains(err.Error(), "keys rotate --purpose directline-token") {
			t.Fatalf("destroying the %s key: %v", state, err)
		}
	}
	if _, _, err := run(t, nil, "keys", "destroy", "--data", data, "--id", "nope", "--yes"); err == nil {
		t.Fatal("destroying an unknown key succeeded")
	}
	retired := keyIn(keys, "directline-token", "retired")
	// Without --yes: it says what becomes unverifiable, and does nothing.
	_, _, err = run(t, nil, "keys", "destroy", "--data", data, "--id", retired)
	var coded interface{ ExitCode() int }
	if err == nil || !strings.Contains(err.Error(), "--yes") || !strings.Contains(err.Error(), "Direct Line tokens it signed are refused") || !errors.As(err, &coded) || coded.ExitCode() != 2 {
		t.Fatalf("destroy without --yes: %v, want a refusal with exit code 2 (as the delete commands)", err)
	}
	if keyIn(listKeys(t, data), "directline-token", "retired") != retired {
		t.Fatal("destroy without --yes destroyed the key")
	}
	out, _, err = run(t, nil, "keys", "destroy", "--data", data, "--id", retired, "--yes")
	if err != nil || !strings.Contains(out, "destroyed directline-token key "+retired) {
		t.Fatalf("destroy --yes = %q, %v", out, err)
	}
	keys = listKeys(t, data)
	for _, k := range keys {
		if k.ID == retired && (k.State != "destroyed" || k.DestroyedAt == nil || k.RetiredAt == nil) {
			t.Fatalf("destroyed key listed as %+v", k)
		}
	}
	if out, _, err := run(t, nil, "keys", "destroy", "--data", data, "--id", retired, "--yes"); err != nil || !strings.Contains(out, "destroyed already") {
		t.Fatalf("second destroy = %q, %v", out, err)
	}

	// --purge-retired destroys the key it retires (and every retired one).
	oldSTS := keyIn(keys, "sts", "active")
	if _, _, err := run(t, nil, "keys", "rotate", "--data", data, "--purpose", "sts", "--force", "--purge-retired"); err != nil {
		t.Fatal(err)
	}
	got = states(listKeys(t, data, "--purpose", "sts"))
	if got["sts:destroyed"] != 2 || got["sts:retired"] != 0 || got["sts:active"] != 1 || got["sts:next"] != 1 {
		t.Fatalf("sts after a purge: %v", got)
	}
	for _, k := range listKeys(t, data, "--purpose", "sts") {
		if k.ID == oldSTS && k.State != "destroyed" {
			t.Fatalf("the purged key is %s", k.State)
		}
	}
}

// A rotation and purge by the CLI reach a running server at its next key
// reload: the Direct Line token signed by the withdrawn key is refused,
// a new token works.
func TestKeysRotationReachesRunningServer(t *testing.T) {
	data, err := filepath.Abs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, nil, "bot", "create", "--data", data, "--name", "dev", "--endpoint", "http://127.0.0.1:9/api/messages", "--insecure-no-auth", "--json")
	var bot botJSON
	if err != nil || json.Unmarshal([]byte(out), &bot) != nil {
		t.Fatalf("bot create = %q, %v", out, err)
	}
	out, _, err = run(t, nil, "site", "create", "--data", data, "--bot", bot.ID, "--name", "www", "--json")
	var site struct{ Secrets []string }
	if err != nil || json.Unmarshal([]byte(out), &site) != nil || len(site.Secrets) == 0 {
		t.Fatalf("site create = %q, %v", out, err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen, cfg.PublicURL, cfg.DataDir, cfg.InsecureHTTP = ln.Addr().String(), "http://"+ln.Addr().String(), data, true
	cfg.MasterKeyFile = filepath.Join(data, "master.key")
	cfg.Bots.KeyReload = config.Duration(time.Second)
	cfg.Metrics.Listen = "off"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, server.Listeners{Main: ln}) }()
	t.Cleanup(func() { cancel(); <-done })

	dl := cfg.PublicURL + "/v3/directline"
	token := func() string {
		t.Helper()
		st, body := call(t, "POST", dl+"/tokens/generate", site.Secrets[0], `{"user":{"id":"dl_keys"}}`)
		if st != 200 {
			t.Fatalf("generate: %d %v", st, body)
		}
		return body["token"].(string)
	}
	old := token()
	if st, _ := call(t, "POST", dl+"/conversations", old, `{}`); st != 201 {
		t.Fatalf("start with a fresh token: %d", st)
	}
	if out, _, err := run(t, nil, "keys", "rotate", "--data", data, "--purpose", "directline-token", "--force", "--purge-retired"); err != nil {
		t.Fatal(err)
	} else if strings.Contains(out, "keep working") || !strings.Contains(out, "refused at once") {
		// The overlap's promise does not hold for purged keys (review).
		t.Fatalf("rotate --purge-retired says:\n%s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := call(t, "POST", dl+"/conversations", old, `{}`)
		if st == 403 || st == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a token of the withdrawn key still answers %d 10 s after the rotation", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st, _ := call(t, "POST", dl+"/conversations", token(), `{}`); st != 201 {
		t.Fatalf("a token of the new key: %d", st)
	}
}
