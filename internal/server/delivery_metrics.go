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

// deadLetterCountEvery is how stale parley_outbox_dead_letters may be.
const deadLetterCountEvery = 10 * time.Second

// registerDeliveryMetrics exposes the outbox dead letters: how many are
// stored now (whoever made them: any process, before a restart) and how
// many this process made.
//
// /metrics is reachable by anyone who reaches the listener, so the count
// (a query) is taken at most once per deadLetterCountEvery, however often
// it is scraped.
func registerDeliveryMetrics(reg *prometheus.Registry, st store.Store, d *connector.Delivery) {
	var (
		mu    sync.Mutex
		at    time.Time
		count = math.NaN()
	)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_outbox_dead_letters", Help: "Outbox items in the dead letters (not delivered; list with 'parley deliveries dead list')."}, func() float64 {
			mu.Lock()
			defer mu.Unlock()
			if !at.IsZero() && time.Since(at) < deadLetterCountEvery {
				return count
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := st.CountDeadLetters(ctx)
			at, count = time.Now(), float64(n)
			if err != nil {
				count = math.NaN()
			}
			return count
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_outbox_dead_lettered_total", Help: "Outbox items this process moved to the dead letters (refused by the bot, or not delivered within bots.delivery_retry_for)."}, func() float64 {
			return float64(d.DeadLettered())
		}),
	)
}
