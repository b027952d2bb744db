package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/guard"
	"github.com/parley-gw/parley/internal/redact"
	"github.com/parley-gw/parley/internal/threat"
)

// threatWatch sees every answer 401, 403 and 429 (whoever wrote it: the
// Direct Line API, the rate limits, the token service, the Bot Connector
// API) and counts it in the threat detector by site, pseudonymized client
// address and user-agent family.
type threatWatch struct {
	det     *threat.Detector
	alerts  *threat.Alerter
	client  *http.Client
	st      threat.Store
	ps      *redact.Pseudonymizer
	proxies guard.Proxies
}

// newThreatWatch builds the detector and its alert rules (reading the
// webhook secrets: a missing or short one fails the start, naming it).
func newThreatWatch(cfg config.Config, st threat.Store, reg prometheus.Registerer, logger *slog.Logger, ps *redact.Pseudonymizer, proxies guard.Proxies) (*threatWatch, error) {
	sc := cfg.Security
	rules := make([]threat.Rule, 0, len(sc.Alerts))
	for i, a := range sc.Alerts {
		r := threat.Rule{Name: a.Name, Threshold: a.Threshold, Window: time.Duration(a.Window), By: a.By, WebhookURL: a.WebhookURL}
		if a.WebhookURL != "" {
			secret, err := a.WebhookSecret()
			if err != nil {
				return nil, fmt.Errorf("security.alerts[%d].webhook_secret_file: %w", i, err)
			}
			r.Secret = secret
		}
		rules = append(rules, r)
	}
	// The bots' SSRF-guarded client: verified TLS, no redirects, no proxy,
	// internal addresses refused at dial unless allowed.
	client := connector.NewBotClient(10*time.Second, cfg.AllowedPrivateNetworks())
	var alerts *threat.Alerter
	if len(rules) > 0 {
		alerts = threat.NewAlerter(rules, threat.AlerterConfig{Client: client}, logger)
	}
	det := threat.New(threat.Config{MaxKeys: sc.MaxKeysPerMinute, FlushEvery: time.Duration(sc.FlushEvery), Retain: time.Duration(sc.Retain), Rules: rules},
		st, alerts, reg, logger)
	return &threatWatch{det: det, alerts: alerts, client: client, st: st, ps: ps, proxies: proxies}, nil
}

// run flushes the counts and checks the rules until ctx ends.
func (t *threatWatch) run(ctx context.Context) { t.det.Run(ctx) }

// wrap counts next's 401, 403 and 429 answers.
func (t *threatWatch) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, outer *http.Request) {
		st := &watched{failureRecorder: failureRecorder{ResponseWriter: w}} // one allocation for both
		rec, note := &st.failureRecorder, &st.note
		r := note.Attach(outer)
		defer func() {
			// The ServeMux sets the route pattern on the request it was
			// given, r: the middleware outside reads it from outer.
			outer.Pattern = r.Pattern
			switch rec.status {
			case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests:
				t.observe(r, note, rec.status)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// observe counts one failure. The client is keyed as the rate limits key
// it (guard.AddrKey: an IPv4 address, an IPv6 /64, which one host can
// rotate through freely), then pseudonymized: the detector never sees the
// address.
func (t *threatWatch) observe(r *http.Request, note *guard.Note, status int) {
	surface, reason, site := note.Get()
	if surface == "" {
		surface = surfaceOf(r.URL.Path)
	}
	if reason == "" {
		reason = map[int]string{401: "unauthorized", 403: "forbidden", 429: "rate_limited"}[status]
	}
	t.det.Observe(threat.Event{Site: site, Client: t.ps.Addr(guard.AddrKey(t.proxies.ClientAddr(r))), UserAgent: threat.UserAgentFamily(r.UserAgent()),
		Status: status, Reason: reason, Surface: surface})
}

// surfaceOf names the surface of a path (bounded: a metric label).
func surfaceOf(path string) string {
	switch {
	case strings.HasPrefix(path, "/v3/directline/"):
		return "directline"
	case path == botauth.STSTokenPath:
		return "token_service"
	case strings.HasPrefix(path, "/v3/"):
		return "connector"
	}
	return "other"
}

// watched is one request's recorder and note.
type watched struct {
	failureRecorder
	note guard.Note
}

// failureRecorder remembers the status written.
type failureRecorder struct {
	http.ResponseWriter
	status int
}

func (f *failureRecorder) WriteHeader(code int) {
	if f.status == 0 {
		f.status = code
	}
	f.ResponseWriter.WriteHeader(code)
}

func (f *failureRecorder) Write(b []byte) (int, error) {
	if f.status == 0 {
		f.status = http.StatusOK
	}
	return f.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and the WebSocket upgrade reach the
// underlying connection.
func (f *failureRecorder) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// RegisterSecurityReport adds GET /security/report?since=1h&top=20 to mux:
// the top offenders as JSON (what `parley security report --json`
// prints). It belongs on the metrics listener, never on the public one.
// The counts still in memory are flushed first, so the report shows an
// attack while it happens.
func (t *threatWatch) RegisterSecurityReport(mux interface {
	Handle(pattern string, h http.Handler)
}) {
	mux.Handle("GET /security/report", http.HandlerFunc(t.serveReport))
}

func (t *threatWatch) serveReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, top, err := threat.ReportParams(q.Get("since"), q.Get("top"))
	for k, v := range q {
		switch {
		case k != "since" && k != "top":
			err = fmt.Errorf("unknown parameter %.32q: the report takes since and top", k)
		case len(v) > 1:
			err = fmt.Errorf("%s is given %d times: give it once", k, len(v))
		}
	}
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "BadArgument", "message": err.Error()}})
		return
	}
	ctx := r.Context()
	_ = t.det.Flush(ctx) // best effort: the report reads what the store has
	now := time.Now()
	rep, err := threat.BuildReport(ctx, t.st, now, now.Add(-since), top)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "ServiceError", "message": "the report could not be read from the store"}})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(rep)
}
