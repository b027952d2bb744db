package adminapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/admin"
)

// A rotation with purgeRetired destroys key material, as the destroy
// route does; that route needs a recent re-authentication (and is never
// open to an API token), so the purge must need it too.
func TestRevRotatePurgeRetiredNeedsReauth(t *testing.T) {
	e := newEnv(t)
	e.withRetiredKey()
	body := map[string]any{"purpose": "log-pseudonym", "force": true, "purgeRetired": true}
	got := e.json("POST", admin.Prefix+"/keys/rotate", "owner", body)
	if got.status != 403 || got.errCode() != admin.CodeReauth {
		t.Fatalf("purge without re-authentication: %d %s, want 403 %s", got.status, got.body, admin.CodeReauth)
	}
	list := e.json("GET", admin.Prefix+"/keys?purpose=log-pseudonym", "owner", nil)
	var keys []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if err := json.Unmarshal(list.body, &keys); err != nil {
		t.Fatalf("keys: %s", list.body)
	}
	i := slices.IndexFunc(keys, func(k struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}) bool {
		return k.ID == e.retiredKey
	})
	if i < 0 || keys[i].State == "destroyed" {
		t.Fatalf("retired key %s after a refused purge: %s", e.retiredKey, list.body)
	}
	// A plain rotation needs no re-authentication; a purge with it works.
	if got := e.json("POST", admin.Prefix+"/keys/rotate", "owner", map[string]any{"purpose": "log-pseudonym", "force": true}); got.status != 200 {
		t.Fatalf("plain rotation: %d %s", got.status, got.body)
	}
	if got := e.json("POST", admin.Prefix+"/keys/rotate", "owner:reauth", body); got.status != 200 {
		t.Fatalf("purge after re-authentication: %d %s", got.status, got.body)
	}
}

// An operator sets OAuth connection URLs that the gateway itself calls
// (OIDC discovery, the token endpoint): like a bot endpoint, they must
// not point at internal addresses (cloud metadata, the private network).
func TestRevOAuthURLsRefuseInternalAddresses(t *testing.T) {
	e := newEnv(t)
	base := admin.Prefix + "/bots/" + e.bot["A"] + "/oauth-connections"
	for i, c := range []map[string]any{
		{"provider": "oidc", "issuer": "https://169.254.169.254/latest"},
		{"provider": "oidc", "issuer": "https://10.1.2.3"},
		{"provider": "oidc", "issuer": "https://[::ffff:192.168.0.10]/"},
		{"provider": "oauth2", "authUrl": "https://idp.example.com/authorize", "tokenUrl": "https://172.16.0.5/token"},
		{"provider": "oauth2", "authUrl": "https://idp.example.com/authorize", "tokenUrl": "https://100.64.0.1/token"},
	} {
		c["name"], c["clientId"], c["clientSecret"] = "c"+strconv.Itoa(i), "id", "s3cret"
		got := e.json("POST", base, "operator:"+e.bot["A"], c)
		if got.status != 400 {
			t.Errorf("create %v: %d %s, want 400", c, got.status, got.body)
		}
	}
	ok := map[string]any{"name": "good", "provider": "oidc", "issuer": "https://203.0.113.7", "clientId": "id", "clientSecret": "s3cret"}
	if got := e.json("POST", base, "operator:"+e.bot["A"], ok); got.status != 201 {
		t.Fatalf("create with a public issuer: %d %s", got.status, got.body)
	}
	got := e.json("PATCH", base+"/good", "operator:"+e.bot["A"], map[string]any{"issuer": "https://10.0.0.1"})
	if got.status != 400 {
		t.Fatalf("update to an internal issuer: %d %s, want 400", got.status, got.body)
	}
}

// A connection's client secret is write-only over the API. Moving the
// connection to other endpoints while keeping the sealed secret would
// make the gateway send that secret to a server of the caller's choice
// at the next sign-in: a change of provider, issuer, URLs or tenant
// needs the secret again.
func TestRevOAuthEndpointChangeNeedsTheSecret(t *testing.T) {
	e := newEnv(t)
	path := admin.Prefix + "/bots/" + e.bot["A"] + "/oauth-connections/conn"
	who := "operator:" + e.bot["A"]
	for _, c := range []map[string]any{
		{"provider": "oauth2", "authUrl": "https://evil.example/authorize", "tokenUrl": "https://evil.example/token"},
		{"provider": "oidc", "issuer": "https://evil.example"},
		{"provider": "entra", "tenant": "evil.onmicrosoft.com"},
	} {
		if got := e.json("PATCH", path, who, c); got.status != 400 {
			t.Errorf("PATCH %v without the secret: %d %s, want 400", c, got.status, got.body)
		}
	}
	if got := e.json("PATCH", path, who, map[string]any{"clientId": "other", "scopes": []string{"repo"}}); got.status != 200 {
		t.Fatalf("PATCH client id and scopes: %d %s", got.status, got.body)
	}
	c := map[string]any{"provider": "oidc", "issuer": "https://idp.example.com", "clientSecret": "new-secret"}
	if got := e.json("PATCH", path, who, c); got.status != 200 {
		t.Fatalf("PATCH with a new secret: %d %s", got.status, got.body)
	}
	// Now oidc: a new issuer alone is refused too.
	if got := e.json("PATCH", path, who, map[string]any{"issuer": "https://evil.example"}); got.status != 400 {
		t.Fatalf("PATCH issuer without the secret: %d %s", got.status, got.body)
	}
}

// Path and method tricks: none reaches a route without its guard, and a
// principal scoped to bot A never gets bot B's objects. (Held before
// this review; kept as a regression test.)
func TestRevPathAndMethodTricksHeld(t *testing.T) {
	e := newEnv(t)
	v1 := admin.Prefix
	b, s := e.bot["B"], e.site["B"]
	tricks := []string{
		v1 + "//bots", v1 + "/bots/", v1 + "/BOTS", "/ADMIN/v1/bots", v1 + "/./bots", v1 + "/x/../bots",
		v1 + "/bots/" + b + "/", v1 + "//bots/" + b, v1 + "/bots/%2e%2e/bots/" + b, v1 + "/sites/" + s + "%2Fsecrets",
		v1 + "/sites/" + s + "/secrets/", v1 + "/audit/", v1 + "/keys/", v1 + "/operators/", v1 + "%2Fbots",
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range tricks {
		for _, method := range []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE", "CONNECT"} {
			for _, tok := range []string{"", "operator:" + e.bot["A"], "auditor:" + e.bot["A"]} {
				req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(`{}`))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), b) && resp.StatusCode < 300 {
					t.Errorf("%s %s as %q: %d %s: bot B's object", method, path, tok, resp.StatusCode, body)
				}
				if tok == "" && resp.StatusCode < 300 {
					t.Errorf("%s %s without a credential: %d %s", method, path, resp.StatusCode, body)
				}
				if method != "GET" && method != "HEAD" && resp.StatusCode < 300 {
					t.Errorf("%s %s as %q changed something? %d %s", method, path, tok, resp.StatusCode, body)
				}
			}
		}
	}
}
