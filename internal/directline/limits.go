package directline

import (
	"fmt"
	"net/http"
	"time"

	"github.com/parley-gw/parley/internal/guard"
)

// Limiter is the rate limiter the Direct Line API asks (guard.Memory in
// one process; a shared store can implement it for several replicas).
// Allow takes a token from every bucket or from none and answers 0, or
// how long to wait.
type Limiter interface {
	Allow(buckets ...guard.Bucket) time.Duration
}

// Route names a rate-limited route.
type Route string

// The rate-limited routes.
const (
	RouteGenerate Route = "generate" // POST /tokens/generate: per address, per site
	RouteRefresh  Route = "refresh"  // POST /tokens/refresh: per address, per conversation
	RouteStart    Route = "start"    // POST /conversations: per address, per site
	RoutePost     Route = "post"     // POST /conversations/{id}/activities: per address, per conversation
	RouteUpload   Route = "upload"   // POST /conversations/{id}/upload: per address, per conversation
	RouteStream   Route = "stream"   // GET /conversations/{id}/stream: per address, per conversation
	// RouteReconnect is GET /conversations/{id}, per address and per
	// conversation: it hands out a fresh token too, so without a limit it
	// would get around the refresh limit.
	RouteReconnect Route = "reconnect"
	RouteHistory   Route = "history" // GET /conversations/{id}/activities: per address, per conversation
)

// RouteLimits are one route's rules: Address per client address (checked
// before authentication, so floods of bad credentials are limited too),
// Scoped per site or conversation (checked after authorization, so that
// nobody can spend another conversation's budget). A zero rule is off.
type RouteLimits struct {
	Address, Scoped guard.Rule
}

// allow checks route's per-address limit; on refusal it has answered 429.
func (a *API) allow(w http.ResponseWriter, r *http.Request, route Route) bool {
	if a.cfg.Limiter == nil {
		return true
	}
	rule := a.cfg.RateLimits[route].Address
	if rule.Off() {
		return true
	}
	return a.limited(w, r, a.cfg.Limiter.Allow(guard.Bucket{Rule: rule, Key: guard.AddrKey(a.clientAddr(r))}))
}

// allowIn checks route's per-site or per-conversation limit for key (a
// site or conversation id, already authorized); on refusal it has
// answered 429.
func (a *API) allowIn(w http.ResponseWriter, r *http.Request, route Route, key string) bool {
	if a.cfg.Limiter == nil {
		return true
	}
	rule := a.cfg.RateLimits[route].Scoped
	if rule.Off() {
		return true
	}
	return a.limited(w, r, a.cfg.Limiter.Allow(guard.Bucket{Rule: rule, Key: key}))
}

// limited answers 429 when wait > 0.
//
// Retry-After is in whole seconds, rounded up, as RFC 9110 and the
// Direct Line service's documentation say. The official client,
// botframework-directlinejs (0.15), reads it as milliseconds: on any 429
// its ajax wrapper waits Number(Retry-After) ms and then passes the error
// on; it never retries a 429 itself. So the value in seconds costs it a
// few milliseconds (no stall), and what follows is its own policy: start,
// post and upload surface the error, refresh and the reconnect GET retry
// after their own 20 s, polling stops (so history limits are sized never
// to meet a polling client). Nothing retries at once, so nothing hammers.
// Sending milliseconds instead would make every RFC-following client
// (SDKs, proxies, scripts) wait a thousand times too long.
// Retry-After-Ms carries the exact wait for clients that want it.
func (a *API) limited(w http.ResponseWriter, r *http.Request, wait time.Duration) bool {
	if wait <= 0 {
		return true
	}
	throttled(w, wait, fmt.Sprintf("Too many requests; retry after %d s", (wait+time.Second-1)/time.Second))
	return false
}

// authFailed logs and counts a failed authentication.
func (a *API) authFailed(r *http.Request, e *apiError) {
	if e == nil || a.cfg.AuthFailures == nil {
		return
	}
	reason := "invalid_credential"
	switch {
	case e.status == http.StatusUnauthorized:
		reason = "missing_credential"
	case e.code == "TokenExpired":
		reason = "expired_token"
	}
	a.cfg.AuthFailures.Record(r, "directline", reason, "route", r.Pattern)
}
