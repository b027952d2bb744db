package directline

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/guard"
)

// Byte bounds of what one connection makes the gateway hold (issue 9,
// finding 4). An activity is at most Limits.MaxBytes (plus the members
// Parley stamps), so a page or frame always fits at least one.
const (
	// maxSetBytes bounds one history page and one stream frame.
	maxSetBytes = 4 << 20
	// chunkBytes bounds one read from the store: pages and replays are
	// read in chunks of at most chunkBytes plus one activity (the store
	// stops reading at the byte bound) and written as they are read, so a
	// connection holds one chunk at a time. Small, so that a read slot
	// holds little memory (and a never-reading client holds it briefly):
	// the gateway can then afford many slots (max_history_reads).
	chunkBytes = 512 << 10
	// historyQueueWait is how long a history read waits for a free slot
	// before it is refused with 503.
	historyQueueWait = 5 * time.Second
)

// writeBudget is the deadline for writing n bytes to a client: the fixed
// WriteBase plus n at MinClientRate (the slowest client served); a write
// that takes longer cuts the connection.
func (a *API) writeBudget(n int) time.Duration {
	base, rate := a.cfg.WriteBase, a.cfg.MinClientRate
	if base <= 0 {
		base = 10 * time.Second
	}
	if rate <= 0 {
		rate = 64 << 10
	}
	return base + time.Duration(n)*time.Second/time.Duration(rate)
}

// readChunk reads the next chunk after the watermark: at most limit
// activities and about chunkBytes (plus one activity) of them.
func (a *API) readChunk(ctx context.Context, conv string, after int64, limit int) ([]conversation.Entry, error) {
	return a.log.ReadBytes(ctx, conv, after, limit, chunkBytes)
}

// clientAddr is the address limits are counted against (default: the TCP
// peer, no proxy trusted).
func (a *API) clientAddr(r *http.Request) netip.Addr {
	if a.cfg.ClientAddr != nil {
		return a.cfg.ClientAddr(r)
	}
	return guard.Proxies{}.ClientAddr(r)
}

// gate caps concurrent work globally and per client address. The global
// cap queues (bounded by a wait); the per-client cap refuses at once, so
// one client cannot fill the queue. A client is counted by its rate-limit
// key (guard.AddrKey: an IPv6 client by its /64), as the rate limits count
// it, so that one host cannot multiply its cap across its addresses.
type gate struct {
	slots     chan struct{}
	perClient int

	mu    sync.Mutex
	inUse map[string]int
}

func newGate(global, perClient int) *gate {
	g := &gate{perClient: perClient, inUse: map[string]int{}}
	if global > 0 {
		g.slots = make(chan struct{}, global)
	}
	return g
}

// claim counts one unit for addr; false when addr is at its cap.
func (g *gate) claim(addr netip.Addr) bool {
	key := guard.AddrKey(addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.perClient > 0 && g.inUse[key] >= g.perClient {
		return false
	}
	g.inUse[key]++
	return true
}

func (g *gate) unclaim(addr netip.Addr) {
	key := guard.AddrKey(addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inUse[key] <= 1 {
		delete(g.inUse, key)
		return
	}
	g.inUse[key]--
}

// claimWait is claim, waiting up to wait for addr to drop under its cap.
func (g *gate) claimWait(ctx context.Context, addr netip.Addr, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for !g.claim(addr) {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

// acquireSlot waits up to wait for a global slot.
func (g *gate) acquireSlot(ctx context.Context, wait time.Duration) bool {
	if g.slots == nil {
		return true
	}
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (g *gate) releaseSlot() {
	if g.slots != nil {
		<-g.slots
	}
}

// throttled answers 429 in the Direct Line error shape, the one answer of
// every rate limit and per-client cap (see limited for Retry-After).
func throttled(w http.ResponseWriter, retry time.Duration, msg string) {
	setRetryAfter(w.Header(), retry)
	writeError(w, http.StatusTooManyRequests, "Throttled", msg)
}

// enter takes one of g's places for the request's client address and one
// gateway-wide slot, each waiting up to historyQueueWait; past that it
// answers 429 (the address's places are taken) or 503 (every slot is).
// leave gives both back.
func (a *API) enter(w http.ResponseWriter, r *http.Request, g *gate, what string) (leave func(), ok bool) {
	addr := a.clientAddr(r)
	if !g.claimWait(r.Context(), addr, historyQueueWait) {
		throttled(w, time.Second, "too many "+what+" from this client at once")
		return nil, false
	}
	if !g.acquireSlot(r.Context(), historyQueueWait) {
		g.unclaim(addr)
		busy(w, time.Second, "the gateway is busy; retry ("+what+")")
		return nil, false
	}
	return func() { g.releaseSlot(); g.unclaim(addr) }, true
}

// busy answers 503 with Retry-After.
func busy(w http.ResponseWriter, retry time.Duration, msg string) {
	setRetryAfter(w.Header(), retry)
	writeError(w, http.StatusServiceUnavailable, "ServiceError", msg)
}

// setRetryAfter sets Retry-After in whole seconds, rounded up (never 0),
// and Retry-After-Ms to the exact wait.
func setRetryAfter(h http.Header, wait time.Duration) {
	wait = max(wait, time.Millisecond)
	guard.SetRetryAfter(h, wait)
	h.Set("Retry-After-Ms", strconv.FormatInt(int64((wait+time.Millisecond-1)/time.Millisecond), 10))
}
