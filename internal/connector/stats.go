package connector

import "sync/atomic"

// deliveryStats are the delivery worker's counters for the metrics (this
// process's, since it started).
type deliveryStats struct {
	inFlight  atomic.Int64 // attempts under way (a POST to a bot)
	attempts  atomic.Int64 // attempts made
	retried   atomic.Int64 // failed attempts scheduled for a retry
	delivered atomic.Int64 // items the bot accepted
}

// DeliveryStats is a snapshot of the delivery counters.
type DeliveryStats struct {
	// InFlight is the number of deliveries being posted to bots now.
	InFlight int64
	// Attempts counts delivery attempts made by this process.
	Attempts int64
	// Retried counts failed attempts that were scheduled for a retry
	// (not the ones that became dead letters).
	Retried int64
	// Delivered counts items a bot accepted.
	Delivered int64
	// DeadLettered counts items this process moved to the dead letters.
	DeadLettered int64
}

// Stats returns the delivery counters.
func (d *Delivery) Stats() DeliveryStats {
	return DeliveryStats{
		InFlight:     d.stats.inFlight.Load(),
		Attempts:     d.stats.attempts.Load(),
		Retried:      d.stats.retried.Load(),
		Delivered:    d.stats.delivered.Load(),
		DeadLettered: d.deadLettered.Load(),
	}
}

// posting counts an attempt and marks it in flight; call the result when
// it is over.
func (s *deliveryStats) posting() func() {
	s.attempts.Add(1)
	s.inFlight.Add(1)
	return func() { s.inFlight.Add(-1) }
}
