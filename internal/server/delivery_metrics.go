package server

import (
	"context"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/store"
)

// registerDeliveryMetrics exposes the outbox dead letters: how many are
// stored now (whoever made them: any process, before a restart) and how
// many this process made.
func registerDeliveryMetrics(reg *prometheus.Registry, st store.Store, d *connector.Delivery) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_outbox_dead_letters", Help: "Outbox items in the dead letters (not delivered; list with 'parley deliveries dead list')."}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := st.CountDeadLetters(ctx)
			if err != nil {
				return math.NaN()
			}
			return float64(n)
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_outbox_dead_lettered_total", Help: "Outbox items this process moved to the dead letters (refused by the bot, or not delivered within bots.delivery_retry_for)."}, func() float64 {
			return float64(d.DeadLettered())
		}),
	)
}
