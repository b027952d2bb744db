package botauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/parley-gw/parley/internal/guard"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// Config is the authority's public face.
type Config struct {
	// PublicURL is the gateway's external base URL, without a trailing
	// slash; it is the channel token issuer and the bots' token audience.
	PublicURL string
	// Endorsements are the channel ids published on every channel key.
	Endorsements []string
	// ChannelTokenTTL is the lifetime of a channel→bot token (default 15m).
	ChannelTokenTTL time.Duration
	// AccessTokenTTL is the lifetime of a bot access token (default 1h).
	AccessTokenTTL time.Duration
	// Leeway is the clock skew accepted on bot tokens (default 60s).
	Leeway time.Duration
	// ReloadEvery is how often keys are re-read from the store, so that a
	// rotation by another process takes effect (default 30s).
	ReloadEvery time.Duration
	// Guesses throttles secret guessing per client address (see
	// guard.Guesses); there is no lockout per app id.
	Guesses guard.GuessConfig
	// ClientAddr is the client's address (default: the TCP peer); the
	// server passes guard.Proxies.ClientAddr so that trusted proxies apply.
	ClientAddr func(*http.Request) netip.Addr
	// Failures logs and counts failed client authentications (default:
	// logged only).
	Failures *guard.AuthFailures
	// Keys is the gateway's key set, loaded, with the channel and sts
	// purposes (default: a key set of those two alone, over the store).
	// Reload re-reads all of it.
	Keys *keyring.KeySet
}

func (c Config) withDefaults() Config {
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if len(c.Endorsements) == 0 {
		c.Endorsements = []string{"directline", "webchat"}
	}
	if c.ChannelTokenTTL == 0 {
		c.ChannelTokenTTL = 15 * time.Minute
	}
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = time.Hour
	}
	if c.Leeway == 0 {
		c.Leeway = time.Minute
	}
	if c.ReloadEvery == 0 {
		c.ReloadEvery = 30 * time.Second
	}
	if c.ClientAddr == nil {
		c.ClientAddr = guard.Proxies{}.ClientAddr
	}
	return c
}

// Tenant is the path segment of the token service (the "tenant" of the
// bot's ToChannelFromBotLoginUrl).
const Tenant = "botframework"

// Paths of Parley's authority endpoints, relative to the public URL.
const (
	ChannelMetadataPath = "/v1/.well-known/openidconfiguration"
	ChannelKeysPath     = "/v1/.well-known/keys"
	STSMetadataPath     = "/" + Tenant + "/v2.0/.well-known/openid-configuration"
	STSKeysPath         = "/" + Tenant + "/discovery/v2.0/keys"
	STSAuthorizePath    = "/" + Tenant + "/oauth2/v2.0/authorize"
	STSTokenPath        = "/" + Tenant + "/oauth2/v2.0/token"
	// AgentsChannelKeysPath publishes the CHANNEL keys (the same set as
	// ChannelKeysPath) where the Microsoft 365 Agents SDK fetches them for
	// a non-Microsoft issuer: {authorityEndpoint}/{tenantId}/discovery/v2.0/keys
	// with authorityEndpoint = the public URL and tenantId = AgentsChannelTenant.
	// The token service's keys stay at STSKeysPath, under another tenant.
	AgentsChannelKeysPath = "/" + AgentsChannelTenant + "/discovery/v2.0/keys"
	// ManagedIdentityPath serves the App Service managed identity token
	// protocol (see managedidentity.go): the Agents SDK's IDENTITY_ENDPOINT.
	ManagedIdentityPath = "/" + Tenant + "/msi/token"
)

// AgentsChannelTenant is the tenant id an Agents SDK agent is configured
// with: it selects the path of the channel keys, nothing else.
const AgentsChannelTenant = "channel"

// Setting is one bot-side setting.
type Setting struct{ Name, Value string }

// BotSettings is the whole group of settings a botbuilder bot needs for a
// gateway at publicURL, in the order a developer reads them. A bot that
// sets one parameterized setting treats the unset ones as empty, not as
// Azure's, so all are given.
func BotSettings(publicURL, appID, secret string) []Setting {
	u := strings.TrimRight(publicURL, "/")
	host := strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	return []Setting{
		{"MicrosoftAppId", appID},
		{"MicrosoftAppPassword", secret},
		{"MicrosoftAppType", "MultiTenant"},
		{"ToBotFromChannelOpenIdMetadataUrl", u + ChannelMetadataPath},
		{"ToBotFromChannelTokenIssuer", u},
		{"ToBotFromEmulatorOpenIdMetadataUrl", u + ChannelMetadataPath},
		{"ToChannelFromBotLoginUrl", u + "/" + Tenant},
		{"ToChannelFromBotOAuthScope", u},
		{"OAuthUrl", u},
		{"CallerId", "urn:parley:" + host},
	}
}

// Authority holds both key sets and serves the endpoints.
type Authority struct {
	cfg     Config
	st      store.Store
	channel *KeySet
	sts     *KeySet
	logger  *slog.Logger
	now     func() time.Time
	guesses *guard.Guesses

	// minted caches channel tokens per bot and serviceUrl for a minute
	// (each still has at least 14 of its 15 minutes left when used), so a
	// busy conversation does not cost an RSA signature per message.
	mintMu sync.Mutex
	minted map[mintKey]mintedToken

	// verified caches bot tokens by SHA-256 (a bot reuses its token for
	// an hour): lifetime, key and bot are still checked on every use.
	verMu    sync.Mutex
	verified map[[32]byte]verifiedToken
}

type mintKey struct{ bot, serviceURL, kid string }

// verifiedToken is a bot token whose signature and claims checked out.
type verifiedToken struct {
	appID, kid string
	exp        time.Time
}

type mintedToken struct {
	header string
	at     time.Time
}

// channelTokenReuse is how long a minted channel token is reused.
const channelTokenReuse = time.Minute

// New loads (creating on first run) the channel and STS keys.
func New(ctx context.Context, cfg Config, st store.Store, kr *keyring.Keyring, logger *slog.Logger) (*Authority, error) {
	cfg = cfg.withDefaults()
	if cfg.Keys == nil {
		cfg.Keys = keyring.NewKeySet(keyring.KeySetConfig{Store: st, Keyring: kr,
			Purposes: []keyring.Purpose{keyring.RSAPurpose(PurposeChannel), keyring.RSAPurpose(PurposeSTS)}})
		if err := cfg.Keys.Load(ctx); err != nil {
			return nil, err
		}
	}
	ch, err := NewKeySet(cfg.Keys, PurposeChannel)
	if err != nil {
		return nil, err
	}
	sts, err := NewKeySet(cfg.Keys, PurposeSTS)
	if err != nil {
		return nil, err
	}
	a := &Authority{cfg: cfg, st: st, channel: ch, sts: sts, logger: logger, now: time.Now,
		minted: map[mintKey]mintedToken{}, verified: map[[32]byte]verifiedToken{}}
	gc := cfg.Guesses
	if gc.Now == nil {
		gc.Now = func() time.Time { return a.now() }
	}
	a.guesses = guard.NewGuesses(gc)
	return a, nil
}

// Run re-reads the keys periodically until ctx ends.
func (a *Authority) Run(ctx context.Context) {
	t := time.NewTicker(a.cfg.ReloadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.Reload(ctx); err != nil && ctx.Err() == nil {
				a.logger.Error("reload signing keys failed", "err", err)
			}
		}
	}
}

// Reload re-reads the key set now (every purpose in it: the server's
// holds the Direct Line token and log keys too).
func (a *Authority) Reload(ctx context.Context) error {
	return a.channel.Reload(ctx)
}

// ChannelKeys and STSKeys expose the key sets (for tests and operators).
func (a *Authority) ChannelKeys() *KeySet { return a.channel }

// STSKeys is the token service's key set.
func (a *Authority) STSKeys() *KeySet { return a.sts }

func (a *Authority) stsIssuer() string { return a.cfg.PublicURL + "/" + Tenant + "/v2.0" }

// Register adds the metadata, JWKS and token routes.
func (a *Authority) Register(mux *http.ServeMux) {
	u := a.cfg.PublicURL
	mux.HandleFunc("GET "+ChannelMetadataPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSONCache(w, http.StatusOK, map[string]any{
			"issuer":                                u,
			"authorization_endpoint":                u + STSAuthorizePath,
			"jwks_uri":                              u + ChannelKeysPath,
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
		})
	})
	mux.HandleFunc("GET "+ChannelKeysPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSONCache(w, http.StatusOK, map[string]any{"keys": a.channel.JWKS(a.cfg.Endorsements)})
	})
	mux.HandleFunc("GET "+AgentsChannelKeysPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSONCache(w, http.StatusOK, map[string]any{"keys": a.channel.JWKS(a.cfg.Endorsements)})
	})
	mux.HandleFunc("GET "+ManagedIdentityPath, a.managedIdentityToken)
	mux.HandleFunc("GET "+STSMetadataPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSONCache(w, http.StatusOK, map[string]any{
			"issuer":                                a.stsIssuer(),
			"authorization_endpoint":                u + STSAuthorizePath,
			"token_endpoint":                        u + STSTokenPath,
			"jwks_uri":                              u + STSKeysPath,
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
			"grant_types_supported":                 []string{"client_credentials"},
			"response_types_supported":              []string{"token"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"scopes_supported":                      []string{u + "/.default"},
		})
	})
	mux.HandleFunc("GET "+STSKeysPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSONCache(w, http.StatusOK, map[string]any{"keys": a.sts.JWKS(nil)})
	})
	mux.HandleFunc(STSAuthorizePath, func(w http.ResponseWriter, r *http.Request) {
		oauthError(w, http.StatusBadRequest, "unsupported_response_type", "only the client credentials grant is offered, at the token endpoint")
	})
	mux.HandleFunc("POST "+STSTokenPath, a.token)
}

func writeJSONCache(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError answers in RFC 6749 section 5.2's shape.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="parley"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// --- channel → bot ---

// AuthorizationFor mints the channel→bot token for one delivery: exactly
// iss, aud (the bot's app id), serviceurl, nbf, exp and iat, nothing that
// would route the SDK to another validator.
func (a *Authority) AuthorizationFor(_ context.Context, bot store.Bot, serviceURL string) (string, error) {
	now := a.now()
	key := mintKey{bot: bot.ID, serviceURL: serviceURL, kid: a.channel.SigningKid()}
	a.mintMu.Lock()
	m, ok := a.minted[key]
	a.mintMu.Unlock()
	if ok && now.Sub(m.at) < channelTokenReuse && !now.Before(m.at) {
		return m.header, nil
	}
	claims, err := json.Marshal(map[string]any{
		"iss":        a.cfg.PublicURL,
		"aud":        bot.ID,
		"serviceurl": serviceURL,
		"nbf":        now.Add(-time.Minute).Unix(),
		"iat":        now.Unix(),
		"exp":        now.Add(a.cfg.ChannelTokenTTL).Unix(),
	})
	if err != nil {
		return "", err
	}
	tok, err := a.channel.Sign(claims)
	if err != nil {
		return "", err
	}
	a.mintMu.Lock()
	if len(a.minted) > 10_000 {
		clear(a.minted)
	}
	a.minted[key] = mintedToken{header: "Bearer " + tok, at: now}
	a.mintMu.Unlock()
	return "Bearer " + tok, nil
}

// --- token service ---

// HashClientSecret is the stored form of a bot client secret (a 256-bit
// random value, so a fast hash suffices; see identity.HashSecret).
func HashClientSecret(secret string) []byte { return identity.HashSecretFor("bot", secret) }

// accessClaims are the claims of a bot access token.
type accessClaims struct {
	jwt.Claims
	AppID string `json:"appid"`
	AZP   string `json:"azp"`
	Ver   string `json:"ver"`
}

func (a *Authority) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded, at most 16 KB")
		return
	}
	form := r.PostForm
	if gt := form.Get("grant_type"); gt != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		if secret != "" || (id != "" && id != u) {
			oauthError(w, http.StatusBadRequest, "invalid_request", "client credentials given twice")
			return
		}
		id, secret = u, p
	}
	if id == "" || secret == "" || len(id) > 128 || len(secret) > 256 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client_id and client_secret are required")
		return
	}
	if form.Get("client_assertion") != "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "client assertions are not supported; use a client secret")
		return
	}
	if scope := form.Get("scope"); !a.acceptedScope(scope) {
		want := a.cfg.PublicURL + "/.default"
		oauthError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("scope must be %s (set ToChannelFromBotOAuthScope to %s)", want, a.cfg.PublicURL))
		return
	}
	bot, ok := a.checkClient(w, r, id, secret, "token_endpoint")
	if !ok {
		return
	}
	tok, _, err := a.issue(bot)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "the token service could not complete the request")
		return
	}
	ttl := int(a.cfg.AccessTokenTTL.Seconds())
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": tok})
}

// BotFrameworkScope is the scope (and, without "/.default", the managed
// identity resource) that the Microsoft 365 Agents SDK asks for whenever
// the inbound token carries no azp/appid, whatever its own scopes
// setting says. Parley accepts it as an alias of its own scope and issues
// its own token (audience: the public URL); it never mints a token for
// Microsoft's Bot Framework.
const BotFrameworkScope = "https://api.botframework.com"

// acceptedScope reports whether scope names Parley's token service: its
// own "{public URL}/.default", or the Bot Framework alias, with or
// without "/.default". Exact match: no case or slash variants.
func (a *Authority) acceptedScope(scope string) bool {
	switch scope {
	case a.cfg.PublicURL + "/.default", BotFrameworkScope + "/.default", BotFrameworkScope:
		return true
	}
	return false
}

// checkClient checks a bot's client secret, throttled per client address
// (one budget for the token and managed identity endpoints), logging and
// counting failures. On failure it has answered.
func (a *Authority) checkClient(w http.ResponseWriter, r *http.Request, id, secret, via string) (store.Bot, bool) {
	// Throttle guessing per client address; never per app id (it is
	// public). A correct secret always gets its token, from a slowed
	// address after its turn (see guard.Guesses).
	addr := a.cfg.ClientAddr(r)
	key := guard.AddrKey(addr)
	adm, wait, admitted := a.guesses.Admit(r.Context(), key)
	if !admitted {
		a.cfg.Failures.CountedFor(r, "token_service", "throttled") // not logged: see Counted
		guard.SetRetryAfter(w.Header(), wait)
		oauthError(w, http.StatusTooManyRequests, "invalid_client", "too many failed attempts from this address; try again later")
		return store.Bot{}, false
	}
	bot, err := a.st.GetBot(r.Context(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		adm.Succeeded() // not a guess: refund the failure charged in advance
		a.logger.Error("token endpoint: bot lookup failed", "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "the token service could not complete the request")
		return store.Bot{}, false
	}
	h := HashClientSecret(secret)
	ok := err == nil && !bot.InsecureNoAuth &&
		(subtle.ConstantTimeCompare(h, bot.SecretHashes[0]) == 1 || subtle.ConstantTimeCompare(h, bot.SecretHashes[1]) == 1)
	if !ok {
		reason := "wrong_secret"
		switch {
		case err != nil:
			reason = "unknown_client"
		case bot.InsecureNoAuth:
			reason = "insecure_bot"
		}
		a.failed(r, reason, id, via)
		if wait, over := adm.Failed(); over {
			guard.SetRetryAfter(w.Header(), wait)
			oauthError(w, http.StatusTooManyRequests, "invalid_client", "unknown client or wrong client secret; too many failed attempts from this address, so further attempts are slowed down")
			return store.Bot{}, false
		}
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong client secret")
		return store.Bot{}, false
	}
	adm.Succeeded()
	return bot, true
}

// issue signs a bot access token for bot with the STS key.
func (a *Authority) issue(bot store.Bot) (string, time.Time, error) {
	now := a.now()
	exp := now.Add(a.cfg.AccessTokenTTL)
	c := accessClaims{
		Claims: jwt.Claims{
			Issuer:    a.stsIssuer(),
			Audience:  jwt.Audience{a.cfg.PublicURL},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			Expiry:    jwt.NewNumericDate(exp),
		},
		AppID: bot.ID, AZP: bot.ID, Ver: "2.0",
	}
	body, err := json.Marshal(c)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("encode claims: %w", err)
	}
	tok, err := a.sts.Sign(body)
	if err != nil {
		a.logger.Error("token endpoint: signing failed", "err", err)
		return "", time.Time{}, fmt.Errorf("sign access token: %w", err)
	}
	return tok, exp, nil
}

// --- bot → Parley ---

// ErrBadBotToken is returned for every rejected bot bearer token.
var ErrBadBotToken = errors.New("invalid bot token")

// AuthenticateBot checks the bearer token of a Bot Connector call and
// returns the bot's app id: RS256 only, a published STS key, issuer,
// audience, lifetime with small leeway, and a registered bot.
func (a *Authority) AuthenticateBot(ctx context.Context, authorization string) (string, error) {
	scheme, tok, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > 8192 {
		return "", fmt.Errorf("%w: not a bearer token", ErrBadBotToken)
	}
	sum := sha256.Sum256([]byte(tok))
	a.verMu.Lock()
	v, cached := a.verified[sum]
	a.verMu.Unlock()
	if cached {
		if a.now().After(v.exp.Add(a.cfg.Leeway)) || a.sts.PublicKey(v.kid) == nil {
			return "", fmt.Errorf("%w: expired or key withdrawn", ErrBadBotToken)
		}
		return a.registeredBot(ctx, v.appID)
	}
	appID, kid, exp, err := a.verifyBotToken(tok)
	if err != nil {
		return "", err
	}
	id, err := a.registeredBot(ctx, appID)
	if err != nil {
		return "", err
	}
	a.verMu.Lock()
	if len(a.verified) >= 50_000 {
		clear(a.verified)
	}
	a.verified[sum] = verifiedToken{appID: appID, kid: kid, exp: exp}
	a.verMu.Unlock()
	return id, nil
}

func (a *Authority) registeredBot(ctx context.Context, appID string) (string, error) {
	bot, err := a.st.GetBot(ctx, appID)
	if err != nil {
		return "", fmt.Errorf("%w: unknown bot", ErrBadBotToken)
	}
	if bot.InsecureNoAuth {
		return "", fmt.Errorf("%w: bot is registered without authentication", ErrBadBotToken)
	}
	return bot.ID, nil
}

// verifyBotToken checks algorithm, key, signature and claims.
func (a *Authority) verifyBotToken(tok string) (appID, kid string, exp time.Time, err error) {
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("%w: %v", ErrBadBotToken, err)
	}
	if len(parsed.Headers) != 1 {
		return "", "", time.Time{}, fmt.Errorf("%w: one signature expected", ErrBadBotToken)
	}
	kid = parsed.Headers[0].KeyID
	pub := a.sts.PublicKey(kid)
	if pub == nil {
		return "", "", time.Time{}, fmt.Errorf("%w: unknown key id", ErrBadBotToken)
	}
	var c accessClaims
	if err := parsed.Claims(pub, &c); err != nil {
		return "", "", time.Time{}, fmt.Errorf("%w: signature: %v", ErrBadBotToken, err)
	}
	if c.Expiry == nil || c.NotBefore == nil {
		return "", "", time.Time{}, fmt.Errorf("%w: no lifetime", ErrBadBotToken)
	}
	err = c.Claims.ValidateWithLeeway(jwt.Expected{Issuer: a.stsIssuer(), AnyAudience: jwt.Audience{a.cfg.PublicURL}, Time: a.now()}, a.cfg.Leeway)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("%w: %v", ErrBadBotToken, err)
	}
	if len(c.Audience) != 1 || c.AppID == "" || (c.AZP != "" && c.AZP != c.AppID) {
		return "", "", time.Time{}, fmt.Errorf("%w: bad audience or app id", ErrBadBotToken)
	}
	return c.AppID, kid, c.Expiry.Time(), nil
}

// failed logs and counts a failed client authentication (never the secret).
func (a *Authority) failed(r *http.Request, reason, appID, via string) {
	if a.cfg.Failures != nil {
		a.cfg.Failures.Record(r, "token_service", reason, "app_id", appID, "via", via)
		return
	}
	a.logger.Warn("token endpoint: client authentication failed", "reason", reason, "app_id", appID, "via", via,
		"client_addr", a.cfg.ClientAddr(r).String(), "user_agent", r.UserAgent())
}
