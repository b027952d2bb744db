package server

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/store"
)

// deadLetterCountEvery is how stale the metrics taken by a store query
// (parley_outbox_dead_letters, parley_outbox_pending,
// parley_outbox_oldest_age_seconds) may be.
const deadLetterCountEvery = 10 * time.Second

// cached runs query at most once per deadLetterCountEvery, however often
// it is asked: whoever reaches the metrics listener cannot make the store
// work harder by scraping faster.
type cached[T any] struct {
	query func(context.Context) (T, error)

	mu  sync.Mutex
	at  time.Time
	v   T
	err error
}

func (c *cached[T]) get() (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < deadLetterCountEvery {
		return c.v, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.v, c.err = c.query(ctx)
	c.at = time.Now()
	return c.v, c.err
}

type outboxStats struct {
	pending int
	oldest  time.Time
}

// registerDeliveryMetrics exposes the bot deliveries: what the outbox
// holds now (whoever queued it: any process, before a restart), its dead
// letters, and what this process's delivery worker does.
func registerDeliveryMetrics(reg *prometheus.Registry, st store.Store, d *connector.Delivery) {
	dead := &cached[int]{query: st.CountDeadLetters}
	outbox := &cached[outboxStats]{query: func(ctx context.Context) (outboxStats, error) {
		n, oldest, err := st.OutboxStats(ctx)
		return outboxStats{n, oldest}, err
	}}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_outbox_dead_letters", Help: "Outbox items in the dead letters (not delivered; list with 'parley deliveries dead list'). Up to 10 s old."}, func() float64 {
			n, err := dead.get()
			if err != nil {
				return math.NaN()
			}
			return float64(n)
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_outbox_dead_lettered_total", Help: "Outbox items this process moved to the dead letters (refused by the bot, or not delivered within bots.delivery_retry_for)."}, func() float64 {
			return float64(d.DeadLettered())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_outbox_pending", Help: "Deliveries queued for bots: the outbox's items, due or waiting for a retry (not the dead letters). Up to 10 s old."}, func() float64 {
			s, err := outbox.get()
			if err != nil {
				return math.NaN()
			}
			return float64(s.pending)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_outbox_oldest_age_seconds", Help: "Age of the oldest queued delivery (0: none queued); it grows while a bot is down. The oldest is looked up at most every 10 s."}, func() float64 {
			s, err := outbox.get()
			if err != nil {
				return math.NaN()
			}
			if s.oldest.IsZero() {
				return 0
			}
			return max(time.Since(s.oldest).Seconds(), 0)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_deliveries_in_flight", Help: "Deliveries being posted to bots now."}, func() float64 {
			return float64(d.Stats().InFlight)
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_delivery_attempts_total", Help: "Delivery attempts (POSTs to bots) made by this process."}, func() float64 {
			return float64(d.Stats().Attempts)
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_deliveries_retried_total", Help: "Failed delivery attempts scheduled for a retry (with backoff) by this process."}, func() float64 {
			return float64(d.Stats().Retried)
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_deliveries_delivered_total", Help: "Deliveries a bot accepted, by this process."}, func() float64 {
			return float64(d.Stats().Delivered)
		}),
	)
}
