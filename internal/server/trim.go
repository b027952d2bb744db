package server

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// idleTrimmer returns freed memory to the operating system once the
// gateway has seen no HTTP request for a while. A gateway spends most of
// its life holding idle conversations; without this, the Go runtime keeps
// the heap it grew during their setup (up to twice the live heap) resident.
type idleTrimmer struct {
	requests atomic.Int64
	idleFor  time.Duration
	check    time.Duration
	trim     func()
}

func newIdleTrimmer() *idleTrimmer {
	return &idleTrimmer{idleFor: time.Minute, check: 15 * time.Second, trim: debug.FreeOSMemory}
}

// seen records a request.
func (t *idleTrimmer) seen() { t.requests.Add(1) }

// run trims once per idle period until ctx ends.
func (t *idleTrimmer) run(ctx context.Context) {
	tick := time.NewTicker(t.check)
	defer tick.Stop()
	last, quietSince, trimmed := t.requests.Load(), time.Now(), false
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			n := t.requests.Load()
			if n != last {
				last, quietSince, trimmed = n, now, false
				continue
			}
			if !trimmed && now.Sub(quietSince) >= t.idleFor {
				t.trim()
				trimmed = true
			}
		}
	}
}
