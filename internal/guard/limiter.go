package guard

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Rule is one rate limit: Burst events at once, refilled at PerSecond.
// A zero Rule (Burst 0) is off: it allows everything.
type Rule struct {
	// Name identifies the rule's buckets ("post/conversation").
	Name      string
	PerSecond float64
	Burst     int
}

// Off reports whether the rule limits nothing.
func (r Rule) Off() bool { return r.Burst <= 0 || r.PerSecond <= 0 }

// Bucket is one rule applied to one key (an address, site or conversation).
type Bucket struct {
	Rule Rule
	Key  string
}

// MemoryConfig tunes Memory.
type MemoryConfig struct {
	// MaxKeys caps the buckets kept per rule (default 20,000: about 2.8 MB
	// per rule at the ~140 bytes a bucket costs, see TestMemoryPerKey).
	MaxKeys int
	// SweepEvery is how often full (idle) buckets are dropped (default 1m).
	SweepEvery time.Duration
	// Now is the clock (default time.Now); tests pass a fake one.
	Now func() time.Time
	// Registerer, when set, gets parley_rate_limited_total{limit}.
	Registerer prometheus.Registerer
}

// Memory is an in-process Limiter with bounded memory. Each rule has its
// own table, so churn in one (an attacker rotating addresses) never
// evicts another's buckets (sites, conversations). A bucket that has
// refilled to its burst is idle and dropping it loses nothing; sweeps
// drop those. If a table still reaches MaxKeys (keys created faster than
// they refill), arbitrary buckets are dropped until it is at 7/8 of the
// cap: memory stays bounded, and the keys dropped start afresh, so the
// limit fails open for them rather than refusing anyone.
type Memory struct {
	cfg     MemoryConfig
	now     atomic.Pointer[func() time.Time]
	refused *prometheus.CounterVec
	mu      sync.Mutex
	tables  map[string]*table
}

type table struct {
	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// NewMemory builds an empty in-memory limiter.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 20_000
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Memory{cfg: cfg, tables: map[string]*table{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_rate_limited_total",
			Help: "Requests refused with 429 by a rate limit (route/scope)."}, []string{"limit"})}
	m.now.Store(&cfg.Now)
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(m.refused)
	}
	return m
}

// SetNow replaces the clock (tests).
func (m *Memory) SetNow(now func() time.Time) { m.now.Store(&now) }

// Refused is how many requests rule name refused.
func (m *Memory) Refused(name string) float64 { return counterValue(m.refused.WithLabelValues(name)) }

// Allow takes one token from every bucket, or from none: it answers 0
// when the event may proceed, or how long to wait before all buckets
// would allow it. (Callers declare the interface they need, such as
// directline.Limiter; a shared store can implement it for replicas.)
func (m *Memory) Allow(buckets ...Bucket) time.Duration {
	now := (*m.now.Load())()
	var lims [4]*rate.Limiter
	var names [4]string
	ls, ns := lims[:0], names[:0]
	var wait time.Duration
	refusedBy := ""
	for _, b := range buckets {
		if b.Rule.Off() {
			continue
		}
		l := m.table(b.Rule.Name).get(b, now, m.cfg)
		if d := delay(l, now); d > wait {
			wait, refusedBy = d, b.Rule.Name
		}
		ls, ns = append(ls, l), append(ns, b.Rule.Name)
	}
	if wait > 0 {
		m.refused.WithLabelValues(refusedBy).Inc()
		return wait
	}
	for i, l := range ls {
		if !l.AllowN(now, 1) { // a concurrent caller took the last token
			for _, prev := range ls[:i] {
				prev.AllowN(now, -1) // give it back
			}
			m.refused.WithLabelValues(ns[i]).Inc()
			return max(delay(l, now), time.Millisecond)
		}
	}
	return 0
}

// Len is the number of buckets held (for tests and metrics).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, t := range m.tables {
		t.mu.Lock()
		n += len(t.buckets)
		t.mu.Unlock()
	}
	return n
}

// delay is how long until l holds one token.
func delay(l *rate.Limiter, now time.Time) time.Duration {
	tok := l.TokensAt(now)
	if tok >= 1 {
		return 0
	}
	secs := (1 - tok) / float64(l.Limit())
	if math.IsInf(secs, 0) || secs > 1e6 {
		return time.Duration(1e6) * time.Second
	}
	return max(time.Duration(secs*float64(time.Second)), time.Millisecond)
}

func (m *Memory) table(name string) *table {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tables[name]
	if t == nil {
		t = &table{buckets: map[string]*rate.Limiter{}, lastSweep: (*m.now.Load())()}
		m.tables[name] = t
	}
	return t
}

func (t *table) get(b Bucket, now time.Time, cfg MemoryConfig) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.lastSweep) >= cfg.SweepEvery {
		t.sweep(now)
	}
	l := t.buckets[b.Key]
	if l == nil {
		if len(t.buckets) >= cfg.MaxKeys {
			t.sweep(now)
			for k := range t.buckets { // map order: arbitrary
				if len(t.buckets) < cfg.MaxKeys*7/8 {
					break
				}
				delete(t.buckets, k)
			}
		}
		l = rate.NewLimiter(rate.Limit(b.Rule.PerSecond), b.Rule.Burst)
		// Start the bucket full at now, so that a fake clock far from the
		// zero time behaves like the real one.
		l.SetBurstAt(now, b.Rule.Burst)
		t.buckets[b.Key] = l
	}
	return l
}

// sweep drops idle buckets: those refilled to their burst.
func (t *table) sweep(now time.Time) {
	t.lastSweep = now
	for k, l := range t.buckets {
		if l.TokensAt(now) >= float64(l.Burst()) {
			delete(t.buckets, k)
		}
	}
}
