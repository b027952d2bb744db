package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// authBot is a bot that checks Parley's channel token the way the SDK does
// (OpenID metadata → JWKS → kid, RS256, iss, aud, serviceurl, lifetime,
// endorsements) and answers "echo:" messages with a token from Parley's
// token service.
type authBot struct {
	t      *testing.T
	h      *harness
	url    string
	appID  string
	secret string

	mu      sync.Mutex
	claims  []map[string]any
	kids    []string
	refused []string
}

func newAuthBot(t *testing.T, h *harness) *authBot {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &authBot{t: t, h: h, url: "http://" + ln.Addr().String() + "/api/messages"}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	b.secret, _ = identity.NewSecret()
	b.appID = fmt.Sprintf("0000%04d-aaaa-4bbb-8ccc-%012d", len(b.url)%10000, time.Now().UnixNano()%1e12)
	if err := h.st.CreateBot(context.Background(), store.Bot{ID: b.appID, Name: "Secure bot " + b.appID, Endpoint: b.url, CreatedAt: time.Now(),
		SecretHashes: [2][]byte{botauth.HashClientSecret(b.secret), nil}}); err != nil {
		t.Fatal(err)
	}
	return b
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// jwks fetches the channel keys as a bot does: metadata, then jwks_uri.
func channelJWKS(t *testing.T, base string) []map[string]any {
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, base+"/v1/.well-known/openidconfiguration", &meta)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, meta.JWKSURI, &set)
	return set.Keys
}

func (b *authBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var act map[string]any
	_ = json.Unmarshal(body, &act)
	claims, kid, err := b.validate(r.Header.Get("Authorization"), act)
	b.mu.Lock()
	if err != nil {
		b.refused = append(b.refused, err.Error())
		b.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	b.claims = append(b.claims, claims)
	b.kids = append(b.kids, kid)
	b.mu.Unlock()
	if text, _ := act["text"].(string); act["type"] == "message" && strings.HasPrefix(text, "echo:") {
		conv := act["conversation"].(map[string]any)["id"].(string)
		reply := map[string]any{"type": "message", "text": "secure bot heard " + strings.TrimPrefix(text, "echo:"), "from": act["recipient"]}
		u := act["serviceUrl"].(string) + "v3/conversations/" + url.PathEscape(conv) + "/activities/" + url.PathEscape(act["id"].(string))
		if st, raw := b.call("POST", u, b.accessToken(), reply); st != 200 {
			b.t.Errorf("secure bot reply: %d %s", st, raw)
		}
	}
	w.WriteHeader(200)
}

func (b *authBot) validate(authz string, act map[string]any) (map[string]any, string, error) {
	tok, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok {
		return nil, "", fmt.Errorf("no bearer token")
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, "", err
	}
	kid := parsed.Headers[0].KeyID
	var key map[string]any
	for _, k := range channelJWKS(b.t, b.h.base) {
		if k["kid"] == kid {
			key = k
		}
	}
	if key == nil {
		return nil, kid, fmt.Errorf("kid %s not published", kid)
	}
	raw, _ := json.Marshal(key)
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, kid, err
	}
	var claims map[string]any
	if err := parsed.Claims(jwk.Key, &claims); err != nil {
		return nil, kid, err
	}
	var std jwt.Claims
	_ = parsed.Claims(jwk.Key, &std)
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: b.h.base, AnyAudience: jwt.Audience{b.appID}, Time: time.Now()}, 5*time.Minute); err != nil {
		return nil, kid, err
	}
	if claims["serviceurl"] != act["serviceUrl"] {
		return nil, kid, fmt.Errorf("serviceurl claim %v != activity serviceUrl %v", claims["serviceurl"], act["serviceUrl"])
	}
	if e, _ := key["endorsements"].([]any); !slices.Contains(e, any(act["channelId"])) {
		return nil, kid, fmt.Errorf("key does not endorse channel %v", act["channelId"])
	}
	return claims, kid, nil
}

// accessToken runs the client credentials grant as MSAL does.
func (b *authBot) accessToken() string {
	tok, st, raw := tokenRequest(b.t, b.h, url.Values{"client_id": {b.appID}, "client_secret": {b.secret}}, "")
	if st != 200 {
		b.t.Fatalf("token endpoint: %d %s", st, raw)
	}
	return tok
}

func tokenRequest(t *testing.T, h *harness, form url.Values, basic string) (string, int, string) {
	t.Helper()
	var meta struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	getJSON(t, h.base+"/botframework/v2.0/.well-known/openid-configuration", &meta)
	if form.Get("grant_type") == "" {
		form.Set("grant_type", "client_credentials")
	}
	if !form.Has("scope") {
		form.Set("scope", h.base+"/.default")
	}
	req, _ := http.NewRequest("POST", meta.TokenEndpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	if basic != "" {
		req.Header.Set("Authorization", "Basic "+basic)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	_ = json.Unmarshal(raw, &body)
	if res.StatusCode == 200 && (body.TokenType != "Bearer" || body.ExpiresIn != 3600 || res.Header.Get("Cache-Control") != "no-store") {
		t.Errorf("token response shape: %s, cache-control %q", raw, res.Header.Get("Cache-Control"))
	}
	return body.AccessToken, res.StatusCode, string(raw)
}

func (b *authBot) call(method, u, token string, body any) (int, string) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

func (b *authBot) seen() (claims []map[string]any, kids, refused []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.claims), slices.Clone(b.kids), slices.Clone(b.refused)
}

// secureHarness is a harness with an authenticated bot and its site.
func secureHarness(t *testing.T) (*harness, *authBot, string) {
	h := newHarness(t)
	b := newAuthBot(t, h)
	_, secret, _ := createSite(t, h.st, b.appID, true, []string{trustedOrigin})
	return h, b, secret
}

func startWith(t *testing.T, h *harness, secret, user string) (tok, conv string) {
	t.Helper()
	r := h.do("POST", "/tokens/generate", secret, map[string]any{"user": map[string]string{"id": user}}, nil)
	if r.status != 200 {
		t.Fatalf("generate: %d %s", r.status, r.raw)
	}
	tok = r.str("token")
	st := h.do("POST", "/conversations", tok, nil, nil)
	if st.status != 201 && st.status != 200 {
		t.Fatalf("start: %d %s", st.status, st.raw)
	}
	return tok, st.str("conversationId")
}

func TestChannelTokenToBotAndAuthenticatedReply(t *testing.T) {
	h, b, secret := secureHarness(t)
	tok, conv := startWith(t, h, secret, "dl_alice")
	h.post(tok, conv, map[string]any{"type": "message", "text": "echo:hello"})
	acts, _ := h.history(tok, conv, "")
	if !hasText("secure bot heard hello")(acts) {
		t.Fatalf("authenticated reply missing from the conversation: %v", texts(acts))
	}
	claims, _, refused := b.seen()
	if len(refused) > 0 || len(claims) < 2 { // conversationUpdate and the message
		t.Fatalf("bot validated %d deliveries, refused %v", len(claims), refused)
	}
	for _, c := range claims {
		keys := make([]string, 0, len(c))
		for k := range c {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if strings.Join(keys, ",") != "aud,exp,iat,iss,nbf,serviceurl" {
			t.Fatalf("channel token claims %v: want exactly iss, aud, serviceurl, nbf, exp, iat", keys)
		}
		if exp := int64(c["exp"].(float64)) - time.Now().Unix(); exp > 16*60 || exp < 14*60 {
			t.Fatalf("channel token lifetime %ds", exp)
		}
	}
}

func TestJWKSPublishesOnlyPublicRSAKeys(t *testing.T) {
	h := newHarness(t)
	var stsMeta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
		Token   string `json:"token_endpoint"`
		Authz   string `json:"authorization_endpoint"`
	}
	getJSON(t, h.base+"/botframework/v2.0/.well-known/openid-configuration", &stsMeta)
	if stsMeta.Issuer == "" || stsMeta.JWKSURI == "" || stsMeta.Token == "" || stsMeta.Authz == "" {
		t.Fatalf("STS metadata lacks what MSAL requires: %+v", stsMeta)
	}
	var sts struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, stsMeta.JWKSURI, &sts)
	channel := channelJWKS(t, h.base)
	kids := map[string]bool{}
	for name, set := range map[string][]map[string]any{"channel": channel, "sts": sts.Keys} {
		if len(set) < 2 {
			t.Fatalf("%s JWKS has %d keys, want the signing key and the next one", name, len(set))
		}
		for _, k := range set {
			for field := range k {
				if !slices.Contains([]string{"kty", "use", "alg", "kid", "n", "e", "endorsements"}, field) {
					t.Fatalf("%s JWKS key has field %q (private material?): %v", name, field, k)
				}
			}
			if k["kty"] != "RSA" || k["alg"] != "RS256" {
				t.Fatalf("%s key is not RS256/RSA: %v", name, k)
			}
			if name == "channel" && !slices.Contains(k["endorsements"].([]any), any("directline")) {
				t.Fatalf("channel key without endorsements: %v", k)
			}
			kid := k["kid"].(string)
			if kids[kid] {
				t.Fatalf("kid %s published twice (channel and STS keys must differ)", kid)
			}
			kids[kid] = true
		}
	}
}

func TestTokenEndpointClientAuthWithoutLockout(t *testing.T) {
	h, b, _ := secureHarness(t)
	if _, st, raw := tokenRequest(t, h, url.Values{"client_id": {b.appID}, "client_secret": {b.secret}}, ""); st != 200 {
		t.Fatalf("client_secret_post: %d %s", st, raw)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(b.appID + ":" + b.secret))
	if _, st, raw := tokenRequest(t, h, url.Values{}, basic); st != 200 {
		t.Fatalf("client_secret_basic: %d %s", st, raw)
	}
	bad := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"wrong grant", url.Values{"grant_type": {"password"}, "client_id": {b.appID}, "client_secret": {b.secret}}, 400, "unsupported_grant_type"},
		{"wrong scope", url.Values{"client_id": {b.appID}, "client_secret": {b.secret}, "scope": {"https://graph.microsoft.com/.default"}}, 400, "invalid_scope"},
		{"no secret", url.Values{"client_id": {b.appID}}, 401, "invalid_client"},
		{"unknown client", url.Values{"client_id": {"nobody"}, "client_secret": {b.secret}}, 401, "invalid_client"},
	}
	for _, c := range bad {
		_, st, raw := tokenRequest(t, h, c.form, "")
		if st != c.status || !strings.Contains(raw, `"error":"`+c.code+`"`) {
			t.Errorf("%s: %d %s, want %d %s", c.name, st, raw, c.status, c.code)
		}
	}
	// Wrong secrets never lock the client out (issue 9 finding 2): the
	// right secret afterwards still gets its token, and the log names the
	// app id, not the secret.
	for i := 0; i < 5; i++ {
		if _, st, _ := tokenRequest(t, h, url.Values{"client_id": {b.appID}, "client_secret": {"wrong-secret-" + fmt.Sprint(i)}}, ""); st != 401 {
			t.Fatalf("wrong secret %d answered %d", i, st)
		}
	}
	_, st, raw := tokenRequest(t, h, url.Values{"client_id": {b.appID}, "client_secret": {b.secret}}, "")
	if st != 200 {
		t.Fatalf("after 5 failures the right secret got %d %s, want 200", st, raw)
	}
	if logs := h.logs.String(); strings.Contains(logs, b.secret) || strings.Contains(logs, "wrong-secret-") {
		t.Fatal("a client secret reached the logs")
	}
	if !strings.Contains(h.logs.String(), "client authentication failed") {
		t.Fatal("failed client authentication was not logged")
	}
}

// signed makes a JWT with the given header fields and claims, signed by
// sign over "header.payload".
func signed(header, claims map[string]any, sign func([]byte) []byte) string {
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	return in + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(in)))
}

func TestBotConnectorRefusesForgedAndMisdirectedCalls(t *testing.T) {
	h, b, secret := secureHarness(t)
	dlTok, conv := startWith(t, h, secret, "dl_alice")
	// Bot B, authenticated, with its own conversation.
	other := newAuthBot(t, h)
	_, otherSecret, _ := createSite(t, h.st, other.appID, true, []string{trustedOrigin})
	_, otherConv := startWith(t, h, otherSecret, "dl_bob")

	good := b.accessToken()
	stsKid := h.srv.Authority().STSKeys().SigningKid()
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"iss": h.base + "/botframework/v2.0", "aud": h.base, "appid": b.appID, "azp": b.appID,
			"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(), "ver": "2.0"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	withStranger := func(c map[string]any) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: stranger}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", stsKid))
		cb, _ := json.Marshal(c)
		obj, _ := s.Sign(cb)
		return mustCompact(obj)
	}
	// HS256 keyed with the published JWK of the STS key (the classic
	// algorithm confusion attack), under the real kid.
	var stsSet struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, h.base+"/botframework/discovery/v2.0/keys", &stsSet)
	pubJWK, _ := json.Marshal(stsSet.Keys[0])
	hs256 := signed(map[string]any{"alg": "HS256", "typ": "JWT", "kid": stsSet.Keys[0]["kid"]}, claims(nil), func(in []byte) []byte {
		m := hmac.New(sha256.New, pubJWK)
		m.Write(in)
		return m.Sum(nil)
	})
	none := signed(map[string]any{"alg": "none", "typ": "JWT", "kid": stsKid}, claims(nil), func([]byte) []byte { return nil })
	// A channel token Parley sent to the bot, replayed back at Parley.
	chanTok, err := h.srv.Authority().AuthorizationFor(context.Background(), store.Bot{ID: b.appID}, h.base+"/")
	if err != nil {
		t.Fatal(err)
	}

	path := h.base + "/v3/conversations/" + url.PathEscape(conv) + "/activities"
	msg := func(text string) map[string]any { return map[string]any{"type": "message", "text": text} }
	cases := []connectorCase{
		{"no bearer", "", path, msg("no bearer"), 401},
		{"Direct Line client token", dlTok, path, msg("client token"), 401},
		{"another key under a published kid", withStranger(claims(nil)), path, msg("stranger key"), 401},
		{"alg none", none, path, msg("alg none"), 401},
		{"HS256 keyed with the public JWK", hs256, path, msg("hs256"), 401},
		{"channel token replayed", strings.TrimPrefix(chanTok, "Bearer "), path, msg("channel token"), 401},
		{"garbage", "not.a.jwt", path, msg("garbage"), 401},
		{"bot A into bot B's conversation", good, h.base + "/v3/conversations/" + url.PathEscape(otherConv) + "/activities", msg("cross bot"), 403},
		{"from another account", good, path, map[string]any{"type": "message", "text": "spoofed from", "from": map[string]string{"id": "dl_alice"}}, 403},
		{"body conversation differs from path", good, path, map[string]any{"type": "message", "text": "other conv", "conversation": map[string]string{"id": otherConv}}, 400},
	}
	// Tokens Parley itself signed, but wrong: these need the real key.
	forge := func(mod func(map[string]any)) string {
		cb, _ := json.Marshal(claims(mod))
		tok, err := h.srv.Authority().STSKeys().Sign(cb)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cases = append(cases,
		connectorCase{"wrong audience", forge(func(c map[string]any) { c["aud"] = "https://api.botframework.com" }), path, msg("wrong aud"), 401},
		connectorCase{"wrong issuer", forge(func(c map[string]any) { c["iss"] = "https://login.microsoftonline.com/botframework.com/v2.0" }), path, msg("wrong iss"), 401},
		connectorCase{"expired", forge(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() }), path, msg("expired"), 401},
		connectorCase{"unregistered app id", forge(func(c map[string]any) { c["appid"], c["azp"] = "nobody", "nobody" }), path, msg("unknown app"), 401},
	)
	for _, c := range cases {
		st, raw := b.call("POST", c.path, c.token, c.body)
		if st != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, st, raw, c.status)
		}
	}
	// Nothing reached either conversation.
	acts, _ := h.history(dlTok, conv, "")
	for _, a := range acts {
		if a["type"] == "message" {
			t.Fatalf("a refused call reached the conversation: %v", a["text"])
		}
	}
	if st, raw := b.call("POST", path, good, msg("legitimate")); st != 200 {
		t.Fatalf("valid bot token refused: %d %s", st, raw)
	}
	acts, _ = h.history(dlTok, conv, "")
	if !hasText("legitimate")(acts) {
		t.Fatal("valid bot call did not reach the conversation")
	}
}

// connectorCase is one Bot Connector call and the status it must get.
type connectorCase struct {
	name   string
	token  string
	path   string
	body   map[string]any
	status int
}

func mustCompact(o *jose.JSONWebSignature) string {
	s, err := o.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return s
}

// Rotation: signing moves to the key bots already have, the retired key
// stays published and its tokens keep working, deliveries never fail; a
// purge drops retired keys at once.
func TestKeyRotationWithoutFailedDelivery(t *testing.T) {
	h, b, secret := secureHarness(t)
	tok, conv := startWith(t, h, secret, "dl_alice")
	h.post(tok, conv, map[string]any{"type": "message", "text": "echo:before"})
	before := channelJWKS(t, h.base)
	oldKid := h.srv.Authority().ChannelKeys().SigningKid()
	var next string
	for _, k := range before {
		if k["kid"] != oldKid {
			next = k["kid"].(string)
		}
	}
	oldBotToken := b.accessToken()
	kr := h.keyring(t)
	ctx := context.Background()
	if _, err := botauth.Rotate(ctx, h.st, kr, botauth.PurposeChannel, time.Now(), false, false); err == nil {
		t.Fatal("rotation to a next key younger than 24h was allowed without force")
	}
	for _, p := range []string{botauth.PurposeChannel, botauth.PurposeSTS} {
		if _, err := botauth.Rotate(ctx, h.st, kr, p, time.Now(), true, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.srv.Authority().Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.srv.Authority().ChannelKeys().SigningKid(); got != next {
		t.Fatalf("after rotation signing with %s, want the published next key %s", got, next)
	}
	after := channelJWKS(t, h.base)
	if len(after) != 3 {
		t.Fatalf("after rotation %d channel keys published, want retired + current + new next", len(after))
	}
	h.post(tok, conv, map[string]any{"type": "message", "text": "echo:after"})
	// A token issued before the STS rotation still works.
	if st, raw := b.call("POST", h.base+"/v3/conversations/"+url.PathEscape(conv)+"/activities", oldBotToken, map[string]any{"type": "message", "text": "old token"}); st != 200 {
		t.Fatalf("token from before the rotation refused: %d %s", st, raw)
	}
	acts, _ := h.history(tok, conv, "")
	if !hasText("secure bot heard before")(acts) || !hasText("secure bot heard after")(acts) {
		t.Fatalf("replies missing around rotation: %v", texts(acts))
	}
	_, kids, refused := b.seen()
	if len(refused) > 0 || kids[len(kids)-1] != next {
		t.Fatalf("deliveries refused %v; last kid %s, want %s", refused, kids[len(kids)-1], next)
	}
	// Purge: the retired STS key and its tokens are gone at once.
	if _, err := botauth.Rotate(ctx, h.st, kr, botauth.PurposeSTS, time.Now(), true, true); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Authority().Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := b.call("POST", h.base+"/v3/conversations/"+url.PathEscape(conv)+"/activities", oldBotToken, map[string]any{"type": "message", "text": "purged"}); st != 401 {
		t.Fatalf("token signed by a purged key answered %d, want 401", st)
	}
}

func (h *harness) keyring(t *testing.T) *keyring.Keyring {
	t.Helper()
	master, err := keyring.LoadOrCreateFile(h.cfg.MasterKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(master)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// A bot endpoint on an internal address, or on plain http off loopback,
// gets nothing. The client is told that Parley refused (not that the bot
// rejected the activity), the log says so too, and neither repeats the
// endpoint's query (function keys live there).
func TestDeliveryRefusesInternalAndPlainHTTPEndpoints(t *testing.T) {
	h := newHarness(t)
	for i, endpoint := range []string{"https://169.254.169.254/api/messages?code=QUERYSECRETk3y0", "https://10.0.0.7/api/messages?code=QUERYSECRETk3y1", "http://bot.example.com/api/messages?code=QUERYSECRETk3y2", "https://[::ffff:0:a00:7]/api/messages?code=QUERYSECRETk3y3"} {
		id := fmt.Sprintf("bot-ssrf-%d", i)
		if err := h.st.CreateBot(context.Background(), store.Bot{ID: id, Name: id, Endpoint: endpoint, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		_, secret, _ := createSite(t, h.st, id, true, []string{trustedOrigin})
		tok, conv := startWith(t, h, secret, "dl_alice")
		began := time.Now()
		r := h.do("POST", "/conversations/"+conv+"/activities", tok, map[string]any{"type": "message", "text": "hi"}, nil)
		if r.status != 502 || r.errCode() != "ServiceError" || !strings.Contains(string(r.raw), "Parley refused to connect to the bot's endpoint") {
			t.Fatalf("%s: %d %s, want 502 ServiceError saying Parley refused", endpoint, r.status, r.raw)
		}
		if strings.Contains(string(r.raw), "QUERYSECRET") {
			t.Fatalf("%s: the answer repeats the endpoint's query: %s", endpoint, r.raw)
		}
		if time.Since(began) > 2*time.Second {
			t.Fatalf("%s: refusal took %v; it is permanent and should not wait for retries", endpoint, time.Since(began))
		}
	}
	logs := h.logs.String()
	if n := strings.Count(logs, "Parley refused to connect to the bot's endpoint"); n < 4 {
		t.Errorf("%d log lines say Parley refused, want one per bot:\n%s", n, logs)
	}
	if strings.Contains(logs, "bot refused activity") || strings.Contains(logs, "QUERYSECRET") {
		t.Errorf("the log blames the bot or repeats the endpoint's query:\n%s", logs)
	}
}
