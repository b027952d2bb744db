package botauth

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/guard"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

type agentsFixture struct {
	a        *Authority
	st       store.Store
	mux      *http.ServeMux
	logs     *bytes.Buffer
	failures *guard.AuthFailures
}

const (
	miAppID  = "11111111-2222-4333-8444-555555555555"
	miSecret = "the-right-secret-value"
	miPublic = "https://chat.example.com"
)

func newAgentsFixture(t *testing.T) agentsFixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	kr, _ := keyring.New(make([]byte, 32))
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	failures := guard.NewAuthFailures(nil, logger, guard.Proxies{})
	a, err := New(ctx, Config{PublicURL: miPublic, Failures: failures, Guesses: guard.GuessConfig{
		Sleep: func(context.Context, time.Duration) error { return nil },
	}}, st, kr, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateBot(ctx, store.Bot{ID: miAppID, Name: "b", Endpoint: "https://bot.example.com/api", CreatedAt: time.Now(),
		SecretHashes: [2][]byte{HashClientSecret(miSecret), nil}}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateBot(ctx, store.Bot{ID: "insecure-bot", Name: "i", Endpoint: "http://127.0.0.1:9/api", CreatedAt: time.Now(),
		InsecureNoAuth: true}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Register(mux)
	return agentsFixture{a: a, st: st, mux: mux, logs: logs, failures: failures}
}

// mi asks the managed identity endpoint as MSAL's App Service source does.
func (f agentsFixture) mi(rawQuery string, header []string, from string, overTLS bool) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", ManagedIdentityPath+"?"+rawQuery, nil)
	for _, h := range header {
		r.Header.Add("X-IDENTITY-HEADER", h)
	}
	if overTLS {
		r.TLS = &tls.ConnectionState{}
	} else {
		r.TLS = nil
	}
	r.RemoteAddr = from + ":40000"
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	return w
}

func miQuery(resource, clientID string) string {
	return url.Values{"api-version": {"2019-08-01"}, "resource": {resource}, "client_id": {clientID}}.Encode()
}

// MSAL's App Service request (api-version 2019-08-01, resource without
// "/.default", client_id, X-IDENTITY-HEADER) gets Parley's own bot access
// token, which Parley's Bot Connector accepts as that bot's.
func TestManagedIdentityIssuesParleyToken(t *testing.T) {
	f := newAgentsFixture(t)
	for _, resource := range []string{BotFrameworkScope, miPublic, BotFrameworkScope + "/.default"} {
		w := f.mi(miQuery(resource, miAppID), []string{miSecret}, "203.0.113.9", true)
		if w.Code != 200 {
			t.Fatalf("resource %s: %d %s", resource, w.Code, w.Body)
		}
		var body struct {
			AccessToken string `json:"access_token"`
			ExpiresOn   string `json:"expires_on"`
			Resource    string `json:"resource"`
			TokenType   string `json:"token_type"`
			ClientID    string `json:"client_id"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		exp, err := strconv.ParseInt(body.ExpiresOn, 10, 64)
		if err != nil || exp < time.Now().Add(50*time.Minute).Unix() || exp > time.Now().Add(61*time.Minute).Unix() {
			t.Fatalf("expires_on %q: want seconds since the epoch, about an hour ahead", body.ExpiresOn)
		}
		if body.TokenType != "Bearer" || body.Resource != resource || body.ClientID != miAppID || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("response %s (Cache-Control %q)", w.Body, w.Header().Get("Cache-Control"))
		}
		got, err := f.a.AuthenticateBot(context.Background(), "Bearer "+body.AccessToken)
		if err != nil || got != miAppID {
			t.Fatalf("the managed identity token at the Bot Connector: %q, %v", got, err)
		}
	}
}

// Every malformed or hostile request is refused in the OAuth error shape
// (which MSAL reads), and a wrong secret is logged and counted like one at
// the token endpoint, without the secret.
func TestManagedIdentityRefusals(t *testing.T) {
	f := newAgentsFixture(t)
	const from = "198.51.100.7"
	good := miQuery(BotFrameworkScope, miAppID)
	cases := []struct {
		name    string
		query   string
		header  []string
		overTLS bool
		code    int
		errCode string
	}{
		{"plain HTTP", good, []string{miSecret}, false, 400, "invalid_request"},
		{"no api-version", url.Values{"resource": {BotFrameworkScope}, "client_id": {miAppID}}.Encode(), []string{miSecret}, true, 400, "invalid_request"},
		{"old api-version", strings.Replace(good, "2019-08-01", "2017-09-01", 1), []string{miSecret}, true, 400, "invalid_request"},
		{"two client ids", good + "&client_id=other", []string{miSecret}, true, 400, "invalid_request"},
		{"two resources", good + "&resource=" + url.QueryEscape(miPublic), []string{miSecret}, true, 400, "invalid_request"},
		{"two identity headers", good, []string{miSecret, miSecret}, true, 400, "invalid_request"},
		{"object id", good + "&object_id=x", []string{miSecret}, true, 400, "invalid_request"},
		{"principal id", good + "&principal_id=x", []string{miSecret}, true, 400, "invalid_request"},
		{"foreign resource", miQuery("https://graph.microsoft.com", miAppID), []string{miSecret}, true, 400, "invalid_scope"},
		{"case variant of the alias", miQuery("HTTPS://API.BOTFRAMEWORK.COM", miAppID), []string{miSecret}, true, 400, "invalid_scope"},
		{"trailing slash", miQuery(BotFrameworkScope+"/", miAppID), []string{miSecret}, true, 400, "invalid_scope"},
		{"no identity header", good, nil, true, 401, "invalid_client"},
		{"no client id (system identity)", url.Values{"api-version": {"2019-08-01"}, "resource": {BotFrameworkScope}}.Encode(), []string{miSecret}, true, 401, "invalid_client"},
		{"huge secret", good, []string{strings.Repeat("x", 300)}, true, 401, "invalid_client"},
		{"wrong secret", good, []string{"not-the-secret"}, true, 401, "invalid_client"},
		{"another bot's id", miQuery(BotFrameworkScope, "00000000-0000-4000-8000-000000000000"), []string{miSecret}, true, 401, "invalid_client"},
		{"insecure bot", miQuery(BotFrameworkScope, "insecure-bot"), []string{"anything"}, true, 401, "invalid_client"},
	}
	for _, c := range cases {
		w := f.mi(c.query, c.header, from, c.overTLS)
		var body map[string]string
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != c.code || body["error"] != c.errCode || body["error_description"] == "" {
			t.Errorf("%s: %d %s; want %d %s", c.name, w.Code, w.Body, c.code, c.errCode)
		}
		if strings.Contains(w.Body.String(), "access_token") {
			t.Errorf("%s: a token was issued", c.name)
		}
	}
	if n := f.failures.Count("token_service", "wrong_secret"); n != 1 {
		t.Errorf("wrong secrets counted: %v, want 1", n)
	}
	if n := f.failures.Count("token_service", "unknown_client") + f.failures.Count("token_service", "insecure_bot"); n != 2 {
		t.Errorf("unknown and insecure clients counted: %v, want 2", n)
	}
	l := f.logs.String()
	if strings.Contains(l, miSecret) || strings.Contains(l, "not-the-secret") {
		t.Fatal("a secret reached the logs")
	}
	for _, want := range []string{`"via":"managed_identity"`, `"reason":"wrong_secret"`, from, miAppID} {
		if !strings.Contains(l, want) {
			t.Errorf("failure log lacks %s:\n%s", want, l)
		}
	}
}

// Guesses at the token endpoint and at the managed identity endpoint share
// one budget per address: switching endpoints does not buy more guesses.
// The owner's secret still gets its token.
func TestManagedIdentitySharesTheGuessBudget(t *testing.T) {
	f := newAgentsFixture(t)
	const attacker = "198.51.100.1"
	for i := 0; i < 10; i++ {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {miAppID}, "client_secret": {"guess-" + strconv.Itoa(i)}, "scope": {miPublic + "/.default"}}
		r := httptest.NewRequest("POST", STSTokenPath, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = attacker + ":1"
		w := httptest.NewRecorder()
		f.mux.ServeHTTP(w, r)
		if w.Code != 401 {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	w := f.mi(miQuery(BotFrameworkScope, miAppID), []string{"guess-at-mi"}, attacker, true)
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("a guess at the managed identity endpoint after 10 at the token endpoint: %d %s, want 429", w.Code, w.Body)
	}
	if w := f.mi(miQuery(BotFrameworkScope, miAppID), []string{miSecret}, attacker, true); w.Code != 200 {
		t.Fatalf("the owner's secret from the throttled address: %d %s", w.Code, w.Body)
	}
}

// The token endpoint accepts the Agents SDK's scope as an alias of
// Parley's own and issues Parley's token; other scopes stay refused.
func TestTokenEndpointBotFrameworkScopeAlias(t *testing.T) {
	f := newAgentsFixture(t)
	ask := func(scope string) *httptest.ResponseRecorder {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {miAppID}, "client_secret": {miSecret}, "scope": {scope}}
		r := httptest.NewRequest("POST", STSTokenPath, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		f.mux.ServeHTTP(w, r)
		return w
	}
	for _, scope := range []string{miPublic + "/.default", BotFrameworkScope + "/.default", BotFrameworkScope} {
		w := ask(scope)
		var body struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int    `json:"expires_in"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != 200 || body.ExpiresIn != 3600 {
			t.Fatalf("scope %s: %d %s", scope, w.Code, w.Body)
		}
		if id, err := f.a.AuthenticateBot(context.Background(), "Bearer "+body.AccessToken); err != nil || id != miAppID {
			t.Fatalf("scope %s: token refused: %v", scope, err)
		}
	}
	for _, scope := range []string{"https://api.botframework.com/.DEFAULT", "https://api.botframework.us/.default", "https://graph.microsoft.com/.default", miPublic, ""} {
		if w := ask(scope); w.Code != 400 || !strings.Contains(w.Body.String(), "invalid_scope") {
			t.Errorf("scope %q: %d %s, want 400 invalid_scope", scope, w.Code, w.Body)
		}
	}
}

// The Agents SDK's key path publishes exactly the channel keys: not the
// token service's, which stay at their own path; a channel token is
// still refused as a bot token.
func TestAgentsChannelKeysAreTheChannelKeys(t *testing.T) {
	f := newAgentsFixture(t)
	get := func(path string) map[string]bool {
		r := httptest.NewRequest("GET", path, nil)
		w := httptest.NewRecorder()
		f.mux.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("%s: %d", path, w.Code)
		}
		var body struct {
			Keys []JWK `json:"keys"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		for _, k := range body.Keys {
			if path != STSKeysPath && len(k.Endorsements) == 0 {
				t.Errorf("%s: key %s without endorsements", path, k.Kid)
			}
		}
		return kids(body.Keys)
	}
	agents, channel, sts := get(AgentsChannelKeysPath), get(ChannelKeysPath), get(STSKeysPath)
	if len(agents) == 0 || len(agents) != len(channel) {
		t.Fatalf("agents path %v, channel path %v", agents, channel)
	}
	for k := range agents {
		if !channel[k] || sts[k] {
			t.Fatalf("kid %s: on the channel path %v, on the token service path %v", k, channel[k], sts[k])
		}
	}
	h, err := f.a.AuthorizationFor(context.Background(), store.Bot{ID: miAppID}, miPublic+"/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.a.AuthenticateBot(context.Background(), h); err == nil {
		t.Fatal("a channel token was accepted as a bot token")
	}
}
