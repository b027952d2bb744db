package guard

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// GuessConfig tunes Guesses.
type GuessConfig struct {
	// Budget is how many failed authentications one client address may
	// make before it is slowed down (default 10).
	Budget int
	// Window is how long the budget takes to refill completely (default 15m).
	Window time.Duration
	// Interval: an address over budget gets one credential check per
	// Interval (default 1s).
	Interval time.Duration
	// MaxWait is the longest a check waits for its turn; a request that
	// would wait longer is refused unchecked (default 5s).
	MaxWait time.Duration
	// MaxWaiting caps the requests waiting for a turn, all addresses
	// together (default 1000); past it requests are refused unchecked.
	MaxWaiting int
	// MaxKeys caps the addresses tracked (default 20,000).
	MaxKeys int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx ends (default a timer); tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Guesses throttles credential guessing per client address without ever
// refusing a correct credential because of someone else's failures.
//
// Each address has a failure budget (a token bucket: Budget failures,
// refilled over Window). Within it, credentials are checked at once.
// An address over its budget is slowed, not locked out: its requests are
// paced to one check per Interval (a second bucket of burst 1), each
// request waiting for its turn in its own handler goroutine. A request
// whose turn is more than MaxWait away, or that would raise the number of
// waiting requests past MaxWaiting, is refused with 429 without its
// credential being checked. So an address can have at most about
// MaxWait/Interval requests waiting and gets at most one guess checked per
// Interval, whatever its concurrency, and the waiting goroutines are
// bounded in total. A correct credential sent by a slowed address is still
// checked in its turn and succeeds; one sent from any other address is
// never affected. There is no lockout per account (app id): the account
// id is public, so such a lockout is a denial of service for anyone.
type Guesses struct {
	cfg      GuessConfig
	failures *table
	pace     *table
	waiting  atomic.Int64
	memCfg   MemoryConfig
}

// NewGuesses builds the throttle.
func NewGuesses(cfg GuessConfig) *Guesses {
	if cfg.Budget <= 0 {
		cfg.Budget = 10
	}
	if cfg.Window <= 0 {
		cfg.Window = 15 * time.Minute
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Second
	}
	if cfg.MaxWaiting <= 0 {
		cfg.MaxWaiting = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	now := cfg.Now()
	return &Guesses{cfg: cfg,
		failures: &table{buckets: map[string]*rate.Limiter{}, lastSweep: now},
		pace:     &table{buckets: map[string]*rate.Limiter{}, lastSweep: now},
		memCfg:   MemoryConfig{MaxKeys: cfg.MaxKeys, SweepEvery: time.Minute, Now: cfg.Now},
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Guesses) failureRule() Rule {
	return Rule{Name: "guess-failures", PerSecond: float64(g.cfg.Budget) / g.cfg.Window.Seconds(), Burst: g.cfg.Budget}
}

func (g *Guesses) paceRule() Rule {
	return Rule{Name: "guess-pace", PerSecond: 1 / g.cfg.Interval.Seconds(), Burst: 1}
}

func (g *Guesses) mem() MemoryConfig {
	c := g.memCfg
	if c.MaxKeys <= 0 {
		c.MaxKeys = 20_000
	}
	return c
}

// Admission is one credential check let through by Admit.
type Admission struct {
	g       *Guesses
	key     string
	charged bool // a failure was charged to the budget in advance
}

// Admit is called before a credential from address key is checked. It
// returns ok when the check may go ahead, or how long the client should
// wait when it is refused unchecked. Within the budget, a failure is
// charged in advance (refunded by Succeeded), so concurrent requests
// cannot overdraw the budget; over it, the request waits for the
// address's turn.
func (g *Guesses) Admit(ctx context.Context, key string) (adm Admission, retryAfter time.Duration, ok bool) {
	adm = Admission{g: g, key: key}
	now := g.cfg.Now()
	if g.failures.get(Bucket{Rule: g.failureRule(), Key: key}, now, g.mem()).AllowN(now, 1) {
		adm.charged = true
		return adm, 0, true
	}
	res := g.pace.get(Bucket{Rule: g.paceRule(), Key: key}, now, g.mem()).ReserveN(now, 1)
	d := res.DelayFrom(now)
	if d > g.cfg.MaxWait {
		res.CancelAt(now)
		return adm, d, false
	}
	if d <= 0 {
		return adm, 0, true
	}
	if g.waiting.Add(1) > int64(g.cfg.MaxWaiting) {
		g.waiting.Add(-1)
		res.CancelAt(now)
		return adm, d, false
	}
	defer g.waiting.Add(-1)
	if err := g.cfg.Sleep(ctx, d); err != nil {
		return adm, d, false
	}
	return adm, 0, true
}

// Succeeded records that the credential was right: the failure charged
// in advance is refunded.
func (a Admission) Succeeded() {
	if a.charged {
		now := a.g.cfg.Now()
		a.g.failures.get(Bucket{Rule: a.g.failureRule(), Key: a.key}, now, a.g.mem()).AllowN(now, -1)
	}
}

// Failed records that the credential was wrong. over reports that the
// address had already spent its budget (answer 429), retryAfter when it
// will have budget again.
func (a Admission) Failed() (retryAfter time.Duration, over bool) {
	if a.charged {
		return 0, false
	}
	now := a.g.cfg.Now()
	return max(delay(a.g.failures.get(Bucket{Rule: a.g.failureRule(), Key: a.key}, now, a.g.mem()), now), time.Second), true
}

// Waiting is the number of requests waiting for their turn now.
func (g *Guesses) Waiting() int { return int(g.waiting.Load()) }
