package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

const cliSecretCanary = "CLI-CLIENT-SECRET-CANARY-77a1"

func TestOAuthConnectionCommands(t *testing.T) {
	data := t.TempDir()
	out, _, err := run(t, nil, "bot", "create", "--data", data, "--public-url", "https://chat.example.com", "--name", "Support", "--endpoint", "https://bot.example.com/api/messages", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var bot botJSON
	_ = json.Unmarshal([]byte(out), &bot)
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(cliSecretCanary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"oauth", "connection", "create", "--data", data, "--bot", bot.ID}
	out, _, err = run(t, nil, append(base, "--name", "sso", "--provider", "oidc", "--issuer", "https://login.example.com/", "--client-id", "parley",
		"--client-secret-file", secretFile, "--scopes", "openid,profile,offline_access", "--max-login", "2h", "--json")...)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	var c oauthConnJSON
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.Name != "sso" || c.Provider != "oidc" || c.Issuer != "https://login.example.com" ||
		c.MaxLogin != "2h0m0s" || len(c.Scopes) != 3 || !strings.HasSuffix(c.RedirectURI, "/api/oauth/callback") {
		t.Fatalf("create --json = %s (%v)", out, err)
	}
	if strings.Contains(out, cliSecretCanary) {
		t.Fatal("create prints the client secret")
	}
	// GitHub and Entra presets, generic OAuth 2.0.
	for _, args := range [][]string{
		{"--name", "gh", "--provider", "github", "--client-id", "Iv1.x", "--client-secret-file", secretFile, "--scopes", "read:user"},
		{"--name", "entra", "--provider", "entra", "--tenant", "contoso.onmicrosoft.com", "--client-id", "11111111-2222-3333-4444-555555555555", "--client-secret-file", secretFile},
		{"--name", "generic", "--provider", "oauth2", "--auth-url", "https://idp.example/auth", "--token-url", "https://idp.example/token", "--client-id", "x", "--client-secret-file", secretFile},
	} {
		if _, _, err := run(t, nil, append(base, args...)...); err != nil {
			t.Fatalf("create %v: %v", args, err)
		}
	}
	// Refusals, each saying what to do.
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no secret file":          {[]string{"--name", "a", "--provider", "github", "--client-id", "x"}, "--client-secret-file"},
		"secret as an argument":   {[]string{"--name", "a", "--provider", "github", "--client-id", "x", "--client-secret", "s"}, "unknown flag"},
		"unknown provider":        {[]string{"--name", "a", "--provider", "okta", "--client-id", "x", "--client-secret-file", secretFile}, "want oidc, oauth2, github or entra"},
		"plain http issuer":       {[]string{"--name", "a", "--provider", "oidc", "--issuer", "http://login.example.com", "--client-id", "x", "--client-secret-file", secretFile}, "https"},
		"entra without tenant":    {[]string{"--name", "a", "--provider", "entra", "--client-id", "x", "--client-secret-file", secretFile}, "--tenant"},
		"duplicate":               {[]string{"--name", "gh", "--provider", "github", "--client-id", "x", "--client-secret-file", secretFile}, "update"},
		"bad name":                {[]string{"--name", "a b", "--provider", "github", "--client-id", "x", "--client-secret-file", secretFile}, "connection name"},
		"max login too long":      {[]string{"--name", "a", "--provider", "github", "--client-id", "x", "--client-secret-file", secretFile, "--max-login", "2160h1s"}, "max login"},
		"missing secret file":     {[]string{"--name", "a", "--provider", "github", "--client-id", "x", "--client-secret-file", "/nonexistent/s"}, "readable file"},
		"scope with quote":        {[]string{"--name", "a", "--provider", "github", "--client-id", "x", "--client-secret-file", secretFile, "--scopes", `a"b`}, "scope"},
		"unknown bot (other arg)": {[]string{"--name", "a", "--provider", "github", "--client-id", "x", "--client-secret-file", secretFile, "--bot", "nope"}, "parley bot list"},
	} {
		_, _, err := run(t, nil, append(base, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, tc.want)
		}
	}
	out, _, err = run(t, nil, "oauth", "connection", "list", "--data", data, "--bot", bot.ID, "--json")
	var list []oauthConnJSON
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 4 || list[0].Name != "entra" {
		t.Fatalf("list --json = %s (%v)", out, err)
	}
	if strings.Contains(out, cliSecretCanary) {
		t.Fatal("list prints the client secret")
	}
	out, _, err = run(t, nil, "oauth", "connection", "update", "--data", data, "--bot", bot.ID, "--name", "gh", "--scopes", "repo", "--max-login", "30m", "--json")
	if err != nil || !strings.Contains(out, `"maxLogin": "30m0s"`) || !strings.Contains(out, `"repo"`) || !strings.Contains(out, `"provider": "github"`) {
		t.Fatalf("update = %s (%v)", out, err)
	}
	if _, _, err := run(t, nil, "oauth", "connection", "update", "--data", data, "--bot", bot.ID, "--name", "nope", "--scopes", "repo"); err == nil || !strings.Contains(err.Error(), "oauth connection list") {
		t.Fatalf("update of a missing connection: %v", err)
	}
	if _, _, err := run(t, nil, "oauth", "connection", "delete", "--data", data, "--bot", bot.ID, "--name", "generic"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, nil, "oauth", "connection", "delete", "--data", data, "--bot", bot.ID, "--name", "generic"); err == nil {
		t.Fatal("deleting twice succeeded")
	}
	// The secret is nowhere in the clear in the data directory.
	err = filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), cliSecretCanary) {
			t.Errorf("client secret in the clear in %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEraseUserDeletesUserTokens: erase --user deletes the user's sign-in
// tokens of every bot, even when their conversations are already gone.
func TestEraseUserDeletesUserTokens(t *testing.T) {
	f := newEraseFixture(t)
	ctx := context.Background()
	f.conv(t, "alice1", "site1", "dl_alice", "hello", "kek-1", 1)
	if err := f.st.CreateOAuthConnection(ctx, store.OAuthConnection{BotID: "bot", Name: "gh", Kind: store.OAuthKindGitHub, ClientID: "x",
		SealedSecret: []byte{1}, MaxLogin: time.Hour, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	put := func(user string) {
		if err := f.st.PutUserToken(ctx, store.UserToken{BotID: "bot", UserID: user, Connection: "gh", Sealed: []byte{2}, SignedInAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	put("dl_alice")
	put("dl_bob")
	out, _, err := run(t, nil, "erase", "--data", f.dir, "--user", "dl_alice", "--yes", "--json")
	if err != nil {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	var rc eraseReceipt
	if err := json.Unmarshal([]byte(out), &rc); err != nil || rc.Totals.UserTokens != 1 || rc.Totals.Conversations != 1 {
		t.Fatalf("receipt = %s (%v)", out, err)
	}
	if _, err := f.st.GetUserToken(ctx, "bot", "dl_alice", "gh"); err == nil {
		t.Fatal("alice's token survived the erasure")
	}
	if _, err := f.st.GetUserToken(ctx, "bot", "dl_bob", "gh"); err != nil {
		t.Fatalf("bob's token was erased: %v", err)
	}
	// Only a token left (the conversations expired): still erased.
	put("dl_carol")
	out, _, err = run(t, nil, "erase", "--data", f.dir, "--user", "dl_carol", "--yes", "--json")
	if err != nil || json.Unmarshal([]byte(out), &rc) != nil || rc.Totals.UserTokens != 1 || rc.Totals.Conversations != 0 {
		t.Fatalf("erase of a user with only a token: %v %s", err, out)
	}
	if _, _, err := run(t, nil, "erase", "--data", f.dir, "--user", "dl_carol", "--yes"); exitCode(err) != exitNothing {
		t.Fatalf("second erase: %v, want exit %d", err, exitNothing)
	}
}
