// Package adminapi is the admin API's HTTP layer: the routes of
// admin.Routes, exactly, behind one middleware (authentication, role,
// bot scope, re-authentication, body rules, security headers), over the
// admin service layer.
package adminapi

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/guard"
)

// MaxBody bounds a request body.
const MaxBody = 64 << 10

// Authenticator says who is asking (the operator package's service).
type Authenticator interface {
	// Authenticate returns the principal of r's session cookie or bearer
	// token; an error wrapping Config.ErrCSRF is a missing or wrong CSRF
	// token (403 csrf), one with a RetryAfter() time.Duration method a
	// rate limit (429 with Retry-After), any other error 401 (or 500, see
	// Config.ErrUnauthenticated).
	Authenticate(r *http.Request) (admin.Principal, error)
	// Reauthenticated reports whether p re-authenticated recently enough
	// for a Reauth route (never a token).
	Reauthenticated(p admin.Principal) bool
}

// OperatorRoutes are the operator package's handlers, keyed by
// admin.Route.Key ("POST /admin/v1/session").
type OperatorRoutes interface {
	Handlers() map[string]http.Handler
}

// Config is what the admin API needs.
type Config struct {
	Service *admin.Service
	Auth    Authenticator
	// Operators serves the session, enrollment, SSO, me, operators and
	// tokens routes; nil: they answer 501 not_implemented.
	Operators OperatorRoutes
	// ErrCSRF is the operator package's CSRF error (errors.Is): 403 csrf.
	ErrCSRF error
	// ErrUnauthenticated is its "not signed in" error: 401. When set, any
	// other Authenticate error is a failure of the server (500, logged);
	// when nil, every Authenticate error is 401.
	ErrUnauthenticated error
	// Recorder records refusals at the edge (denied); the service records
	// the rest. Nil: none.
	Recorder admin.Recorder
	// Audit serves GET /audit and /audit/export; AuditVerify GET
	// /audit/verify (the audit Log's Verify). Nil: 501.
	Audit       AuditLog
	AuditVerify func(ctx context.Context) (any, error)
	Logger      *slog.Logger
	// RecheckEvery is how often a followed audit export checks that the
	// credential that opened it still holds audit.read (0: 30 s).
	RecheckEvery time.Duration
}

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI is the API's OpenAPI 3.1 description.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

type api struct {
	cfg Config
	log *slog.Logger
	// limits holds the limits on reads of the audit log, each of which
	// appends an entry to it (audit.go), stricter than the operator's
	// request rate the Authenticator applies.
	limits *guard.Memory
}

// New returns the admin API's handler: a ServeMux with exactly the routes
// of admin.Routes. It panics when a handler names a route not in the
// table (a programming error).
func New(cfg Config) http.Handler {
	a := &api{cfg: cfg, log: cfg.Logger, limits: guard.NewMemory(guard.MemoryConfig{MaxKeys: 10_000})}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.cfg.Recorder == nil {
		a.cfg.Recorder = admin.NopRecorder{}
	}
	mine := a.handlers()
	var ops map[string]http.Handler
	if cfg.Operators != nil {
		ops = cfg.Operators.Handlers()
	}
	known := map[string]bool{}
	mux := http.NewServeMux()
	paths := http.NewServeMux() // every pattern without its method: 405 vs 404
	seenPath := map[string]bool{}
	for _, rt := range admin.Routes {
		known[rt.Key()] = true
		h, ok := mine[rt.Key()]
		if !ok {
			h, ok = ops[rt.Key()]
		}
		if !ok {
			h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				admin.WriteError(w, http.StatusNotImplemented, admin.CodeNotImplemented, "this route is not available in this build")
			})
		}
		mux.Handle(rt.Key(), a.guard(rt, h))
		if !seenPath[rt.Pattern] {
			seenPath[rt.Pattern] = true
			paths.Handle(rt.Pattern, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				admin.WriteError(w, http.StatusMethodNotAllowed, admin.CodeMethod, "method not allowed on this route")
			}))
		}
	}
	for k := range mine {
		if !known[k] {
			panic(fmt.Sprintf("adminapi: handler for %q, which is not in admin.Routes", k))
		}
	}
	for k := range ops {
		if !known[k] {
			panic(fmt.Sprintf("adminapi: operator handler for %q, which is not in admin.Routes", k))
		}
	}
	return headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		if _, pattern := paths.Handler(r); pattern != "" {
			paths.ServeHTTP(w, r)
			return
		}
		admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, "no such admin route")
	}))
}

// headers sets the security headers of every admin answer.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// guard is the one middleware: body rules, authentication (401), role
// (403), bot scope (404 for a scoped principal), re-authentication
// (403 reauth_required), then the handler with the principal in the
// request's context.
func (a *api) guard(rt admin.Route, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		if r.ContentLength > MaxBody {
			admin.WriteError(w, http.StatusRequestEntityTooLarge, admin.CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxBody))
			return
		}
		if hasBody(r) && !isJSON(r.Header.Get("Content-Type")) {
			admin.WriteError(w, http.StatusUnsupportedMediaType, admin.CodeUnsupported, "send the body as Content-Type: application/json")
			return
		}
		if rt.Public {
			next.ServeHTTP(w, r)
			return
		}
		if a.cfg.Auth == nil {
			admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "no operator sign-in is configured on this server")
			return
		}
		p, err := a.cfg.Auth.Authenticate(r)
		if wait, ok := rateLimited(err); ok {
			tooMany(w, wait, "too many admin requests from this credential or its operator's credentials together: retry in %d s (the limit is operators.request_rate)")
			return
		}
		if err != nil {
			if a.cfg.ErrCSRF != nil && errors.Is(err, a.cfg.ErrCSRF) {
				admin.WriteError(w, http.StatusForbidden, admin.CodeCSRF, "missing or wrong X-CSRF-Token header: reload the console")
				return
			}
			if a.cfg.ErrUnauthenticated != nil && !errors.Is(err, a.cfg.ErrUnauthenticated) {
				a.log.Error("admin: authenticate a request", "err", err)
				admin.WriteError(w, http.StatusInternalServerError, admin.CodeInternal, "could not check the credential; see the server's log")
				return
			}
			admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "sign in first (session cookie or Authorization: Bearer token)")
			return
		}
		ctx := admin.WithPrincipal(r.Context(), p)
		if !admin.Grants(p.Role, rt.Action) || (admin.GatewayWide(rt.Action) && len(p.Bots) > 0) {
			a.denied(ctx, p, rt, r, "role")
			admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, fmt.Sprintf("your role (%s) may not %s (%s)", p.Role, rt.Action.Phrase(), rt.Action))
			return
		}
		if rt.Scope != admin.ScopeNone && len(p.Bots) > 0 {
			kind, id := scopeValue(rt.Scope, r)
			bot, err := a.resolve(ctx, rt.Scope, id)
			if err != nil || !p.Scoped(bot) {
				if err == nil {
					a.denied(ctx, p, rt, r, "scope")
				}
				admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, fmt.Sprintf("no %s %q", kind, id))
				return
			}
		}
		if rt.Reauth && !a.cfg.Auth.Reauthenticated(p) {
			a.denied(ctx, p, rt, r, "reauth")
			admin.WriteError(w, http.StatusForbidden, admin.CodeReauth, "this needs a recent sign-in: re-authenticate (POST /admin/v1/session/reauth) and try again")
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// rateLimited reports whether err is the Authenticator's rate limit (an
// error with a RetryAfter method), and how long to wait.
func rateLimited(err error) (time.Duration, bool) {
	var limited interface{ RetryAfter() time.Duration }
	if !errors.As(err, &limited) {
		return 0, false
	}
	return limited.RetryAfter(), true
}

// tooMany answers 429 with Retry-After: wait rounded up to whole
// seconds, at least 1; format's one %d is those seconds.
func tooMany(w http.ResponseWriter, wait time.Duration, format string) {
	retry := max(1, int((wait+time.Second-1)/time.Second))
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	admin.WriteError(w, http.StatusTooManyRequests, admin.CodeTooMany, fmt.Sprintf(format, retry))
}

func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

func scopeValue(s admin.Scope, r *http.Request) (kind, id string) {
	switch s {
	case admin.ScopeBot:
		return "bot", r.PathValue("bot")
	case admin.ScopeSite:
		return "site", r.PathValue("site")
	case admin.ScopeConversation:
		return "conversation", r.PathValue("conversation")
	case admin.ScopeDeadLetter:
		return "dead letter", r.PathValue("deadletter")
	}
	return "", ""
}

// resolve finds the bot an object of scope s belongs to.
func (a *api) resolve(ctx context.Context, s admin.Scope, id string) (string, error) {
	svc := a.cfg.Service
	switch s {
	case admin.ScopeBot:
		return id, nil
	case admin.ScopeSite:
		return svc.SiteBot(ctx, id)
	case admin.ScopeConversation:
		return svc.ConversationBot(ctx, id)
	case admin.ScopeDeadLetter:
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return "", err
		}
		return svc.DeadLetterBot(ctx, n)
	}
	return "", errors.New("no scope")
}

// deniedTarget names a refused request's object as the service names it
// on success ("site:ID", "conversation:ID"...), so that an object's
// history holds its refusals too; a route without one keeps its path.
func deniedTarget(r *http.Request) string {
	if bot, name := r.PathValue("bot"), r.PathValue("name"); bot != "" && name != "" {
		return "oauth:" + bot + "/" + name
	}
	for _, k := range []string{"operator", "conversation", "deadletter", "site", "bot"} {
		if v := r.PathValue(k); v != "" {
			return k + ":" + v
		}
	}
	return r.URL.Path
}

func (a *api) denied(ctx context.Context, p admin.Principal, rt admin.Route, r *http.Request, reason string) {
	target := deniedTarget(r)
	if err := a.cfg.Recorder.Record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: string(rt.Action), Target: target,
		Outcome: audit.Denied, Client: p.Client, Detail: map[string]string{"reason": reason, "route": rt.Key()}}); err != nil {
		a.log.Error("admin: record a refusal", "err", err)
	}
}
