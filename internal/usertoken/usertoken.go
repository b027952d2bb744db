// Package usertoken is Parley's user token service (issue 12): the REST
// API botbuilder's UserTokenClient and the Microsoft 365 Agents SDK call
// (/api/usertoken/..., /api/botsignin/...), the sign-in redirect to the
// identity provider with PKCE and the callback with its magic code page.
//
// Every API call carries the bot's bearer token. A bot only reads tokens
// of its own connections, for users bound to its own conversations; user
// tokens and client secrets are sealed under the bot's data key and never
// logged.
package usertoken

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/guard"
	"github.com/parley-gw/parley/internal/store"
)

// BotAuthenticator identifies the bot behind a call from its bearer token
// (botauth.Authority implements it).
type BotAuthenticator interface {
	AuthenticateBot(ctx context.Context, authorization string) (botID string, err error)
}

// Config configures the service.
type Config struct {
	// PublicURL is Parley's public base URL: the sign-in links and the
	// callback (the redirect URI registered at the provider) derive from it.
	PublicURL string
	// ChannelID is the channel id in TokenResponse ("directline").
	ChannelID string
	Store     store.Store
	Sealer    Sealer
	Auth      BotAuthenticator
	Logger    *slog.Logger
	// HTTPClient calls the identity providers (discovery, token
	// endpoint). Nil: a client with a 15-second timeout.
	HTTPClient *http.Client
	Now        func() time.Time
	Limits     Limits
	// Deliver enqueues an activity for the bot only (the tokens/response
	// event after a sign-in without a magic code); conversation.Log
	// implements it. Nil: every sign-in ends with a magic code.
	Deliver Deliverer
	// Failures logs (rate-limited) and counts failed bot authentications
	// (nil: counted nowhere, not logged).
	Failures *guard.AuthFailures
}

// Deliverer enqueues an activity for a conversation's bot, not shown to
// the clients.
type Deliverer interface {
	Deliver(ctx context.Context, conv, botID string, a conversation.Activity) error
}

// Limits are the sign-in flow's lifetimes and attempt limits.
type Limits struct {
	LinkTTL         time.Duration // a sign-in link (OAuthCard button)
	FlowTTL         time.Duration // from the redirect to the provider to its callback
	CodeTTL         time.Duration // a magic code
	MaxCodeAttempts int           // wrong codes per user and connection before the lockout
	LockoutFor      time.Duration
	MaxPending      int // links, flows and codes held at once (each)
}

// DefaultLimits are the limits a zero Config.Limits gets.
var DefaultLimits = Limits{LinkTTL: 15 * time.Minute, FlowTTL: 10 * time.Minute, CodeTTL: 5 * time.Minute,
	MaxCodeAttempts: 5, LockoutFor: 15 * time.Minute, MaxPending: 10000}

// Service is the user token service.
type Service struct {
	cfg    Config
	st     store.Store
	sealer Sealer
	auth   BotAuthenticator
	logger *slog.Logger
	now    func() time.Time
	lim    Limits

	mu         sync.Mutex
	client     *http.Client
	discovered map[string]discovery
	links      map[string]link    // sign-in link id -> what it signs in
	flows      map[string]flow    // Parley's OAuth state -> the flow in progress
	codes      map[string]pending // bot, user, connection -> token awaiting its magic code
	fails      map[string]failures
	linkFlows  map[string][]string // sign-in link id -> its flows' states, oldest first
	userLinks  map[string][]string // bot, user, connection -> its link ids, oldest first

	// tokenLocks serialises the reads of one user token (bot, user,
	// connection): a refresh uses the provider's refresh token once.
	tokenLocks keyLocks
}

// keyLocks is a mutex per key, held only while in use.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	mu    sync.Mutex
	users int
}

// lock locks key and returns its unlock.
func (k *keyLocks) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{}
		k.m[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// New builds the service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	if cfg.ChannelID == "" {
		cfg.ChannelID = "directline"
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return &Service{cfg: cfg, st: cfg.Store, sealer: cfg.Sealer, auth: cfg.Auth, logger: cfg.Logger, now: cfg.Now, lim: cfg.Limits,
		client: cfg.HTTPClient, discovered: map[string]discovery{}, links: map[string]link{}, flows: map[string]flow{},
		codes: map[string]pending{}, fails: map[string]failures{}, linkFlows: map[string][]string{}, userLinks: map[string][]string{}}
}

// SetHTTPClient replaces the client that calls identity providers (a
// private CA's, or a test's).
func (s *Service) SetHTTPClient(c *http.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.client = c
	clear(s.discovered)
}

func (s *Service) httpClient() *http.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		s.client = &http.Client{Timeout: 15 * time.Second}
	}
	return s.client
}

// CallbackURL is the redirect URI to register at every provider.
func (s *Service) CallbackURL() string { return s.cfg.PublicURL + "/api/oauth/callback" }

// Register adds the routes.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/usertoken/GetToken", s.getToken)
	mux.HandleFunc("GET /api/usertoken/GetTokenStatus", s.getTokenStatus)
	mux.HandleFunc("DELETE /api/usertoken/SignOut", s.signOut)
	mux.HandleFunc("GET /api/usertoken/GetTokenOrSignInResource", s.getTokenOrSignInResource)
	mux.HandleFunc("POST /api/usertoken/exchange", s.exchange)
	mux.HandleFunc("POST /api/usertoken/GetAadTokens", s.getAadTokens)
	mux.HandleFunc("GET /api/botsignin/GetSignInResource", s.getSignInResource)
	mux.HandleFunc("GET /api/botsignin/GetSignInUrl", s.getSignInURL)
	mux.HandleFunc("GET /api/oauth/signin", s.signin)
	mux.HandleFunc("GET /api/oauth/callback", s.callback)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "BadArgument", "no such token service endpoint or method")
	})
}

// writeErr is the token service's error shape (the Bot Connector's
// ErrorResponse, which the SDKs parse).
func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func noStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"ServiceError","message":"encoding failed"}}`)
	}
	noStore(w)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// notFound is the SDKs' "no token": 404 with an empty body (anything
// else is an error to them).
func notFound(w http.ResponseWriter) {
	noStore(w)
	w.WriteHeader(http.StatusNotFound)
}

// TokenResponse is the SDKs' TokenResponse.
type TokenResponse struct {
	ChannelID      string `json:"channelId"`
	ConnectionName string `json:"connectionName"`
	Token          string `json:"token"`
	Expiration     string `json:"expiration,omitempty"`
}

// bot authenticates the caller; it answers the client itself on failure.
func (s *Service) bot(w http.ResponseWriter, r *http.Request) (string, bool) {
	authz := r.Header.Get("Authorization")
	if authz == "" || s.auth == nil {
		writeErr(w, http.StatusUnauthorized, "Unauthorized", "a valid bearer token is required")
		return "", false
	}
	id, err := s.auth.AuthenticateBot(r.Context(), authz)
	if err != nil {
		// Rate-limited: a caller sends as many bad tokens as it likes; the
		// route pattern, never the path (it may be the caller's text).
		s.cfg.Failures.Record(r, "usertoken", "invalid_bot_token", "route", r.Pattern, "err", err.Error())
		writeErr(w, http.StatusUnauthorized, "Unauthorized", "invalid bot credentials")
		return "", false
	}
	return id, true
}

// query reads the named single-valued query parameters; a repeated one
// or one too long is refused.
func query(w http.ResponseWriter, r *http.Request, required []string, optional ...string) (map[string]string, bool) {
	q := r.URL.Query()
	out := map[string]string{}
	for i, names := range [][]string{required, optional} {
		for _, n := range names {
			v := q[n]
			if len(v) > 1 {
				writeErr(w, http.StatusBadRequest, "BadArgument", "query parameter "+n+" is repeated")
				return nil, false
			}
			if len(v) == 1 {
				out[n] = v[0]
			}
			if i == 0 && out[n] == "" {
				writeErr(w, http.StatusBadRequest, "MissingProperty", "query parameter "+n+" is required")
				return nil, false
			}
			if len(out[n]) > 8192 {
				writeErr(w, http.StatusBadRequest, "BadArgument", "query parameter "+n+" is too long")
				return nil, false
			}
		}
	}
	return out, true
}

// authorizeUser checks that userID is bound to a conversation of botID:
// a bot acts only for its own users.
func (s *Service) authorizeUser(w http.ResponseWriter, r *http.Request, botID, userID string) bool {
	ctx := r.Context()
	if !BoundUserID(userID) {
		writeErr(w, http.StatusForbidden, "Forbidden", errClaimable)
		return false
	}
	ids, err := s.st.UserConversations(ctx, userID)
	if err != nil {
		s.logger.Error("token service: user lookup failed", "err", err)
		writeErr(w, http.StatusInternalServerError, "ServiceError", "the gateway could not complete the request")
		return false
	}
	for _, id := range ids {
		if c, err := s.st.GetConversation(ctx, id); err == nil && c.BotID == botID {
			return true
		}
	}
	writeErr(w, http.StatusForbidden, "Forbidden", "userId is not a user of this bot's conversations")
	return false
}

// boundPrefix starts the user ids only a Direct Line token binds: a
// client of an unbound conversation cannot send one as from.id
// (directline refuses it), so the bot's userId is the bound user's.
const boundPrefix = "dl_"

// errClaimable explains why a user id without boundPrefix gets no token.
const errClaimable = "user tokens need a user id bound in a Direct Line token and starting with dl_ " +
	"(generate the token with user.id \"dl_...\"): a client of an unbound conversation can claim any other id"

// BoundUserID reports whether userID can only come from a token's binding
// (dl_...), never from a client's claim. Only such users sign in and get
// tokens: otherwise a client could call itself "alice" in an unbound
// conversation of the same bot and the bot would read alice's token.
func BoundUserID(userID string) bool { return strings.HasPrefix(userID, boundPrefix) }

// connection loads a connection of botID; it answers the client itself
// when there is none.
func (s *Service) connection(w http.ResponseWriter, r *http.Request, botID, name string) (store.OAuthConnection, bool) {
	c, err := s.st.GetOAuthConnection(r.Context(), botID, name)
	if errors.Is(err, store.ErrNotFound) {
		writeErr(w, http.StatusBadRequest, "BadArgument", "this bot has no OAuth connection named "+quote(name)+" (parley oauth connection list)")
		return c, false
	}
	if err != nil {
		s.logger.Error("token service: connection lookup failed", "err", err)
		writeErr(w, http.StatusInternalServerError, "ServiceError", "the gateway could not complete the request")
		return c, false
	}
	return c, true
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	b, _ := json.Marshal(s)
	return string(b)
}

func (s *Service) checkChannel(w http.ResponseWriter, ch string) bool {
	if ch != "" && ch != s.cfg.ChannelID {
		writeErr(w, http.StatusBadRequest, "BadArgument", "channelId must be "+s.cfg.ChannelID)
		return false
	}
	return true
}

// GET /api/usertoken/GetToken?userId&connectionName[&channelId][&code]
func (s *Service) getToken(w http.ResponseWriter, r *http.Request) {
	botID, ok := s.bot(w, r)
	if !ok {
		return
	}
	q, ok := query(w, r, []string{"userId", "connectionName"}, "channelId", "code")
	if !ok || !s.checkChannel(w, q["channelId"]) || !s.authorizeUser(w, r, botID, q["userId"]) {
		return
	}
	c, ok := s.connection(w, r, botID, q["connectionName"])
	if !ok {
		return
	}
	if code := q["code"]; code != "" {
		if !s.redeem(r.Context(), c, q["userId"], code) {
			notFound(w)
			return
		}
	}
	tr, ok := s.token(r.Context(), c, q["userId"])
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, tr)
}

// DELETE /api/usertoken/SignOut?userId[&connectionName][&channelId]
func (s *Service) signOut(w http.ResponseWriter, r *http.Request) {
	botID, ok := s.bot(w, r)
	if !ok {
		return
	}
	q, ok := query(w, r, []string{"userId"}, "connectionName", "channelId")
	if !ok || !s.checkChannel(w, q["channelId"]) || !s.authorizeUser(w, r, botID, q["userId"]) {
		return
	}
	// Wait for reads refreshing these tokens: a refresh that ended after
	// the delete would store the token again.
	names := []string{q["connectionName"]}
	if names[0] == "" {
		conns, err := s.st.ListOAuthConnections(r.Context(), botID)
		if err != nil {
			s.logger.Error("token service: list connections failed", "err", err)
			writeErr(w, http.StatusInternalServerError, "ServiceError", "the gateway could not sign the user out")
			return
		}
		names = names[:0]
		for _, c := range conns {
			names = append(names, c.Name)
		}
		sort.Strings(names) // one order: two sign-outs cannot deadlock
	}
	for _, name := range names {
		defer s.tokenLocks.lock(pendingKey(botID, q["userId"], name))()
	}
	n, err := s.st.DeleteUserTokens(r.Context(), botID, q["userId"], q["connectionName"])
	if err != nil {
		s.logger.Error("token service: sign-out failed", "err", err)
		writeErr(w, http.StatusInternalServerError, "ServiceError", "the gateway could not sign the user out")
		return
	}
	s.dropPending(botID, q["userId"], q["connectionName"])
	s.logger.Info("user signed out", "bot", botID, "user", q["userId"], "connection", q["connectionName"], "tokens_deleted", n)
	writeJSON(w, http.StatusOK, map[string]any{})
}

// TokenStatus is one entry of GetTokenStatus.
type TokenStatus struct {
	ChannelID                  string `json:"channelId"`
	ConnectionName             string `json:"connectionName"`
	HasToken                   bool   `json:"hasToken"`
	ServiceProviderDisplayName string `json:"serviceProviderDisplayName"`
}

// GET /api/usertoken/GetTokenStatus?userId[&channelId][&include]
func (s *Service) getTokenStatus(w http.ResponseWriter, r *http.Request) {
	botID, ok := s.bot(w, r)
	if !ok {
		return
	}
	q, ok := query(w, r, []string{"userId"}, "channelId", "include")
	if !ok || !s.checkChannel(w, q["channelId"]) || !s.authorizeUser(w, r, botID, q["userId"]) {
		return
	}
	conns, err := s.st.ListOAuthConnections(r.Context(), botID)
	if err != nil {
		s.logger.Error("token service: list connections failed", "err", err)
		writeErr(w, http.StatusInternalServerError, "ServiceError", "the gateway could not complete the request")
		return
	}
	include := map[string]bool{}
	for _, n := range strings.Split(q["include"], ",") {
		if n = strings.TrimSpace(n); n != "" {
			include[n] = true
		}
	}
	out := []TokenStatus{}
	for _, c := range conns {
		if len(include) > 0 && !include[c.Name] {
			continue
		}
		t, err := s.st.GetUserToken(r.Context(), botID, q["userId"], c.Name)
		has := err == nil && s.now().Before(t.ExpiresAt)
		out = append(out, TokenStatus{ChannelID: s.cfg.ChannelID, ConnectionName: c.Name, HasToken: has, ServiceProviderDisplayName: DisplayName(c.Kind)})
	}
	writeJSON(w, http.StatusOK, out)
}

// POST /api/usertoken/exchange: single sign-on (on-behalf-of) exchange,
// which no connection supports yet; botbuilder's OAuthPrompt answers the
// client's signin/tokenExchange with a failure and the user signs in
// with the card.
func (s *Service) exchange(w http.ResponseWriter, r *http.Request) {
	botID, ok := s.bot(w, r)
	if !ok {
		return
	}
	q, ok := query(w, r, []string{"userId", "connectionName"}, "channelId")
	if !ok || !s.checkChannel(w, q["channelId"]) || !s.authorizeUser(w, r, botID, q["userId"]) {
		return
	}
	if _, ok := s.connection(w, r, botID, q["connectionName"]); !ok {
		return
	}
	writeErr(w, http.StatusBadRequest, "ConsentRequired", "this connection cannot exchange tokens (single sign-on): the user must sign in with the card")
}

// POST /api/usertoken/GetAadTokens: Entra v1 resource tokens, not
// supported.
func (s *Service) getAadTokens(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.bot(w, r); !ok {
		return
	}
	writeErr(w, http.StatusBadRequest, "NotSupported", "GetAadTokens (Azure AD v1 resource tokens) is not supported: use a connection whose scopes name the resource and GetToken")
}
