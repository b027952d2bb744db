package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/redact"
)

// Listeners are the sockets Serve serves.
type Listeners struct {
	// Main is the public listener: Direct Line, the Bot Connector API, the
	// bots' token service, /healthz and /readyz.
	Main net.Listener
	// Metrics is the metrics listener (metrics.listen): /metrics, /healthz,
	// /readyz and the routes added with HandleMetrics, never served on
	// Main. Nil: Serve opens metrics.listen itself (none when it is off).
	Metrics net.Listener
	// Admin is the admin listener (admin.listen): the admin API and the
	// console (admin.go). Nil: Serve opens admin.listen itself (none when
	// it is off).
	Admin net.Listener
}

// ListenMetrics opens the metrics listener of cfg: nil when metrics.listen
// is off. Open it before the first "serving" log line, so that a port in
// use stops the start.
func ListenMetrics(cfg config.Config) (net.Listener, error) {
	if cfg.Metrics.Off() {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Metrics.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w (choose another port, or off)", err)
	}
	return ln, nil
}

// metricsMaxConns caps the metrics listener's open connections: scrapers
// are few. metricsMaxConnsPerClient caps one address's (an IPv4 address
// or an IPv6 /64), so that one client, which needs no token to hold a
// connection open, cannot take them all and stop the scrapes.
const (
	metricsMaxConns          = 64
	metricsMaxConnsPerClient = 8
)

// HandleMetrics adds a route to the metrics listener (behind its bearer
// token when one is configured), e.g. an operator report. Call it before
// Serve.
func (s *Server) HandleMetrics(pattern string, h http.Handler) { s.metricsMux.Handle(pattern, h) }

// MetricsRegisterer is the registry /metrics serves, for collectors added
// after New.
func (s *Server) MetricsRegisterer() prometheus.Registerer { return s.reg }

// registerRuntimeMetrics adds the Go runtime and process collectors
// (go_*, process_*: memory, goroutines, GC, CPU seconds, open file
// descriptors).
func registerRuntimeMetrics(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Token kinds in parley_tokens_issued_total{kind}.
const (
	tokenGenerate  = "directline_generate" // POST /v3/directline/tokens/generate
	tokenRefresh   = "directline_refresh"  // POST /v3/directline/tokens/refresh
	tokenStart     = "directline_start"    // POST /v3/directline/conversations (a conversation token)
	tokenBotAccess = "bot_access"          // the bots' token service
)

// issuedTokenKind names the token a successful response of route issued,
// or "". Each of these routes answers 2xx only with a new token.
func issuedTokenKind(route string) string {
	switch route {
	case "POST /v3/directline/tokens/generate":
		return tokenGenerate
	case "POST /v3/directline/tokens/refresh":
		return tokenRefresh
	case "POST /v3/directline/conversations":
		return tokenStart
	case "POST " + botauth.STSTokenPath:
		return tokenBotAccess
	}
	return ""
}

// streamRoute is the Direct Line WebSocket route.
const streamRoute = "GET /v3/directline/conversations/{id}/stream"

// httpMetrics are the middleware's collectors.
type httpMetrics struct {
	requests      *prometheus.CounterVec
	tokens        *prometheus.CounterVec
	streamsBySite *prometheus.GaugeVec
}

func newHTTPMetrics(reg prometheus.Registerer) httpMetrics {
	m := httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_http_requests_total", Help: "HTTP requests on the main listener by route pattern and status."}, []string{"route", "status"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_tokens_issued_total",
			Help: "Tokens issued: directline_generate and directline_refresh (Direct Line tokens), directline_start (a conversation's token when it starts or resumes), bot_access (the bots' token service)."}, []string{"kind"}),
		streamsBySite: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "parley_open_streams_by_site", Help: "Open Direct Line WebSocket streams by site id."}, []string{"site"}),
	}
	for _, k := range []string{tokenGenerate, tokenRefresh, tokenStart, tokenBotAccess} {
		m.tokens.WithLabelValues(k)
	}
	reg.MustRegister(m.requests, m.tokens, m.streamsBySite)
	return m
}

// metricsGate holds the metrics listener's bearer token (its SHA-256, so
// that the comparison is constant-time whatever the presented length) and
// counts refusals.
type metricsGate struct {
	want    [32]byte
	on      bool
	refused prometheus.Counter
	logger  *slog.Logger

	mu       sync.Mutex
	lastWarn time.Time
	since    int
}

func newMetricsGate(cfg config.Config, reg prometheus.Registerer, logger *slog.Logger) (*metricsGate, error) {
	tok, err := cfg.Metrics.BearerToken()
	if err != nil {
		return nil, err
	}
	g := &metricsGate{logger: logger, refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_metrics_unauthorized_total", Help: "Requests to the metrics listener refused for a missing or wrong bearer token."})}
	if tok != nil {
		g.want, g.on = sha256.Sum256(tok), true
		clear(tok)
	}
	reg.MustRegister(g.refused)
	return g, nil
}

// allowed checks r's "Authorization: Bearer <token>" when a token is set.
func (g *metricsGate) allowed(r *http.Request) bool {
	if !g.on {
		return true
	}
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || len(tok) > 4096 {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], g.want[:]) == 1
}

// refuse counts a refusal, and logs refusals at most once a minute (never
// the presented value).
func (g *metricsGate) refuse(r *http.Request) {
	g.refused.Inc()
	g.mu.Lock()
	g.since++
	n := g.since
	warn := time.Since(g.lastWarn) >= time.Minute
	if warn {
		g.lastWarn, g.since = time.Now(), 0
	}
	g.mu.Unlock()
	if warn {
		g.logger.Warn("metrics listener: request without the bearer token refused (metrics.bearer_token_file)", "refused", n, "client", r.RemoteAddr)
	}
}

// metricsHandler is the metrics listener's whole surface: the bearer token
// first, then the routes. Responses are never cached.
func (s *Server) metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		if !s.metricsGate.allowed(r) {
			s.metricsGate.refuse(r)
			h.Set("WWW-Authenticate", `Bearer realm="parley-metrics"`)
			http.Error(w, "unauthorized: send the token of metrics.bearer_token_file as 'Authorization: Bearer <token>'", http.StatusUnauthorized)
			return
		}
		s.metricsMux.ServeHTTP(w, r)
	})
}

// registerMetricsRoutes fills the metrics listener's mux.
func (s *Server) registerMetricsRoutes(health, ready http.HandlerFunc) {
	s.metricsMux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	s.metricsMux.HandleFunc("GET /healthz", health)
	s.metricsMux.HandleFunc("GET /readyz", ready)
}

// metricsServer is the metrics listener's HTTP server: short timeouts (no
// streams here), small headers.
func (s *Server) metricsServer() *http.Server {
	return &http.Server{
		Handler:           s.metricsHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Duration(s.cfg.Timeouts.Idle),
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(redact.AddrsInMessage(s.redactLog), slog.LevelWarn),
	}
}

// capMetricsListener bounds the metrics listener's connections.
func (s *Server) capMetricsListener(ln net.Listener) net.Listener {
	return &capListener{Listener: ln, max: metricsMaxConns, perClient: metricsMaxConnsPerClient,
		refused: func(string) {},
		warn: func(limit string, open int, client string) {
			s.logger.Warn("metrics listener: connection limit reached: new connections are closed", "limit", limit,
				"max", metricsMaxConns, "max_per_client", metricsMaxConnsPerClient, "open", open, "client", client)
		},
		byAddr: map[string]int{}, last: map[string]time.Time{}}
}
