// Package directline serves the Direct Line 3.0 client API
// (/v3/directline/...) that the official Web Chat and DirectLineJS clients
// speak, with enhanced authentication always enforced.
package directline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/guard"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/reqinfo"
	"github.com/parley-gw/parley/internal/store"

	"github.com/parley-gw/parley/internal/redact"
)

// Config is what the Direct Line API needs to know.
type Config struct {
	// PublicURL is the gateway's external base URL (scheme://host[:port]),
	// used for stream URLs, token issuer and serviceUrl.
	PublicURL      string
	TokenTTL       time.Duration
	StreamTokenTTL time.Duration
	SessionTTL     time.Duration
	BotWait        time.Duration // how long a POST waits for the bot
	Limits         conversation.Limits
	MaxUploadBytes int64
	ChannelID      string
	KeepAlive      time.Duration // empty frames on idle streams
	// Rate limits (limits.go): the limiter (nil: none), the rules per
	// route, the client address (trusted proxies) and the auth-failure
	// telemetry (nil: not counted).
	Limiter      Limiter
	RateLimits   map[Route]RouteLimits
	ClientAddr   func(*http.Request) netip.Addr
	AuthFailures *guard.AuthFailures

	// Abuse limits (issue 9); zero means no cap.
	MaxHistoryReads          int // concurrent history reads and stream replays, gateway-wide (queued)
	MaxHistoryReadsPerClient int // concurrent history reads per client address (refused with 429)
	MaxStreamsPerClient      int // open WebSocket streams per client address (refused with 429)
	MaxUploads               int // uploads in progress, gateway-wide (queued)
	MaxUploadsPerClient      int // uploads in progress per client address (queued, then 429)
	// StreamTickets makes stream URLs single-use; nil: in memory.
	StreamTickets StreamTickets
	// WriteBase and MinClientRate (bytes/s) size write deadlines: writing
	// n bytes may take WriteBase + n/MinClientRate.
	WriteBase     time.Duration
	MinClientRate int
}

// Defaults fills unset fields.
func (c Config) Defaults() Config {
	if c.TokenTTL == 0 {
		c.TokenTTL = time.Hour
	}
	if c.StreamTokenTTL == 0 {
		c.StreamTokenTTL = time.Minute
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = time.Hour
	}
	if c.BotWait == 0 {
		c.BotWait = 15 * time.Second
	}
	if c.Limits.MaxBytes == 0 {
		c.Limits = conversation.DefaultLimits
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = 4 << 20
	}
	if c.ChannelID == "" {
		c.ChannelID = "directline"
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 20 * time.Second
	}
	return c
}

// ServiceURL is the serviceUrl given to bots (with a trailing slash, as
// the SDK's serviceurl claim check compares it verbatim).
func (c Config) ServiceURL() string { return strings.TrimRight(c.PublicURL, "/") + "/" }

// DeliveryWatcher reports the outcome of delivering an activity to its bot
// (the Bot Connector side implements it; directline does not import it).
// Watch is called just after the append that enqueued the delivery (a
// result that came first is kept briefly); the channel receives nil once
// the bot has the activity, or an error when it will not get it (a dead
// letter). Until then delivery goes on in the background. cancel releases
// the watch.
type DeliveryWatcher interface {
	Watch(activityID string) (result <-chan error, cancel func())
}

// API is the Direct Line handler set.
type API struct {
	cfg      Config
	st       store.Store
	log      *conversation.Log
	issuer   *identity.Issuer
	delivery DeliveryWatcher
	logger   *slog.Logger
	// base is canceled on shutdown; open streams end with it.
	base context.Context
	// writeCtx is base without its cancellation: stream writes are bounded
	// by their own timeout and end with a close frame, not a cut.
	writeCtx context.Context
	// goneSince is where the next keep-alive round's list of conversations
	// deleted elsewhere starts (owned by the keep-alive goroutine).
	goneSince time.Time
	streams   sync.WaitGroup // stream goroutines
	streamSet streamSet

	sites sync.Map // site id -> cachedSite

	frames sync.Pool // *bytes.Buffer for small stream frames

	reads         *gate // history reads and stream replays
	streamClients *gate // open streams per client
	uploads       *gate // uploads in progress
	tickets       StreamTickets
	preflight     preflightOrigins
}

type cachedSite struct {
	site store.Site
	at   time.Time
}

// siteCacheTTL bounds how long a policy change (origins, enhanced auth)
// takes to reach every request.
const siteCacheTTL = 5 * time.Second

// New builds the API. base is canceled when the server shuts down.
func New(base context.Context, cfg Config, st store.Store, lg *conversation.Log, issuer *identity.Issuer, delivery DeliveryWatcher, logger *slog.Logger) *API {
	a := &API{cfg: cfg.Defaults(), st: st, log: lg, issuer: issuer, delivery: delivery, logger: logger, base: base, writeCtx: context.WithoutCancel(base)}
	a.reads = newGate(a.cfg.MaxHistoryReads, a.cfg.MaxHistoryReadsPerClient)
	a.streamClients = newGate(0, a.cfg.MaxStreamsPerClient)
	a.uploads = newGate(a.cfg.MaxUploads, a.cfg.MaxUploadsPerClient)
	a.tickets = a.cfg.StreamTickets
	if a.tickets == nil {
		a.tickets = NewMemoryTickets()
	}
	a.goneSince = time.Now().Add(-goneOverlap)
	context.AfterFunc(base, a.closeStreams)
	go a.keepAlives()
	return a
}

// WaitStreams closes the open streams and waits for them to end (call it
// after base is canceled).
func (a *API) WaitStreams() {
	a.closeStreams()
	a.streams.Wait()
}

// Register adds the routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	const p = "/v3/directline"
	route := func(method, path string, h http.HandlerFunc) {
		mux.Handle(method+" "+p+path, a.cors(h))
		// Any other method on a known path: 405 in the protocol's shape.
		mux.Handle(p+path, a.cors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			writeError(w, http.StatusMethodNotAllowed, "BadArgument", "method "+r.Method+" is not allowed here")
		})))
	}
	route("POST", "/tokens/generate", a.generate)
	route("POST", "/tokens/refresh", a.refresh)
	route("POST", "/conversations", a.start)
	route("GET", "/conversations/{id}", a.reconnect)
	mux.Handle("POST "+p+"/conversations/{id}/activities", a.cors(http.HandlerFunc(a.postActivity)))
	route("GET", "/conversations/{id}/activities", a.getActivities)
	route("POST", "/conversations/{id}/upload", a.upload)
	route("GET", "/conversations/{id}/stream", a.stream)
	route("GET", "/session/getsessionid", a.getSessionID)
	route("GET", "/static/placeholder.png", a.placeholder)
	mux.Handle(p+"/", a.cors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeError(w, http.StatusNotFound, "BadArgument", "no such Direct Line endpoint")
	})))
}

// --- errors ---

// apiError is an error in the protocol's shape.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, e *apiError) {
	if e.status >= 500 {
		a.logger.Error("direct line request failed", "route", r.Pattern, "status", e.status, "code", e.code, "err", e.message)
	}
	writeError(w, e.status, e.code, e.message)
}

// internal reports an unexpected failure without revealing internals.
func (a *API) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.logger.Error("direct line internal error", "route", r.Pattern, "err", err)
	if errors.Is(err, store.ErrFull) || errors.Is(err, store.ErrStoreReplaced) { // nothing was stored: the client may try again
		writeError(w, http.StatusServiceUnavailable, "ServiceError", "the gateway cannot store anything right now; try again later")
		return
	}
	writeError(w, http.StatusInternalServerError, "ServiceError", "the gateway could not complete the request")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"ServiceError","message":"encoding failed"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// --- authentication ---

// principal is who is calling: a site's secret, or a token.
type principal struct {
	secret bool
	site   store.Site
	claims identity.Claims // token callers only
}

func bearer(r *http.Request) (string, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", errf(http.StatusUnauthorized, "BadArgument", "Missing token or secret")
	}
	scheme, val, ok := strings.Cut(h, " ")
	val = strings.TrimSpace(val)
	if !ok || !strings.EqualFold(scheme, "Bearer") || val == "" {
		return "", errf(http.StatusUnauthorized, "BadArgument", "Authorization must be 'Bearer <token or secret>'")
	}
	return val, nil
}

func (a *API) authenticate(r *http.Request) (p principal, e *apiError) {
	defer func() { a.authFailed(r, e) }()
	defer func() {
		if e == nil {
			reqinfo.SetSite(r.Context(), p.site.ID) // for the access log
		}
	}()
	val, e := bearer(r)
	if e != nil {
		return principal{}, e
	}
	ctx := r.Context()
	switch {
	case identity.LooksLikeToken(val):
		c, err := a.issuer.Verify(val, identity.ScopeConversation)
		if errors.Is(err, identity.ErrTokenExpired) {
			return principal{}, errf(http.StatusForbidden, "TokenExpired", "Token expired")
		}
		if err != nil {
			return principal{}, errf(http.StatusForbidden, "BadArgument", "Invalid token or secret")
		}
		guard.NoteSite(r, c.Site) // signed by us: the site is known (threat detection)
		site, err := a.site(ctx, c.Site)
		if err != nil || site.BotID != c.Bot {
			return principal{}, errf(http.StatusForbidden, "BadArgument", "Invalid token or secret")
		}
		return principal{site: site, claims: c}, nil
	case identity.LooksLikeSecret(val):
		site, err := a.st.SiteBySecretHash(ctx, identity.HashSecret(val))
		if err != nil {
			return principal{}, errf(http.StatusForbidden, "BadArgument", "Invalid token or secret")
		}
		guard.NoteSite(r, site.ID)
		return principal{secret: true, site: site}, nil
	default:
		return principal{}, errf(http.StatusForbidden, "BadArgument", "Invalid token or secret")
	}
}

func (a *API) site(ctx context.Context, id string) (store.Site, error) {
	if v, ok := a.sites.Load(id); ok {
		cs := v.(cachedSite)
		if time.Since(cs.at) < siteCacheTTL {
			return cs.site, nil
		}
	}
	s, err := a.st.GetSite(ctx, id)
	if err != nil {
		a.sites.Delete(id)
		return store.Site{}, err
	}
	a.sites.Store(id, cachedSite{site: s, at: time.Now()})
	return s, nil
}

// conversationFor authorizes p on conversation id.
func (a *API) conversationFor(ctx context.Context, p principal, id string) (store.Conversation, *apiError) {
	if !conversation.ValidID(id) {
		return store.Conversation{}, errf(http.StatusNotFound, "BadArgument", "Conversation not found")
	}
	if !p.secret && p.claims.Conv != id {
		return store.Conversation{}, errf(http.StatusForbidden, "BadArgument", "Token is not valid for this conversation")
	}
	c, err := a.st.GetConversation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		if p.secret {
			return store.Conversation{}, errf(http.StatusForbidden, "BadArgument", "Secret is not valid for this conversation")
		}
		return store.Conversation{}, errf(http.StatusNotFound, "BadArgument", "Conversation not found")
	}
	if err != nil {
		return store.Conversation{}, errf(http.StatusInternalServerError, "ServiceError", "conversation lookup failed")
	}
	if c.SiteID != p.site.ID || c.BotID != p.site.BotID {
		return store.Conversation{}, errf(http.StatusForbidden, "BadArgument", "Credentials are not valid for this conversation")
	}
	if !p.secret && c.UserID != p.claims.User {
		return store.Conversation{}, errf(http.StatusForbidden, "BadArgument", "Token is not valid for this conversation")
	}
	return c, nil
}

// --- origins ---

// NormalizeOrigin returns scheme://host[:port] in lower case with default
// ports dropped, or an error for anything that is not an origin.
func NormalizeOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an origin (want scheme://host[:port])", s)
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return u.Scheme + "://" + host + ":" + port, nil
	}
	return u.Scheme + "://" + host, nil
}

// trustedOrigins is the effective list: the site's static list when it has
// one, otherwise the list bound in the token at generate time.
func trustedOrigins(site store.Site, c identity.Claims) []string {
	if len(site.TrustedOrigins) > 0 {
		return site.TrustedOrigins
	}
	return c.Origins
}

// checkOrigin enforces trusted origins on browser requests (those with an
// Origin header): the site's static list whenever it has one, and with
// enhanced authentication the token's list otherwise. Only a site without
// enhanced authentication and without a list takes any origin.
func checkOrigin(r *http.Request, site store.Site, c identity.Claims) *apiError {
	origin := r.Header.Get("Origin")
	if origin == "" || (!site.EnhancedAuth && len(site.TrustedOrigins) == 0) {
		return nil
	}
	return originAllowed(origin, trustedOrigins(site, c))
}

func originAllowed(origin string, list []string) *apiError {
	if len(list) == 0 {
		return errf(http.StatusForbidden, "ServiceError", "Trusted Origin list is empty.")
	}
	o, err := NormalizeOrigin(origin)
	if err == nil {
		for _, t := range list {
			if t == o {
				return nil
			}
		}
	}
	return errf(http.StatusForbidden, "ServiceError", "The origin is not in the list of trusted origins.")
}

// cors answers preflights and lets browsers read responses. It echoes the
// Origin (never "*"); whether that origin may act is decided per request by
// checkOrigin, and refusals drop the header again so the browser cannot
// read them. Preflights are granted only to origins some site trusts
// (preflightAllowed). Only getsessionid is credentialed. No response under
// /v3/directline may be cached.
func (a *API) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Add("Vary", "Origin")
		normalized, originErr := NormalizeOrigin(origin)
		if origin != "" && originErr == nil {
			h.Set("Access-Control-Allow-Origin", origin)
			if strings.HasSuffix(r.URL.Path, "/session/getsessionid") {
				h.Set("Access-Control-Allow-Credentials", "true")
			}
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if origin != "" && (originErr != nil || !a.preflightAllowed(r.Context(), normalized)) {
				h.Del("Access-Control-Allow-Origin")
				h.Del("Access-Control-Allow-Credentials")
				writeError(w, http.StatusForbidden, "ServiceError", "The origin is not in the list of trusted origins.")
				return
			}
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, x-ms-bot-agent, X-Requested-With, Accept")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuseOrigin answers an origin refusal without CORS read access.
func (a *API) refuseOrigin(w http.ResponseWriter, r *http.Request, e *apiError) {
	w.Header().Del("Access-Control-Allow-Origin")
	w.Header().Del("Access-Control-Allow-Credentials")
	origin := redact.Bounded(r.Header.Get("Origin"), 256) // the client's text: redacted, then bounded
	a.logger.Warn("request from untrusted origin refused", "route", r.Pattern, "origin", origin)
	a.fail(w, r, e)
}

// readBody reads at most limit bytes; more is a 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errf(http.StatusRequestEntityTooLarge, "MessageSizeTooBig", "request body is larger than %d bytes", limit)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, errf(http.StatusRequestTimeout, "BadArgument", "request body was not received in time")
	}
	if err != nil {
		return nil, errf(http.StatusBadRequest, "BadArgument", "could not read request body")
	}
	return body, nil
}
