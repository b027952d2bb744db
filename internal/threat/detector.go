// Package threat counts authentication failures (401, 403 and 429 answers
// and the token service's refusals) by site, pseudonymized client address
// and user-agent family, keeps the counts per minute in the store so that
// `parley security report` and GET /security/report read them from any
// replica, and fires the configured alert rules (a log event and a signed
// webhook).
package threat

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-gw/parley/internal/store"
)

// Store is what the detector needs of the store.
type Store interface {
	AddAuthFailures(ctx context.Context, counts []store.AuthFailureCount) error
	TopAuthFailures(ctx context.Context, since time.Time, top int) ([]store.AuthFailureCount, error)
	AuthFailureTotals(ctx context.Context, since time.Time, by []string, min int64, limit int) ([]store.AuthFailureCount, error)
	AuthFailureSeries(ctx context.Context, since time.Time, bucket time.Duration, site, client, userAgent string) ([]store.AuthFailureCount, error)
	PruneAuthFailures(ctx context.Context, before time.Time) (int64, error)
	ClaimAlert(ctx context.Context, rule, key string, now time.Time, window time.Duration) (bool, error)
}

// OverflowClient is the client pseudonym of the failures counted after a
// minute reached MaxKeys distinct keys (an attacker rotating addresses).
const OverflowClient = "other"

// Config tunes a Detector.
type Config struct {
	// MaxKeys caps the distinct keys (site, client, user-agent family,
	// status, reason) of one minute, across flushes (so the store gets at
	// most MaxKeys rows a minute, plus the bounded overflow rows), and the
	// keys held in memory between flushes; failures past it are counted
	// under client OverflowClient (default 10,000).
	MaxKeys int
	// FlushEvery is how often counts go to the store and alert rules are
	// checked (default 10 s).
	FlushEvery time.Duration
	// Retain is how long the store keeps minutes (default 7 days).
	Retain time.Duration
	// Rules are the alert rules (none: no alerts).
	Rules []Rule
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Event is one failed request.
type Event struct {
	Site string
	// Client is the client address's pseudonym, never the address.
	Client string
	// UserAgent is the family (UserAgentFamily), never the header.
	UserAgent string
	Status    int
	Reason    string
	Surface   string
}

type key struct {
	site, client, ua string
	status           int
	reason           string
}

type cell struct {
	n           int64
	first, last time.Time
}

// Detector aggregates failures in memory, per minute and bounded, and
// flushes them to the store.
type Detector struct {
	cfg      Config
	st       Store
	logger   *slog.Logger
	alerts   *Alerter
	refusals *prometheus.CounterVec
	observed *prometheus.CounterVec
	overflow prometheus.Counter

	mu      sync.Mutex
	minutes map[int64]map[key]*cell
	held    int // cells in minutes
	// admitMinute is the latest minute observed and admitted the keys
	// counted in it since it began (flushes do not reset it; at most
	// MaxKeys).
	admitMinute int64
	admitted    map[key]struct{}
	flushMu     sync.Mutex
}

// New builds a detector; reg (may be nil) gets
// parley_rate_limit_refusals_total{surface},
// parley_auth_failures_observed_total{surface,status} and
// parley_threat_overflow_total. alerts may be nil (no rules).
func New(cfg Config, st Store, alerts *Alerter, reg prometheus.Registerer, logger *slog.Logger) *Detector {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 10_000
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 10 * time.Second
	}
	if cfg.Retain <= 0 {
		cfg.Retain = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Detector{cfg: cfg, st: st, logger: logger, alerts: alerts, minutes: map[int64]map[key]*cell{},
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_rate_limit_refusals_total",
			Help: "Requests answered 429 (a rate limit, a per-client cap or the token service's guess throttle), by surface (directline, token_service, connector, other)."}, []string{"surface"}),
		observed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_auth_failures_observed_total",
			Help: "Answers 401, 403 and 429 counted by the threat detector, by surface and status."}, []string{"surface", "status"}),
		overflow: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_threat_overflow_total",
			Help: "Failures counted under client \"other\" because a minute already held the maximum of distinct keys (many client addresses at once)."}),
	}
	for _, s := range []string{"directline", "token_service", "connector", "other"} {
		d.refusals.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(d.refusals, d.observed, d.overflow)
	}
	return d
}

// Observe counts one failure. It never blocks on the store.
func (d *Detector) Observe(e Event) {
	if e.Status == 429 {
		d.refusals.WithLabelValues(e.Surface).Inc()
	}
	d.observed.WithLabelValues(e.Surface, statusText(e.Status)).Inc()
	now := d.cfg.Now()
	m := now.Truncate(time.Minute).Unix()
	k := key{site: e.Site, client: e.Client, ua: e.UserAgent, status: e.Status, reason: e.Reason}
	d.mu.Lock()
	defer d.mu.Unlock()
	if m > d.admitMinute || d.admitted == nil {
		d.admitMinute, d.admitted = m, make(map[key]struct{})
	}
	d.addLocked(m, k, 1, now, now, true)
}

// addLocked adds n failures of key k in minute m. fresh: an observed
// failure (a new key counts against the minute's admissions); otherwise
// counts put back after a failed flush (admitted already).
func (d *Detector) addLocked(m int64, k key, n int64, first, last time.Time, fresh bool) {
	cells := d.minutes[m]
	if cells == nil {
		cells = map[key]*cell{}
		d.minutes[m] = cells
	}
	c := cells[k]
	if c == nil {
		_, known := d.admitted[k]
		if d.held >= d.cfg.MaxKeys || (fresh && !known && len(d.admitted) >= d.cfg.MaxKeys) {
			// Past the cap only the overflow rows grow, one per site,
			// family, status and reason (all bounded).
			d.overflow.Add(float64(n))
			k.client = OverflowClient
			c = cells[k]
		}
		if c == nil {
			c = &cell{first: first}
			cells[k] = c
			d.held++
			if fresh && k.client != OverflowClient {
				d.admitted[k] = struct{}{}
			}
		}
	}
	c.n += n
	if first.Before(c.first) {
		c.first = first
	}
	if last.After(c.last) {
		c.last = last
	}
}

// Held is the number of keys held in memory (tests).
func (d *Detector) Held() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.held
}

// Flush writes the counts held to the store. On failure they are kept
// (within MaxKeys) for the next flush.
func (d *Detector) Flush(ctx context.Context) error {
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	d.mu.Lock()
	minutes := d.minutes
	d.minutes, d.held = map[int64]map[key]*cell{}, 0
	d.mu.Unlock()
	var rows []store.AuthFailureCount
	for m, cells := range minutes {
		for k, c := range cells {
			rows = append(rows, store.AuthFailureCount{Minute: time.Unix(m, 0).UTC(), Site: k.site, Client: k.client, UserAgent: k.ua,
				Status: k.status, Reason: k.reason, Count: c.n, FirstSeen: c.first, LastSeen: c.last})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if err := d.st.AddAuthFailures(ctx, rows); err != nil {
		d.mu.Lock()
		for m, cells := range minutes {
			for k, c := range cells {
				d.addLocked(m, k, c.n, c.first, c.last, false)
			}
		}
		d.mu.Unlock()
		return err
	}
	return nil
}

// Run flushes every FlushEvery and checks the alert rules after each
// flush, prunes minutes older than Retain every hour, and flushes once
// more when ctx ends (before the caller closes the store).
func (d *Detector) Run(ctx context.Context) {
	d.alerts.Start()
	t := time.NewTicker(d.cfg.FlushEvery)
	defer t.Stop()
	var pruned time.Time
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := d.Flush(fctx); err != nil {
				d.logger.Error("threat detection: final flush of authentication failure counts failed", "err", err)
			}
			cancel()
			d.alerts.Close()
			return
		case <-t.C:
		}
		d.Tick(ctx)
		if now := d.cfg.Now(); now.Sub(pruned) >= time.Hour {
			pruned = now
			if _, err := d.st.PruneAuthFailures(ctx, now.Add(-d.cfg.Retain)); err != nil && ctx.Err() == nil {
				d.logger.Error("threat detection: pruning old authentication failure counts failed", "err", err)
			}
		}
	}
}

// Tick flushes and checks the alert rules once.
func (d *Detector) Tick(ctx context.Context) {
	if err := d.Flush(ctx); err != nil {
		if ctx.Err() == nil {
			d.logger.Error("threat detection: storing authentication failure counts failed; kept for the next flush", "err", err)
		}
		return
	}
	d.alerts.Check(ctx, d.st, d.cfg.Now())
}

func statusText(s int) string {
	switch s {
	case 401:
		return "401"
	case 403:
		return "403"
	case 429:
		return "429"
	}
	return "other"
}
