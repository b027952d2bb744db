package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/parley-gw/parley/internal/redact"
)

// HumanDurations returns h writing time.Duration attributes as text
// ("1.502s", "120.35ms", "2m3s") instead of integer nanoseconds (what
// slog's JSON handler prints), at any depth of groups and in attributes
// given to WithAttrs. Other values pass unchanged.
func HumanDurations(h slog.Handler) slog.Handler {
	if _, ok := h.(*durationHandler); ok {
		return h
	}
	return &durationHandler{inner: h}
}

type durationHandler struct{ inner slog.Handler }

func (h *durationHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *durationHandler) Handle(ctx context.Context, r slog.Record) error {
	need := false
	r.Attrs(func(a slog.Attr) bool {
		need = hasDuration(a.Value, 0)
		return !need
	})
	if !need {
		return h.inner.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(humanAttr(a, 0))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *durationHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = humanAttr(a, 0)
	}
	return &durationHandler{inner: h.inner.WithAttrs(out)}
}

func (h *durationHandler) WithGroup(name string) slog.Handler {
	return &durationHandler{inner: h.inner.WithGroup(name)}
}

// maxGroupDepth bounds the groups followed (as the redacting handler does).
const maxGroupDepth = 16

func hasDuration(v slog.Value, depth int) bool {
	switch v.Kind() {
	case slog.KindDuration:
		return true
	case slog.KindGroup:
		if depth >= maxGroupDepth {
			return false
		}
		for _, a := range v.Group() {
			if hasDuration(a.Value, depth+1) {
				return true
			}
		}
	}
	return false
}

func humanAttr(a slog.Attr, depth int) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindDuration:
		return slog.String(a.Key, HumanDuration(a.Value.Duration()))
	case slog.KindGroup:
		if depth >= maxGroupDepth {
			return a
		}
		g := a.Value.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = humanAttr(ga, depth+1)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	}
	return a
}

// HumanDuration is d in Go syntax, rounded to about four significant
// digits: 1.502s, 120.35ms, 2m3.1s, 350µs.
func HumanDuration(d time.Duration) string {
	a := d
	if a < 0 {
		a = -a
	}
	switch {
	case a >= time.Hour:
		d = d.Round(time.Second)
	case a >= time.Minute:
		d = d.Round(100 * time.Millisecond)
	case a >= time.Second:
		d = d.Round(time.Millisecond)
	case a >= time.Millisecond:
		d = d.Round(10 * time.Microsecond)
	case a >= time.Microsecond:
		d = d.Round(time.Microsecond)
	}
	return d.String()
}

// Routes whose requests are logged at debug, not info: orchestrators'
// probes, every few seconds.
func probeRoute(route string) bool { return route == "GET /healthz" || route == "GET /readyz" }

// accessEntry is what the access log line of one request says; taken when
// the handler returns (a stream's line is written when it ends).
type accessEntry struct {
	method, route, client, site string
	status                      int
	start                       time.Time
}

// accessLevel is the level of route's access log line: info (debug for
// probes, and for everything when access_log is false).
func (s *Server) accessLevel(route string) slog.Level {
	if !s.cfg.AccessLog || probeRoute(route) {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// newAccessEntry captures r's entry, or reports that its line would not be
// written at the current level (then nothing is computed).
func (s *Server) newAccessEntry(r *http.Request, route string, status int, start time.Time, site string) (accessEntry, bool) {
	if !s.logger.Enabled(r.Context(), s.accessLevel(route)) {
		return accessEntry{}, false
	}
	e := accessEntry{method: redact.Bounded(r.Method, 32), route: route, status: status, start: start, site: site}
	if a := s.proxies.ClientAddr(r); a.IsValid() {
		e.client = a.String()
	}
	return e, true
}

// logAccess writes the access log line: method, route pattern (never the
// path, whose ids and query are not the operator's to read), status,
// duration, the client address (pseudonymized by the logger), site. No
// header, body, query or token is ever in it. A WebSocket stream's line
// has status 101 and the stream's whole duration.
func (s *Server) logAccess(e accessEntry) {
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs, slog.String("method", e.method), slog.String("route", e.route), slog.Int("status", e.status),
		// Text already (what HumanDurations would make of it): the handler
		// then passes the record on instead of rebuilding it, on every request.
		slog.String("duration", HumanDuration(time.Since(e.start))), redact.Client(e.client))
	if e.site != "" {
		attrs = append(attrs, slog.String("site", e.site))
	}
	msg := "request"
	if e.status == http.StatusSwitchingProtocols {
		msg = "stream ended"
	}
	s.logger.LogAttrs(context.Background(), s.accessLevel(e.route), msg, attrs...)
}
