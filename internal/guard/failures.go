package guard

import (
	"log/slog"
	"net/http"
	"sync"

	"golang.org/x/time/rate"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-gw/parley/internal/redact"
)

// AuthFailures logs and counts failed authentications, for threat
// detection: parley_auth_failures_total{surface,reason}. Each log line
// names the surface, the reason, the client address and the user agent,
// plus what the caller adds (an app id); never a credential.
type AuthFailures struct {
	logger     *slog.Logger
	clientAddr func(*http.Request) string
	total      *prometheus.CounterVec
	// lines bounds the log lines: failures come from outside, as fast as
	// an attacker rotating addresses likes; the counter counts them all,
	// the log gets at most logBurst at once and logPerSecond after that,
	// and says how many it left out.
	lines      *rate.Limiter
	mu         sync.Mutex
	suppressed int
}

const (
	logPerSecond = 20
	logBurst     = 100
)

// NewAuthFailures registers the counter on reg (which may be nil).
func NewAuthFailures(reg prometheus.Registerer, logger *slog.Logger, proxies Proxies) *AuthFailures {
	f := &AuthFailures{logger: logger, lines: rate.NewLimiter(logPerSecond, logBurst),
		clientAddr: func(r *http.Request) string { return proxies.ClientAddr(r).String() },
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_auth_failures_total",
			Help: "Failed authentications by surface (token_service, directline) and reason."}, []string{"surface", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(f.total)
	}
	return f
}

// Record logs and counts one failure (site unknown).
func (f *AuthFailures) Record(r *http.Request, surface, reason string, attrs ...any) {
	f.RecordSite(r, "", surface, reason, attrs...)
}

// RecordSite logs and counts one failure of a caller whose credential
// named site ("" when unknown), and notes it for the threat detector
// (NoteFailure, NoteSite).
func (f *AuthFailures) RecordSite(r *http.Request, site, surface, reason string, attrs ...any) {
	NoteFailure(r, surface, reason)
	if site != "" {
		NoteSite(r, site)
		attrs = append(attrs, "site", site)
	}
	if f == nil {
		return
	}
	f.total.WithLabelValues(surface, reason).Inc()
	f.mu.Lock()
	if !f.lines.Allow() {
		f.suppressed++
		f.mu.Unlock()
		return
	}
	left := f.suppressed
	f.suppressed = 0
	f.mu.Unlock()
	args := append([]any{"surface", surface, "reason", reason, "client_addr", f.clientAddr(r), "user_agent", redact.Bounded(r.UserAgent(), 256)}, attrs...)
	if left > 0 {
		args = append(args, "not_logged_before", left)
	}
	f.logger.Warn("client authentication failed", args...)
}

// Counted counts a failure without logging it: for requests refused
// unchecked while their address is slowed down, which an attacker can send
// as fast as it likes (the log would be flooded; the counter is not).
func (f *AuthFailures) Counted(surface, reason string) {
	if f != nil {
		f.total.WithLabelValues(surface, reason).Inc()
	}
}

// CountedFor is Counted that also notes the failure on r for the threat
// detector (NoteFailure).
func (f *AuthFailures) CountedFor(r *http.Request, surface, reason string) {
	NoteFailure(r, surface, reason)
	if f != nil {
		f.total.WithLabelValues(surface, reason).Inc()
	}
}

// Count is the number of failures recorded for surface and reason.
func (f *AuthFailures) Count(surface, reason string) float64 {
	c, err := f.total.GetMetricWithLabelValues(surface, reason)
	if err != nil {
		return 0
	}
	return counterValue(c)
}
