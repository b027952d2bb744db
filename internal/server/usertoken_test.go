package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/directline"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/usertoken"
)

const clientSecretCanary = "CLIENT-SECRET-CANARY-5e0c1b"

// oauthHarness is a harness with an authenticated bot that records what
// it receives, its site, a real OpenID provider (fosite on loopback TLS)
// and an OIDC connection "idp" of the bot to it.
type oauthHarness struct {
	*harness
	bot    *recBot
	secret string // the site's
	idp    *testIdP
	token  string // the bot's access token
}

func newOAuthHarness(t *testing.T, accessTTL time.Duration) *oauthHarness {
	h := newHarness(t)
	b := newRecBot(t, h)
	_, secret, _ := createSite(t, h.st, b.appID, true, []string{trustedOrigin})
	idp := newTestIdP(t, h.base+"/api/oauth/callback", clientSecretCanary, accessTTL)
	h.srv.UserTokens().SetHTTPClient(idp.srv.Client())
	oh := &oauthHarness{harness: h, bot: b, secret: secret, idp: idp, token: b.accessToken()}
	oh.connection(b.appID, "idp")
	return oh
}

// recBot is a registered bot (with a client secret) that records every
// activity Parley delivers (the channel token is checked elsewhere).
type recBot struct {
	t                  *testing.T
	h                  *harness
	appID, secret, url string

	mu   sync.Mutex
	acts []map[string]any
}

func newRecBot(t *testing.T, h *harness) *recBot {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &recBot{t: t, h: h, url: "http://" + ln.Addr().String() + "/api/messages"}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var act map[string]any
		_ = json.NewDecoder(r.Body).Decode(&act)
		b.mu.Lock()
		b.acts = append(b.acts, act)
		b.mu.Unlock()
		w.WriteHeader(200)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	b.secret, _ = identity.NewSecret()
	b.appID = fmt.Sprintf("1111%04d-aaaa-4bbb-8ccc-%012d", len(b.url)%10000, time.Now().UnixNano()%1e12)
	if err := h.st.CreateBot(context.Background(), store.Bot{ID: b.appID, Name: "OAuth bot", Endpoint: b.url, CreatedAt: time.Now(),
		SecretHashes: [2][]byte{botauth.HashClientSecret(b.secret), nil}}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *recBot) accessToken() string {
	tok, st, raw := tokenRequest(b.t, b.h, url.Values{"client_id": {b.appID}, "client_secret": {b.secret}}, "")
	if st != 200 {
		b.t.Fatalf("token endpoint: %d %s", st, raw)
	}
	return tok
}

func (b *recBot) call(method, u, token string, body any) (int, string) {
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, u, bytes.NewReader(j))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

// waitFor waits for an activity that pred accepts.
func (b *recBot) waitFor(pred func(map[string]any) bool) map[string]any {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		for _, a := range b.acts {
			if pred(a) {
				b.mu.Unlock()
				return a
			}
		}
		b.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatal("the bot never received the activity")
	return nil
}

// connection registers an OIDC connection of botID to the test IdP, its
// client secret sealed as the CLI seals it.
func (oh *oauthHarness) connection(botID, name string) {
	t := oh.t
	ctx := context.Background()
	sealed, err := usertoken.SealClientSecret(ctx, oh.srv.Envelope(), botID, name, clientSecretCanary)
	if err != nil {
		t.Fatal(err)
	}
	c := store.OAuthConnection{BotID: botID, Name: name, Kind: store.OAuthKindOIDC, Issuer: oh.idp.srv.URL, ClientID: oh.idp.clientID,
		SealedSecret: sealed, Scopes: []string{"openid", "offline"}, MaxLogin: time.Hour, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := usertoken.ValidateConnection(c); err != nil {
		t.Fatal(err)
	}
	if err := oh.st.CreateOAuthConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
}

// state is what botbuilder's UserTokenClient sends.
func state(appID, conn, conv, user, serviceURL string) string {
	s := map[string]any{"connectionName": conn, "msAppId": appID, "conversation": map[string]any{
		"activityId": "x", "bot": map[string]string{"id": appID}, "channelId": "directline", "conversation": map[string]string{"id": conv},
		"serviceUrl": serviceURL, "user": map[string]string{"id": user}, "locale": "en-US"}}
	b, _ := json.Marshal(s)
	return base64.StdEncoding.EncodeToString(b)
}

// api calls the token service as the bot with token.
func (oh *oauthHarness) api(method, path, token string, q url.Values) (int, string, http.Header) {
	oh.t.Helper()
	req, _ := http.NewRequest(method, oh.base+path+"?"+q.Encode(), nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		oh.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw), res.Header
}

func (oh *oauthHarness) getToken(token, user, conn, code string) (int, string) {
	q := url.Values{"userId": {user}, "connectionName": {conn}, "channelId": {"directline"}}
	if code != "" {
		q.Set("code", code)
	}
	st, body, _ := oh.api("GET", "/api/usertoken/GetToken", token, q)
	return st, body
}

func (oh *oauthHarness) signInLink(token, st string) string {
	oh.t.Helper()
	code, body, _ := oh.api("GET", "/api/botsignin/GetSignInResource", token, url.Values{"state": {st}})
	if code != 200 {
		oh.t.Fatalf("GetSignInResource: %d %s", code, body)
	}
	var r struct {
		SignInLink string `json:"signInLink"`
	}
	_ = json.Unmarshal([]byte(body), &r)
	if !strings.HasPrefix(r.SignInLink, oh.base+"/api/oauth/signin?signin=") {
		oh.t.Fatalf("signInLink = %q", r.SignInLink)
	}
	return r.SignInLink
}

// browser is a user's browser: it trusts the IdP's certificate, keeps
// cookies and records the callback URL instead of following it.
type browser struct {
	t      *testing.T
	c      *http.Client
	stopAt string
}

func (oh *oauthHarness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := oh.idp.srv.Client()
	c.Jar = jar
	b := &browser{t: oh.t, c: c, stopAt: oh.base + "/api/oauth/callback"}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), b.stopAt) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return b
}

// login opens the sign-in link, signs in at the IdP and returns the
// callback URL the IdP redirects to (not yet opened).
func (b *browser) login(link, user, password string) string {
	b.t.Helper()
	res, err := b.c.Get(link)
	if err != nil {
		b.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasSuffix(res.Request.URL.Path, "/auth") {
		b.t.Fatalf("sign-in link led to %d %s", res.StatusCode, res.Request.URL)
	}
	authURL := res.Request.URL
	if q := authURL.Query(); q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" {
		b.t.Fatalf("authorization request without PKCE S256 or state: %s", authURL)
	}
	res, err = b.c.PostForm(authURL.String(), url.Values{"username": {user}, "password": {password}})
	if err != nil {
		b.t.Fatal(err)
	}
	res.Body.Close()
	loc := res.Header.Get("Location")
	if res.StatusCode/100 != 3 || !strings.HasPrefix(loc, b.stopAt) {
		b.t.Fatalf("IdP answered %d, Location %q", res.StatusCode, loc)
	}
	return loc
}

var magicCodeRE = regexp.MustCompile(`id="magic-code"[^>]*>(\d{6})<`)

// open opens u (a callback URL) and returns the status and the magic
// code on the page, if any.
func (b *browser) open(u string) (int, string) {
	b.t.Helper()
	res, err := b.c.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		b.t.Errorf("callback page Cache-Control %q", cc)
	}
	if m := magicCodeRE.FindSubmatch(raw); m != nil {
		return res.StatusCode, string(m[1])
	}
	return res.StatusCode, ""
}

func wrongCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

// TestUserSignInWithMagicCode: the OAuthPrompt's calls in order against a
// real OpenID provider: GetToken 404 with an empty body, the sign-in
// resource, sign-in at the provider with PKCE, the magic code page, GetToken
// with the code, then the token without it, its status, sign-out.
func TestUserSignInWithMagicCode(t *testing.T) {
	oh := newOAuthHarness(t, time.Hour)
	_, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	appID := oh.bot.appID

	st, body := oh.getToken(oh.token, "dl_user1", "idp", "")
	if st != 404 || body != "" {
		t.Fatalf("GetToken before sign-in: %d %q, want 404 with an empty body", st, body)
	}
	link := oh.signInLink(oh.token, state(appID, "idp", conv, "dl_user1", oh.base+"/"))
	if code, text, h := oh.api("GET", "/api/botsignin/GetSignInUrl", oh.token, url.Values{"state": {state(appID, "idp", conv, "dl_user1", oh.base+"/")}}); code != 200 ||
		!strings.HasPrefix(text, oh.base+"/api/oauth/signin?signin=") || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("GetSignInUrl: %d %q %q", code, text, h.Get("Content-Type"))
	}

	br := oh.browser()
	cb := br.login(link, "alice", "alice-password-1")
	authCode, _ := url.ParseQuery(strings.SplitN(cb, "?", 2)[1])
	status, code := br.open(cb)
	if status != 200 || code == "" {
		t.Fatalf("callback: %d, code %q", status, code)
	}
	// The authorization code and the state are single use.
	if st, c := br.open(cb); st != 400 || c != "" {
		t.Fatalf("replayed callback: %d, code %q; want 400 and no code", st, c)
	}
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", wrongCode(code)); st != 404 || body != "" {
		t.Fatalf("GetToken with a wrong code: %d %q", st, body)
	}
	st, body = oh.getToken(oh.token, "dl_user1", "idp", code)
	if st != 200 {
		t.Fatalf("GetToken with the code: %d %s", st, body)
	}
	var tr usertoken.TokenResponse
	if err := json.Unmarshal([]byte(body), &tr); err != nil || tr.ConnectionName != "idp" || tr.ChannelID != "directline" || tr.Token == "" || tr.Expiration == "" {
		t.Fatalf("TokenResponse = %s (%v)", body, err)
	}
	if active, sub := oh.idp.introspect(t, tr.Token); !active || sub != "alice" {
		t.Fatalf("the token is not alice's active access token at the IdP: active=%v sub=%q", active, sub)
	}
	// The code was single use; the token is stored.
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", ""); st != 200 || !strings.Contains(body, tr.Token) {
		t.Fatalf("GetToken after sign-in: %d %s", st, body)
	}
	var status2 []usertoken.TokenStatus
	_, raw, _ := oh.api("GET", "/api/usertoken/GetTokenStatus", oh.token, url.Values{"userId": {"dl_user1"}, "channelId": {"directline"}})
	if err := json.Unmarshal([]byte(raw), &status2); err != nil || len(status2) != 1 || !status2[0].HasToken || status2[0].ConnectionName != "idp" {
		t.Fatalf("GetTokenStatus = %s", raw)
	}
	if st, body, _ := oh.api("GET", "/api/usertoken/GetTokenOrSignInResource", oh.token, url.Values{"userId": {"dl_user1"}, "connectionName": {"idp"},
		"channelId": {"directline"}, "state": {state(appID, "idp", conv, "dl_user1", oh.base+"/")}}); st != 200 || !strings.Contains(body, `"tokenResponse"`) {
		t.Fatalf("GetTokenOrSignInResource: %d %s", st, body)
	}
	if st, body, _ := oh.api("POST", "/api/usertoken/exchange", oh.token, url.Values{"userId": {"dl_user1"}, "connectionName": {"idp"}, "channelId": {"directline"}}); st != 400 ||
		!strings.Contains(body, `"code":"ConsentRequired"`) {
		t.Fatalf("exchange: %d %s", st, body)
	}
	// The stored token is sealed: not in the clear in the data directory.
	if found := scanDataDir(t, oh.cfg.DataDir, map[string]string{"access token": tr.Token}); len(found) > 0 {
		t.Fatalf("in the clear on disk: %v", found)
	}
	if st, body, _ := oh.api("DELETE", "/api/usertoken/SignOut", oh.token, url.Values{"userId": {"dl_user1"}, "connectionName": {"idp"}, "channelId": {"directline"}}); st != 200 {
		t.Fatalf("SignOut: %d %s", st, body)
	}
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", ""); st != 404 || body != "" {
		t.Fatalf("GetToken after sign-out: %d %q", st, body)
	}
	if st, body, _ := oh.api("GET", "/api/usertoken/GetTokenOrSignInResource", oh.token, url.Values{"userId": {"dl_user1"}, "connectionName": {"idp"},
		"channelId": {"directline"}, "state": {state(appID, "idp", conv, "dl_user1", oh.base+"/")}}); st != 200 || !strings.Contains(body, `"signInResource"`) {
		t.Fatalf("GetTokenOrSignInResource after sign-out: %d %s", st, body)
	}

	// Nothing secret in the logs, nor in the clear on disk.
	logs := oh.logs.String()
	for name, v := range map[string]string{"access token": tr.Token, "client secret": clientSecretCanary, "magic code": code, "authorization code": authCode.Get("code")} {
		if v != "" && strings.Contains(logs, v) {
			t.Errorf("the logs hold the %s", name)
		}
	}
	if found := scanDataDir(t, oh.cfg.DataDir, map[string]string{"client secret": clientSecretCanary}); len(found) > 0 {
		t.Errorf("in the clear on disk: %v", found)
	}
}

// TestUserTokensStayWithTheirBotAndUser: the spoofing paths of seed 004.
func TestUserTokensStayWithTheirBotAndUser(t *testing.T) {
	oh := newOAuthHarness(t, time.Hour)
	_, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	_, otherConv := startWith(t, oh.harness, oh.secret, "dl_user2")
	appID := oh.bot.appID
	link := oh.signInLink(oh.token, state(appID, "idp", conv, "dl_user1", oh.base+"/"))
	br := oh.browser()
	_, code := br.open(br.login(link, "alice", "alice-password-1"))
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", code); st != 200 {
		t.Fatalf("sign-in: %d %s", st, body)
	}

	// Bot B, with a connection of the same name and a conversation with a
	// user of the same id, reads nothing of bot A's.
	botB := newAuthBot(t, oh.harness)
	_, secretB, _ := createSite(t, oh.st, botB.appID, true, []string{trustedOrigin})
	tokenB := botB.accessToken()
	if st, body := oh.getToken(tokenB, "dl_user1", "idp", ""); st != 403 {
		t.Fatalf("bot B reads a user of bot A before having one: %d %s", st, body)
	}
	oh.connection(botB.appID, "idp")
	startWith(t, oh.harness, secretB, "dl_user1")
	if st, body := oh.getToken(tokenB, "dl_user1", "idp", ""); st != 404 || body != "" {
		t.Fatalf("bot B reads bot A's user token: %d %s", st, body)
	}
	// Bot B cannot start a sign-in in bot A's conversation.
	if st, body, _ := oh.api("GET", "/api/botsignin/GetSignInResource", tokenB, url.Values{"state": {state(botB.appID, "idp", conv, "dl_user1", oh.base+"/")}}); st != 400 {
		t.Fatalf("bot B signs in in bot A's conversation: %d %s", st, body)
	}
	// A user id without a conversation of the bot is refused.
	if st, body := oh.getToken(oh.token, "dl_nobody", "idp", ""); st != 403 {
		t.Fatalf("GetToken for a stranger: %d %s", st, body)
	}
	// dl_user2 has no token; their conversation cannot sign in as dl_user1.
	if st, body := oh.getToken(oh.token, "dl_user2", "idp", ""); st != 404 || body != "" {
		t.Fatalf("GetToken of another user: %d %s", st, body)
	}
	for name, s := range map[string]string{
		"another user in the state":         state(appID, "idp", otherConv, "dl_user1", oh.base+"/"),
		"another app id":                    state(botB.appID, "idp", conv, "dl_user1", oh.base+"/"),
		"another service URL":               state(appID, "idp", conv, "dl_user1", "https://evil.example/"),
		"unknown connection":                state(appID, "nope", conv, "dl_user1", oh.base+"/"),
		"not base64":                        "%%%",
		"duplicate key":                     base64.StdEncoding.EncodeToString([]byte(`{"msAppId":"` + appID + `","msAppId":"x"}`)),
		"unknown conversation":              state(appID, "idp", "nope", "dl_user1", oh.base+"/"),
		"case variant of the connection":    state(appID, "IDP", conv, "dl_user1", oh.base+"/"),
		"case variant of the user":          state(appID, "idp", conv, "DL_USER1", oh.base+"/"),
		"the other user's own conversation": state(appID, "idp", otherConv, "dl_user1", oh.base+"/"),
	} {
		if st, body, _ := oh.api("GET", "/api/botsignin/GetSignInResource", oh.token, url.Values{"state": {s}}); st != 400 || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: GetSignInResource %d %s, want 400", name, st, body)
		}
	}
	// No bearer, or a forged one.
	if st, _ := oh.getToken("", "dl_user1", "idp", ""); st != 401 {
		t.Fatalf("GetToken without a token: %d", st)
	}
	if st, _ := oh.getToken(oh.token+"x", "dl_user1", "idp", ""); st != 401 {
		t.Fatalf("GetToken with a forged token: %d", st)
	}
}

// TestSignInRefusesTamperedStateReplayAndPKCEMismatch: the provider's
// callback is accepted once, with Parley's own state, and the code only
// with the verifier of its own flow.
func TestSignInRefusesTamperedStateReplayAndPKCEMismatch(t *testing.T) {
	oh := newOAuthHarness(t, time.Hour)
	_, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	st := state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/")
	link := oh.signInLink(oh.token, st)
	br := oh.browser()
	cbA := br.login(link, "alice", "alice-password-1")
	cbB := br.login(link, "alice", "alice-password-1")
	qa, _ := url.ParseQuery(strings.SplitN(cbA, "?", 2)[1])
	qb, _ := url.ParseQuery(strings.SplitN(cbB, "?", 2)[1])
	cb := oh.base + "/api/oauth/callback?"

	// A tampered state.
	if s, c := br.open(cb + url.Values{"code": {qa.Get("code")}, "state": {qa.Get("state") + "x"}}.Encode()); s != 400 || c != "" {
		t.Fatalf("tampered state: %d %q", s, c)
	}
	// Flow A's code with flow B's state (so B's PKCE verifier): the IdP
	// refuses, and B's state is spent.
	if s, c := br.open(cb + url.Values{"code": {qa.Get("code")}, "state": {qb.Get("state")}}.Encode()); s != 400 || c != "" {
		t.Fatalf("PKCE mismatch: %d %q", s, c)
	}
	if s, c := br.open(cbB); s != 400 || c != "" {
		t.Fatalf("spent state reused: %d %q", s, c)
	}
	// A flow completed as the IdP sent it works once; its callback
	// replayed does not, nor its authorization code under a fresh state.
	cbC := br.login(link, "alice", "alice-password-1")
	if s, c := br.open(cbC); s != 200 || c == "" {
		t.Fatalf("flow C: %d %q", s, c)
	}
	if s, c := br.open(cbC); s != 400 || c != "" {
		t.Fatalf("flow C replayed: %d %q", s, c)
	}
	qc, _ := url.ParseQuery(strings.SplitN(cbC, "?", 2)[1])
	cbE := br.login(link, "alice", "alice-password-1")
	qe, _ := url.ParseQuery(strings.SplitN(cbE, "?", 2)[1])
	if s, c := br.open(cb + url.Values{"code": {qc.Get("code")}, "state": {qe.Get("state")}}.Encode()); s != 400 || c != "" {
		t.Fatalf("replayed authorization code: %d %q", s, c)
	}
	// The provider's error.
	cbD := br.login(link, "alice", "alice-password-1")
	qd, _ := url.ParseQuery(strings.SplitN(cbD, "?", 2)[1])
	if s, c := br.open(cb + url.Values{"error": {"access_denied"}, "state": {qd.Get("state")}}.Encode()); s != 400 || c != "" {
		t.Fatalf("provider error: %d %q", s, c)
	}
	// An unknown or expired sign-in link.
	if s, _ := br.open(oh.base + "/api/oauth/signin?signin=nope"); s != 400 {
		t.Fatalf("unknown sign-in link: %d", s)
	}
}

// TestMagicCodeBruteForceLockedOut: after five wrong codes even the
// right one is refused, and the pending sign-in is gone.
func TestMagicCodeBruteForceLockedOut(t *testing.T) {
	oh := newOAuthHarness(t, time.Hour)
	_, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	link := oh.signInLink(oh.token, state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/"))
	br := oh.browser()
	_, code := br.open(br.login(link, "alice", "alice-password-1"))
	if code == "" {
		t.Fatal("no magic code")
	}
	n := 0
	for guess := 0; n < usertoken.DefaultLimits.MaxCodeAttempts; guess++ {
		g := strings.Repeat("0", 6-len(itoa(guess))) + itoa(guess)
		if g == code {
			continue
		}
		n++
		if st, body := oh.getToken(oh.token, "dl_user1", "idp", g); st != 404 || body != "" {
			t.Fatalf("wrong code %s: %d %q", g, st, body)
		}
	}
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", code); st != 404 {
		t.Fatalf("the right code after the lockout: %d %s", st, body)
	}
	// A new sign-in is locked out too, until the lockout ends.
	_, code2 := br.open(br.login(link, "alice", "alice-password-1"))
	if st, _ := oh.getToken(oh.token, "dl_user1", "idp", code2); st != 404 {
		t.Fatalf("a fresh code during the lockout: %d", st)
	}
	if !strings.Contains(oh.logs.String(), "too many wrong codes") {
		t.Error("the lockout is not logged")
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestUserTokenExpiresAtMaxLogin: past the connection's max login
// duration the token is gone (and deleted), whatever the provider says.
func TestUserTokenExpiresAtMaxLogin(t *testing.T) {
	oh := newOAuthHarness(t, time.Hour)
	_, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	link := oh.signInLink(oh.token, state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/"))
	br := oh.browser()
	_, code := br.open(br.login(link, "alice", "alice-password-1"))
	st, body := oh.getToken(oh.token, "dl_user1", "idp", code)
	if st != 200 {
		t.Fatalf("sign-in: %d %s", st, body)
	}
	var tr usertoken.TokenResponse
	_ = json.Unmarshal([]byte(body), &tr)
	exp, err := time.Parse(time.RFC3339, tr.Expiration)
	if err != nil || exp.After(time.Now().Add(time.Hour+time.Minute)) {
		t.Fatalf("expiration %q beyond the max login", tr.Expiration)
	}
	// Time passes: the login began more than an hour ago.
	ctx := context.Background()
	ut, err := oh.st.GetUserToken(ctx, oh.bot.appID, "dl_user1", "idp")
	if err != nil {
		t.Fatal(err)
	}
	ut.SignedInAt, ut.ExpiresAt = time.Now().Add(-61*time.Minute), time.Now().Add(-time.Minute)
	if err := oh.st.PutUserToken(ctx, ut); err != nil {
		t.Fatal(err)
	}
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", ""); st != 404 || body != "" {
		t.Fatalf("GetToken past the max login: %d %q", st, body)
	}
	if _, err := oh.st.GetUserToken(ctx, oh.bot.appID, "dl_user1", "idp"); err == nil {
		t.Fatal("the expired token is still stored")
	}
}

// TestUserTokenRefreshedWithinMaxLogin: an access token that expires is
// refreshed with the provider's refresh token.
func TestUserTokenRefreshedWithinMaxLogin(t *testing.T) {
	oh := newOAuthHarness(t, 20*time.Second) // inside the 30 s refresh margin: every read refreshes
	_, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	link := oh.signInLink(oh.token, state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/"))
	br := oh.browser()
	_, code := br.open(br.login(link, "alice", "alice-password-1"))
	_, body1 := oh.getToken(oh.token, "dl_user1", "idp", code)
	st, body2 := oh.getToken(oh.token, "dl_user1", "idp", "")
	var t1, t2 usertoken.TokenResponse
	_ = json.Unmarshal([]byte(body1), &t1)
	_ = json.Unmarshal([]byte(body2), &t2)
	if st != 200 || t2.Token == "" || t2.Token == t1.Token {
		t.Fatalf("no refresh: %d, same token %v", st, t2.Token == t1.Token)
	}
	if active, sub := oh.idp.introspect(t, t2.Token); !active || sub != "alice" {
		t.Fatalf("refreshed token not active at the IdP: %v %q", active, sub)
	}
}

// TestOAuthCardGetsParleysSignInLink: the signin button of an OAuthCard
// a bot sends is Parley's own link, never the bot's.
func TestOAuthCardGetsParleysSignInLink(t *testing.T) {
	oh := newOAuthHarness(t, time.Hour)
	tok, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	card := map[string]any{"type": "message", "attachments": []any{map[string]any{"contentType": "application/vnd.microsoft.card.oauth",
		"content": map[string]any{"text": "Please sign in", "connectionName": "idp",
			"buttons": []any{map[string]any{"type": "openUrl", "title": "Sign in", "value": "https://evil.example/phish"}}}}}}
	st, body := oh.bot.call("POST", oh.base+"/v3/conversations/"+conv+"/activities", oh.token, card)
	if st != 200 {
		t.Fatalf("bot send: %d %s", st, body)
	}
	acts, _ := oh.history(tok, conv, "")
	raw, _ := json.Marshal(acts[len(acts)-1]["attachments"])
	if strings.Contains(string(raw), "evil.example") {
		t.Fatalf("the bot's link was kept: %s", raw)
	}
	var atts []struct {
		Content struct {
			Buttons []struct{ Type, Title, Value string }
		}
	}
	_ = json.Unmarshal(raw, &atts)
	if len(atts) != 1 || len(atts[0].Content.Buttons) != 1 || atts[0].Content.Buttons[0].Type != "signin" ||
		!strings.HasPrefix(atts[0].Content.Buttons[0].Value, oh.base+"/api/oauth/signin?signin=") {
		t.Fatalf("card buttons: %s", raw)
	}
	// Web Chat appends &code_challenge=<session id> percent-encoded; the
	// link still leads to the provider and the code works.
	br := oh.browser()
	_, code := br.open(br.login(atts[0].Content.Buttons[0].Value+url.QueryEscape("&code_challenge=abc"), "alice", "alice-password-1"))
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", code); st != 200 {
		t.Fatalf("sign-in through the card: %d %s", st, body)
	}
}

// sessionID asks getsessionid, as Web Chat does (credentialed, from a
// trusted origin), in this browser: the cookie lands in its jar.
func (b *browser) sessionID(h *harness, dlToken string) string {
	b.t.Helper()
	req, _ := http.NewRequest("GET", h.dl+"/session/getsessionid", nil)
	req.Header.Set("Authorization", "Bearer "+dlToken)
	req.Header.Set("Origin", trustedOrigin)
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	var r struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil || res.StatusCode != 200 || r.SessionID == "" {
		b.t.Fatalf("getsessionid: %d %v", res.StatusCode, err)
	}
	return r.SessionID
}

// openPage opens u and returns the status and the page.
func (b *browser) openPage(u string) (int, string) {
	b.t.Helper()
	res, err := b.c.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

// TestSignInWithoutMagicCodeInTheSameBrowser: the browser that holds the
// Direct Line session Web Chat put in the link completes without a code,
// and the bot gets a tokens/response event; another browser, or another
// conversation's session, falls back to the magic code, and a code does
// not work for another user.
func TestSignInWithoutMagicCodeInTheSameBrowser(t *testing.T) {
	if usertoken.SessionCookie != directline.SessionCookie {
		t.Fatalf("session cookie names differ: %q, %q", usertoken.SessionCookie, directline.SessionCookie)
	}
	oh := newOAuthHarness(t, time.Hour)
	dlTok, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	dlTok2, _ := startWith(t, oh.harness, oh.secret, "dl_user2")
	link := oh.signInLink(oh.token, state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/"))

	br := oh.browser()
	sid := br.sessionID(oh.harness, dlTok)
	// Web Chat: value + encodeURIComponent('&code_challenge=' + sessionId).
	withSession := link + url.QueryEscape("&code_challenge="+sid)
	st, page := br.openPage(br.login(withSession, "alice", "alice-password-1"))
	if st != 200 || !strings.Contains(page, "You are signed in") || magicCodeRE.MatchString(page) {
		t.Fatalf("same browser: %d %s", st, page)
	}
	ev := oh.bot.waitFor(func(a map[string]any) bool { return a["type"] == "event" && a["name"] == "tokens/response" })
	val, _ := ev["value"].(map[string]any)
	from, _ := ev["from"].(map[string]any)
	convObj, _ := ev["conversation"].(map[string]any)
	if val["connectionName"] != "idp" || val["token"] == "" || from["id"] != "dl_user1" || convObj["id"] != conv {
		t.Fatalf("tokens/response event: %v", ev)
	}
	if active, sub := oh.idp.introspect(t, val["token"].(string)); !active || sub != "alice" {
		t.Fatal("the event's token is not alice's at the IdP")
	}
	if st, body := oh.getToken(oh.token, "dl_user1", "idp", ""); st != 200 || !strings.Contains(body, val["token"].(string)) {
		t.Fatalf("GetToken after the silent sign-in: %d %s", st, body)
	}

	// Another browser (another cookie jar) with a link naming the same
	// session: magic code. (The first link was retired by the sign-in.)
	link = oh.signInLink(oh.token, state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/"))
	withSession = link + url.QueryEscape("&code_challenge="+sid)
	other := oh.browser()
	if st, code := other.open(other.login(withSession, "alice", "alice-password-1")); st != 200 || code == "" {
		t.Fatalf("another browser: %d, code %q; want the magic code", st, code)
	}
	// A browser with its own session, of another conversation and user,
	// putting its session id in this conversation's link: magic code.
	third := oh.browser()
	sid2 := third.sessionID(oh.harness, dlTok2)
	st, code := third.open(third.login(link+url.QueryEscape("&code_challenge="+sid2), "alice", "alice-password-1"))
	if st != 200 || code == "" {
		t.Fatalf("another conversation's session: %d, code %q; want the magic code", st, code)
	}
	// That code does not sign in another user.
	if st, body := oh.getToken(oh.token, "dl_user2", "idp", code); st != 404 || body != "" {
		t.Fatalf("a code for dl_user1 redeemed for dl_user2: %d %s", st, body)
	}
	if st, _ := oh.getToken(oh.token, "dl_user1", "idp", code); st != 200 {
		t.Fatalf("the code for dl_user1: %d", st)
	}
	if logs := oh.logs.String(); strings.Contains(logs, val["token"].(string)) || strings.Contains(logs, code) {
		t.Error("the logs hold a token or a code")
	}
}

// TestSignInLinkCannotFillTheFlowTable: a link holds at most five flows
// in progress; a sixth drops the oldest.
func TestSignInLinkCannotFillTheFlowTable(t *testing.T) {
	oh := newOAuthHarness(t, time.Hour)
	_, conv := startWith(t, oh.harness, oh.secret, "dl_user1")
	link := oh.signInLink(oh.token, state(oh.bot.appID, "idp", conv, "dl_user1", oh.base+"/"))
	br := oh.browser()
	var cbs []string
	for range 6 {
		cbs = append(cbs, br.login(link, "alice", "alice-password-1"))
	}
	if st, c := br.open(cbs[0]); st != 400 || c != "" {
		t.Fatalf("the oldest of six flows: %d %q, want it dropped", st, c)
	}
	if st, c := br.open(cbs[5]); st != 200 || c == "" {
		t.Fatalf("the newest flow: %d %q", st, c)
	}
}
