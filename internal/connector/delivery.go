// Package connector is the Bot Connector side of Parley: the delivery
// worker that POSTs activities from the durable outbox to bots, and the
// Bot Connector API that bots call back on.
package connector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// Credentials supplies the Authorization header for a delivery to a bot
// (the channel JWT). Insecure development bots get none.
type Credentials interface {
	AuthorizationFor(ctx context.Context, bot store.Bot, serviceURL string) (string, error)
}

// DeliveryConfig tunes retries. An item is retried with capped exponential
// backoff and jitter until RetryFor has passed since it was enqueued; then
// (or at once when the bot refuses it for good) it becomes a dead letter.
type DeliveryConfig struct {
	Timeout     time.Duration // one HTTP attempt (a bot's DeliveryTimeout overrides it, up to MaxDeliveryTimeout)
	BaseBackoff time.Duration
	MaxBackoff  time.Duration // the cap of the backoff
	// RetryFor is how long an item is retried after it was enqueued
	// (bots.delivery_retry_for).
	RetryFor   time.Duration
	ServiceURL string // the serviceUrl bots call back on
	// Clock drives backoff, due times and the poll (nil: the real clock);
	// tests inject a fake one.
	Clock Clock
	// PollEvery is how often the store is polled for due items (0: 1 s).
	PollEvery time.Duration
	// WindowItems and WindowBytes bound what one conversation's lane holds
	// in memory ahead of sending, bodies included (0: the defaults); its
	// first item is held whatever its size. Items beyond the window stay
	// in the store and are read a window at a time as their turn comes.
	WindowItems int
	WindowBytes int
	// MaxHeldBytes bounds the bodies all lanes hold together beyond each
	// lane's first item (0: the default); past it, new items are read from
	// the store when their turn comes instead of being kept from their
	// commit.
	MaxHeldBytes int

	maxParked int // tests: 0 means maxParked
}

// Clock is the time source of delivery.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DefaultDeliveryConfig: 15 s per attempt (below DLJS's 20 s), exponential
// backoff from 250 ms capped at 5 min, retried for a day (the server sets
// RetryFor from bots.delivery_retry_for). A lane holds at most 64 items and
// 1 MiB of bodies ahead of sending (or its one first item, whatever its
// size), all lanes together at most 32 MiB beyond their first items.
var DefaultDeliveryConfig = DeliveryConfig{Timeout: 15 * time.Second, BaseBackoff: 250 * time.Millisecond, MaxBackoff: 5 * time.Minute, RetryFor: 24 * time.Hour,
	WindowItems: 64, WindowBytes: 1 << 20, MaxHeldBytes: 32 << 20}

// MaxDeliveryTimeout bounds a bot's per-attempt delivery timeout
// (store.Bot.DeliveryTimeout); the bot HTTP client is built with it, and
// each attempt's own deadline is the bot's timeout or the default.
const MaxDeliveryTimeout = 5 * time.Minute

// ErrBotRejected means the bot answered with an error or could not be
// reached in time.
var ErrBotRejected = errors.New("bot rejected the activity")

// ErrConversationGone means the activity left the outbox before it was
// delivered: its conversation (or site, or bot) was deleted.
var ErrConversationGone = errors.New("the activity's conversation was deleted before the bot got it")

// Delivery moves outbox items to bots, in order per conversation.
type Delivery struct {
	st     store.Store
	codec  conversation.Codec
	creds  Credentials
	client *http.Client
	cfg    DeliveryConfig
	log    *slog.Logger

	mu      sync.Mutex
	lanes   map[string]*laneState // conversation -> its lane
	held    int                   // bodies held in all lanes' windows
	reading int                   // bytes reserved for reads under way
	parked  map[string]bool       // conversations with items only in the store
	// unsure: the store may hold items of conversations not in parked
	// (before the start-up scan, or when more than maxParked were parked):
	// every new lane reads the store before delivering. unsureParks counts
	// parks while unsure, so a scan that raced one does not end it.
	unsure      bool
	unsureParks int
	waiters     map[string][]chan error // activity id -> results
	recent      map[string]outcome      // results nobody was waiting for yet
	// prunedAt is when recent was last swept for expired results: a sweep
	// per result cost a scan of up to 10,000 entries twice per round trip
	// (28% of the gateway's CPU under load); Watch checks the age itself.
	prunedAt time.Time
	// unreachable holds, per conversation, why its bot could not be
	// reached at the last attempt (until a delivery in it succeeds): a
	// client sending meanwhile is told at once, not after bot_wait.
	unreachable map[string]*UnreachableError
	wg          sync.WaitGroup
	closing     bool
	quit        chan struct{}

	// Finished items are removed from the outbox in batches (one commit per
	// flush, not per message). Until a removal is committed, and a while
	// after, lanes skip the ids in done so nothing is delivered twice by
	// this process; after a crash the unflushed ones are delivered again
	// under the same activity id (at-least-once).
	doneMu sync.Mutex
	done   map[int64]time.Time // id -> when flushed (zero: not yet)
	// flushed lists done's flushed ids in the order they were flushed (so
	// by time): pruning pops the expired ones from its front. Sweeping
	// done instead visited every id of the last doneKeep at every flush,
	// up to 50 times a second (tens of thousands under load).
	flushed    []flushedID
	toFlush    []int64
	flushSig   chan struct{}
	flushErrAt time.Time // when a failed flush was last logged

	deadLettered atomic.Int64 // items moved to the dead letters by this process

	stats deliveryStats // the metrics' counters (stats.go)
	// receipts records, per activity id, what its bot sent in reply to it
	// (BotReplied): the evidence that the bot has received it, so a failed
	// or timed-out attempt is not repeated (issue 14).
	rcptMu   sync.Mutex
	receipts map[string]receipt
}

// receipt is what a bot has sent in reply to one activity.
type receipt struct {
	replied bool      // a reply other than typing (a message, the end of a stream)
	typing  time.Time // the last typing activity (a stream chunk, an indicator)
	seen    time.Time
	// answered: a reply's notify handed the result to waiting clients, so
	// the delivery's own success needs no second notify (which would only
	// fill recent with a result nobody will claim).
	answered bool
}

// Receipts are bounded: past maxReceipts, those older than receiptKeep go.
const (
	maxReceipts = 100_000
	receiptKeep = time.Hour
)

// BotReplied records that conv's bot sent an activity of activityType in
// reply to replyToID (the Bot Connector API calls it after storing the
// bot's activity; the bot is authenticated and owns conv). A reply to an
// activity of another conversation is ignored. The bot demonstrably has
// the activity: a client waiting for its POST is answered now, and the
// delivery is not repeated (see received).
func (d *Delivery) BotReplied(conv, replyToID, activityType string) {
	if replyToID == "" || convOf(replyToID) != conv {
		return
	}
	now := d.cfg.Clock.Now()
	d.rcptMu.Lock()
	if d.receipts == nil {
		d.receipts = map[string]receipt{}
	}
	if _, ok := d.receipts[replyToID]; !ok && len(d.receipts) >= maxReceipts {
		for id, r := range d.receipts {
			if now.Sub(r.seen) > receiptKeep {
				delete(d.receipts, id)
			}
		}
		if len(d.receipts) >= maxReceipts {
			clear(d.receipts)
		}
	}
	r := d.receipts[replyToID]
	if activityType == "typing" {
		r.typing = now
	} else {
		r.replied = true
	}
	r.seen = now
	d.receipts[replyToID] = r
	d.rcptMu.Unlock()
	d.mu.Lock()
	waiting := len(d.waiters[replyToID]) > 0
	d.mu.Unlock()
	if waiting && d.notify(replyToID, nil) {
		d.rcptMu.Lock()
		if r, ok := d.receipts[replyToID]; ok {
			r.answered = true
			d.receipts[replyToID] = r
		}
		d.rcptMu.Unlock()
	}
}

// delivered reports a successful delivery of activityID to the clients
// waiting for it, unless a reply of the bot already did: a second result
// nobody waits for would sit in recent for recentTTL, and at a sustained
// rate those filled recent to its bound, after which a client whose Watch
// came just after its delivery (the POST handler watches once the append
// returns) lost its result and was answered "bot timed out" after bot_wait
// (the benchmark's unexplained errors at 100 conversations).
func (d *Delivery) delivered(activityID string) {
	d.rcptMu.Lock()
	r, ok := d.receipts[activityID]
	d.rcptMu.Unlock()
	if ok && r.answered {
		return
	}
	d.notify(activityID, nil)
}

// receiptOf reports whether the bot replied to activityID, or sent a
// typing activity in reply to it since the attempt that began at since
// (zero: none) or within window before now.
func (d *Delivery) receiptOf(activityID string, now, since time.Time, window time.Duration) (replied, busy bool) {
	d.rcptMu.Lock()
	defer d.rcptMu.Unlock()
	r, ok := d.receipts[activityID]
	if !ok {
		return false, false
	}
	busy = !r.typing.IsZero() && (now.Sub(r.typing) < window || (!since.IsZero() && !r.typing.Before(since)))
	return r.replied, busy
}

// timeoutFor is the per-attempt timeout of a bot.
func (d *Delivery) timeoutFor(bot store.Bot) time.Duration {
	if bot.DeliveryTimeout > 0 {
		return min(bot.DeliveryTimeout, MaxDeliveryTimeout)
	}
	return d.cfg.Timeout
}

// received decides an item whose attempt (begun at since) failed or timed
// out, or that is due again (since zero), when its bot has demonstrably
// received it: the bot replied to it (finished as delivered, never POSTed
// again), or sent a typing activity in reply during that attempt or
// within its per-attempt timeout (it is still answering, streaming:
// checked again one timeout later, not POSTed). decided is false without
// such evidence: the item is retried as before.
func (d *Delivery) received(ctx context.Context, it store.OutboxItem, at, since time.Time) (updated store.OutboxItem, done, decided bool) {
	window := d.cfg.Timeout
	if bot, err := d.st.GetBot(ctx, it.BotID); err == nil {
		window = d.timeoutFor(bot)
	}
	replied, busy := d.receiptOf(it.ActivityID, d.cfg.Clock.Now(), since, window)
	log := d.log.With("conversation", it.ConversationID, "activity", it.ActivityID, "bot", it.BotID, "attempt", it.Attempts)
	switch {
	case replied:
		log.Info("bot delivery not repeated: the bot has replied to the activity")
		d.reachable(it.ConversationID)
		d.delivered(it.ActivityID)
		d.finish(it.ID)
		return it, true, true
	case busy:
		if it.FirstAttemptAt.IsZero() {
			it.FirstAttemptAt = at
		}
		it.NextAttemptAt = d.cfg.Clock.Now().Add(window)
		log.Info("bot delivery not repeated: the bot is still answering the activity", "check_in", window)
		if err := d.st.RetryOutbox(ctx, it.ID, it.Attempts, at, it.NextAttemptAt); err != nil {
			return it, d.retryFailed(it, err, log), true
		}
		return it, false, true
	}
	return it, false, false
}

// DeadLettered counts the items this process moved to the dead letters.
func (d *Delivery) DeadLettered() int64 { return d.deadLettered.Load() }

// flushEvery bounds how long a finished item waits for its removal commit;
// doneKeep is how long a flushed id stays in the skip set.
const (
	flushEvery = 20 * time.Millisecond
	doneKeep   = 10 * time.Second
	// A failed flush is tried again after flushRetry, and logged at most
	// once per flushErrLogEvery.
	flushRetry       = time.Second
	flushErrLogEvery = 30 * time.Second
)

// outcome is a delivery result kept briefly for a late Watch.
type outcome struct {
	err error
	at  time.Time
}

// recentTTL is how long an unclaimed delivery result is kept.
const recentTTL = time.Minute

// maxRecent bounds the unclaimed delivery results kept.
const maxRecent = 10000

// recentPruneEvery is how often expired results are swept out of recent.
const recentPruneEvery = time.Second

// NewDelivery builds the worker; client must not follow redirects.
func NewDelivery(st store.Store, codec conversation.Codec, creds Credentials, client *http.Client, cfg DeliveryConfig, log *slog.Logger) *Delivery {
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = time.Second
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = DefaultDeliveryConfig.RetryFor
	}
	if cfg.WindowItems <= 0 {
		cfg.WindowItems = DefaultDeliveryConfig.WindowItems
	}
	if cfg.WindowBytes <= 0 {
		cfg.WindowBytes = DefaultDeliveryConfig.WindowBytes
	}
	if cfg.maxParked <= 0 {
		cfg.maxParked = maxParked
	}
	if cfg.MaxHeldBytes <= 0 {
		cfg.MaxHeldBytes = DefaultDeliveryConfig.MaxHeldBytes
	}
	return &Delivery{st: st, codec: codec, creds: creds, client: client, cfg: cfg, log: log,
		lanes: map[string]*laneState{}, parked: map[string]bool{}, waiters: map[string][]chan error{}, recent: map[string]outcome{}, unreachable: map[string]*UnreachableError{}, quit: make(chan struct{}),
		done: map[int64]time.Time{}, flushSig: make(chan struct{}, 1), unsure: true}
}

// Watch registers interest in the outcome of delivering activityID. Call
// it before the append that enqueues the delivery; the channel receives
// nil on success or an error on permanent failure. Cancel releases it.
func (d *Delivery) Watch(activityID string) (<-chan error, func()) {
	ch := make(chan error, 1)
	d.mu.Lock()
	if u := d.unreachable[convOf(activityID)]; u != nil {
		d.mu.Unlock()
		ch <- u
		return ch, func() {}
	}
	if o, ok := d.recent[activityID]; ok {
		delete(d.recent, activityID)
		if time.Since(o.at) <= recentTTL {
			d.mu.Unlock()
			ch <- o.err
			return ch, func() {}
		}
	}
	d.waiters[activityID] = append(d.waiters[activityID], ch)
	d.mu.Unlock()
	return ch, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		ws := d.waiters[activityID]
		for i, w := range ws {
			if w == ch {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(d.waiters, activityID)
		} else {
			d.waiters[activityID] = ws
		}
	}
}

// convOf is the conversation of an activity id ("conv|…").
func convOf(activityID string) string {
	conv, _, _ := strings.Cut(activityID, "|")
	return conv
}

// maxUnreachable bounds the conversations remembered as unreachable.
const maxUnreachable = 100_000

// unreachableNow records that conv's bot could not be reached and answers
// every client waiting for one of conv's activities.
func (d *Delivery) unreachableNow(conv string, u *UnreachableError) {
	d.mu.Lock()
	if len(d.unreachable) >= maxUnreachable {
		clear(d.unreachable)
	}
	d.unreachable[conv] = u
	var chans []chan error
	for id, ws := range d.waiters {
		if convOf(id) == conv {
			chans = append(chans, ws...)
			delete(d.waiters, id)
		}
	}
	d.mu.Unlock()
	for _, ch := range chans {
		select {
		case ch <- u:
		default:
		}
	}
}

// reachable forgets that conv's bot could not be reached.
func (d *Delivery) reachable(conv string) {
	d.mu.Lock()
	delete(d.unreachable, conv)
	d.mu.Unlock()
}

// notify hands a delivery result to the clients waiting for it, or keeps
// it briefly for a Watch that comes just after; handed reports the former.
func (d *Delivery) notify(activityID string, err error) (handed bool) {
	d.mu.Lock()
	ws := d.waiters[activityID]
	delete(d.waiters, activityID)
	now := time.Now()
	if now.Sub(d.prunedAt) >= recentPruneEvery {
		d.prunedAt = now
		for id, o := range d.recent {
			if now.Sub(o.at) > recentTTL {
				delete(d.recent, id)
			}
		}
	}
	// Keep an unclaimed result briefly for a client whose Watch comes just
	// after the delivery; only log activities (conv|seq) are ever watched.
	if conv, _, ok := strings.Cut(activityID, "|"); ok && len(ws) == 0 {
		if _, isLog := conversation.ParseActivityID(conv, activityID); isLog {
			if len(d.recent) >= maxRecent {
				// Full: the newest result is the likeliest to be claimed
				// (its client's Watch is under way), so an older one
				// makes room; dropping the new one would leave its client
				// waiting bot_wait for a delivery that succeeded.
				for id := range d.recent {
					delete(d.recent, id)
					break
				}
			}
			d.recent[activityID] = outcome{err: err, at: now}
		}
	}
	d.mu.Unlock()
	for _, w := range ws {
		w <- err
	}
	return len(ws) > 0
}

// laneState is one conversation's delivery lane. Its queue is a window on
// the conversation's pending items: a prefix of them in outbox order (less
// those finished), bodies included, bounded by WindowItems and WindowBytes
// and by the MaxHeldBytes all lanes share. Items past the window stay in
// the store only; the lane reads the next window when the queue drains.
// So a failing bot's backlog costs memory for one window per conversation,
// never for the backlog.
type laneState struct {
	kick  chan struct{}
	queue []store.OutboxItem
	bytes int // bodies in queue (counted in Delivery.held)
	// tail: every pending item with id <= tail is in queue or finished.
	tail int64
	// complete: the store held nothing past tail when last read, so
	// Enqueue appends new items (the common path: no store read). False:
	// items past tail are in the store only, and are read in turn.
	complete bool
	// missed: Enqueue passed over an item since the last read began.
	missed bool
	// needRead: read from the conversation's head again (after a restart,
	// a park, a poll, or a redelivered dead letter under its old id).
	needRead bool
	// linger: the lane goroutine's own timer while it waits for more
	// (next); only that goroutine touches it.
	linger *time.Timer
}

// Enqueue takes newly committed outbox items, in commit order (the store's
// outbox listener), and hands them to their conversations' lanes: while a
// lane's window has room, it delivers from memory without reading the
// store; otherwise the item is read from the store in its turn.
func (d *Delivery) Enqueue(items []store.OutboxItem) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, it := range items {
		l := d.laneLocked(it.ConversationID)
		if l == nil {
			return
		}
		switch {
		case l.complete && it.ID <= l.tail:
			// Already read from the store.
		case l.complete && d.admitLocked(l, len(it.Body)):
			l.queue = append(l.queue, it)
			l.bytes += len(it.Body)
			d.held += len(it.Body)
			l.tail = it.ID
		default:
			// No room (or the store holds earlier items not in memory): the
			// lane reads it from the store when its turn comes.
			l.complete = false
			l.missed = true
		}
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// admitLocked reports whether l's window takes one more body of n bytes:
// its first item always, later ones within the lane's and the shared
// bounds.
func (d *Delivery) admitLocked(l *laneState, n int) bool {
	if len(l.queue) == 0 {
		return true
	}
	return len(l.queue) < d.cfg.WindowItems && l.bytes+n <= d.cfg.WindowBytes && d.held+d.reading+n <= d.cfg.MaxHeldBytes
}

// Kick makes sure a lane is delivering conv's outbox, reading the store
// for items not known in memory (after a restart or a long backoff).
func (d *Delivery) Kick(conv string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l := d.laneLocked(conv); l != nil {
		l.needRead = true
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// laneLocked returns conv's lane, starting it if needed; nil when closing.
func (d *Delivery) laneLocked(conv string) *laneState {
	if d.closing {
		return nil
	}
	if l, ok := d.lanes[conv]; ok {
		return l
	}
	parked := d.unsure || d.parked[conv]
	l := &laneState{kick: make(chan struct{}, 1), needRead: parked, complete: !parked}
	delete(d.parked, conv)
	d.lanes[conv] = l
	d.wg.Add(1)
	go d.lane(conv, l)
	return l
}

// Run polls for due items (after a restart, or after a backoff) until ctx
// ends, then waits for lanes to stop.
func (d *Delivery) Run(ctx context.Context) {
	flusherDone := make(chan struct{})
	go func() {
		defer close(flusherDone)
		d.flusher()
	}()
	// Conversations with items from before this start must be read from
	// the store before anything newer is delivered: until this scan of
	// the heads (ids only, no bodies) succeeds, every new lane reads the
	// store first. Lanes read bodies a window at a time.
	d.scanHeads(ctx)
	for polls := 1; ; polls++ {
		if polls%30 == 0 {
			d.scanHeads(ctx) // only while unsure
		}
		due, err := d.st.DueOutbox(ctx, d.cfg.Clock.Now(), 500)
		if err != nil && ctx.Err() == nil {
			d.log.Error("outbox poll failed", "err", err)
		}
		for _, it := range due {
			if !d.isDone(it.ID) {
				d.Kick(it.ConversationID)
			}
		}
		select {
		case <-ctx.Done():
			d.mu.Lock()
			d.closing = true
			close(d.quit)
			d.mu.Unlock()
			d.wg.Wait()
			<-flusherDone
			return
		case <-d.cfg.Clock.After(d.cfg.PollEvery):
		}
	}
}

// next returns the lane's first deliverable item, reading the next window
// from the store when needed; ok is false when the lane has nothing left
// and has been removed.
func (d *Delivery) next(ctx context.Context, conv string, l *laneState) (store.OutboxItem, bool) {
	lingered := false
	for {
		d.mu.Lock()
		select {
		case <-l.kick:
		default:
		}
		d.skipDoneLocked(l)
		read := l.needRead || (len(l.queue) == 0 && !l.complete)
		from := l.tail
		if l.needRead {
			from = 0
		}
		l.needRead = false
		budget := 0
		if read {
			l.missed = false
			// The read replaces this lane's window (what it holds now is
			// given back), and reserves its budget against other reads.
			budget = max(0, min(d.cfg.WindowBytes, d.cfg.MaxHeldBytes-(d.held-l.bytes)-d.reading))
			d.reading += budget
		}
		d.mu.Unlock()
		if read {
			items, more, err := d.st.PendingOutboxPage(ctx, conv, from, d.cfg.WindowItems, budget)
			d.mu.Lock()
			d.reading -= budget
			if err == nil {
				d.mergeLocked(l, from, items, more)
			}
			d.mu.Unlock()
			if err != nil {
				d.log.Error("outbox read failed", "conversation", conv, "err", err)
				d.park(conv, l)
				return store.OutboxItem{}, false
			}
		}
		d.mu.Lock()
		d.skipDoneLocked(l)
		if len(l.queue) > 0 {
			it := l.queue[0]
			d.mu.Unlock()
			return it, true
		}
		if !l.complete || l.needRead {
			d.mu.Unlock()
			continue // the store holds more: read the next window
		}
		select {
		case <-l.kick: // kicked while we looked: go round again
			d.mu.Unlock()
			continue
		default:
		}
		if !lingered && !d.closing {
			// Nothing pending: wait a little for the conversation's next
			// item before ending the lane. A conversation sends one
			// activity at a time, so without this every round trip
			// started a lane goroutine and grew its stack again through
			// the HTTP client (2-3% of the gateway's CPU under load).
			d.mu.Unlock()
			lingered = true
			if l.linger == nil {
				l.linger = time.NewTimer(laneLinger)
			} else {
				l.linger.Reset(laneLinger)
			}
			linger := l.linger
			select {
			case <-l.kick:
				linger.Stop() // Go 1.23 timers: no stale tick after Stop or Reset
				lingered = false
			case <-linger.C:
			case <-d.quit:
				linger.Stop()
			}
			continue // look again (under the lock) before ending
		}
		delete(d.lanes, conv)
		d.mu.Unlock()
		return store.OutboxItem{}, false
	}
}

// laneLinger is how long a lane with nothing pending waits for its
// conversation's next item before its goroutine ends.
const laneLinger = 2 * time.Second

// mergeLocked installs a window read from the store (items with id > from,
// more when the store held items past them) as l's queue. The store's
// copies carry the current attempt counts; queue items past the read are
// kept only when the read reached the end (they were committed after it).
func (d *Delivery) mergeLocked(l *laneState, from int64, items []store.OutboxItem, more bool) {
	last := from
	if len(items) > 0 {
		last = items[len(items)-1].ID
	}
	q := items
	if more {
		l.tail = last
	} else {
		for _, it := range l.queue {
			if it.ID > last {
				q = append(q, it)
			}
		}
		l.tail = max(l.tail, last)
		if len(q) > 0 {
			l.tail = max(l.tail, q[len(q)-1].ID)
		}
	}
	l.complete = !more && !l.missed
	d.setQueueLocked(l, q)
}

// setQueueLocked replaces l's queue and keeps the byte counts.
func (d *Delivery) setQueueLocked(l *laneState, q []store.OutboxItem) {
	n := 0
	for _, it := range q {
		n += len(it.Body)
	}
	d.held += n - l.bytes
	l.bytes = n
	l.queue = q
}

// maxParked bounds the conversations remembered as parked (their ids
// only); past it, delivery is unsure until a scan of the outbox's heads
// fits again.
const maxParked = 100_000

func (d *Delivery) parkLocked(conv string) {
	switch {
	case d.unsure:
		d.unsureParks++ // every new lane reads the store first anyway
	case len(d.parked) >= d.cfg.maxParked:
		d.unsure = true
		d.unsureParks++
		clear(d.parked)
	default:
		d.parked[conv] = true
	}
}

// scanHeads ends an unsure period when the conversations with pending
// items (their heads' ids, no bodies) fit in maxParked: they become the
// parked set.
func (d *Delivery) scanHeads(ctx context.Context) {
	d.mu.Lock()
	if !d.unsure {
		d.mu.Unlock()
		return
	}
	parks := d.unsureParks
	d.mu.Unlock()
	heads, err := d.st.DueOutbox(ctx, time.Now().Add(100*365*24*time.Hour), d.cfg.maxParked+1)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("outbox scan failed", "err", err)
		}
		return
	}
	if len(heads) > d.cfg.maxParked {
		d.log.Warn("more conversations have pending deliveries than are tracked; new lanes read the store first", "tracked", d.cfg.maxParked)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.unsure || d.unsureParks != parks {
		return // a lane was parked meanwhile: scan again later
	}
	for _, it := range heads {
		d.parked[it.ConversationID] = true
	}
	d.unsure = false
}

// release gives back l's window; the lane reads it again from the store.
func (d *Delivery) release(l *laneState) {
	d.mu.Lock()
	d.setQueueLocked(l, nil)
	l.complete = false
	l.needRead = true
	d.mu.Unlock()
}

// park removes conv's lane, gives back its window and remembers that the
// store holds items for it that are not in memory.
func (d *Delivery) park(conv string, l *laneState) {
	d.mu.Lock()
	if d.lanes[conv] == l {
		delete(d.lanes, conv)
	}
	d.parkLocked(conv)
	d.setQueueLocked(l, nil)
	d.mu.Unlock()
}

func (d *Delivery) lane(conv string, l *laneState) {
	defer d.wg.Done()
	ctx := context.Background()
	for {
		it, ok := d.next(ctx, conv, l)
		if !ok {
			return
		}
		if wait := it.NextAttemptAt.Sub(d.cfg.Clock.Now()); wait > 0 {
			if wait > 30*time.Second || d.isClosing() {
				// Long backoff: leave it to the poller.
				d.park(conv, l)
				return
			}
			// Short backoff: wait holding no bodies; the window is read
			// again from the store when it ends (the attempt count and
			// time are already stored).
			d.release(l)
			it = store.OutboxItem{} // the lane's copy of the body too
			select {
			case <-d.cfg.Clock.After(wait):
			case <-d.quit:
			}
			continue
		}
		updated, done := d.attempt(ctx, it)
		d.mu.Lock()
		if len(l.queue) > 0 && l.queue[0].ID == it.ID {
			if done {
				l.queue[0] = store.OutboxItem{} // let go of its body
				d.setQueueLocked(l, l.queue[1:])
			} else {
				l.queue[0] = updated
			}
		}
		d.mu.Unlock()
		if d.isClosing() {
			d.park(conv, l)
			return
		}
	}
}

func (d *Delivery) isClosing() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closing
}

// attempt makes one delivery attempt and records its outcome; done reports
// that the item needs no more attempts (delivered or dead-lettered),
// otherwise updated carries its new attempt count and time. Nothing ends
// silently: a failed item is retried or becomes a dead letter.
func (d *Delivery) attempt(ctx context.Context, it store.OutboxItem) (updated store.OutboxItem, done bool) {
	at := d.cfg.Clock.Now()
	if it.Attempts > 0 {
		// Due again: the bot may have received it after all (a turn
		// longer than the attempt's timeout).
		if updated, done, decided := d.received(ctx, it, at, time.Time{}); decided {
			return updated, done
		}
	}
	posted := d.stats.posting()
	status, err := d.post(ctx, it)
	posted()
	if err == nil {
		d.stats.delivered.Add(1)
		// Answer the waiting client first: the bot has the activity. If the
		// process dies before the completion commits, the item is delivered
		// again under the same id (at-least-once; bots deduplicate by id).
		d.reachable(it.ConversationID)
		d.delivered(it.ActivityID)
		d.finish(it.ID)
		return it, true
	}
	it.Attempts++
	if it.FirstAttemptAt.IsZero() {
		it.FirstAttemptAt = at
	}
	log := d.log.With("conversation", it.ConversationID, "activity", it.ActivityID, "bot", it.BotID, "attempt", it.Attempts)
	now := d.cfg.Clock.Now()
	deadline := it.CreatedAt.Add(d.cfg.RetryFor)
	why := ""
	var refused *RefusedError
	if !permanent(status) && !errors.As(err, &refused) && !errors.As(err, new(*UndecryptableError)) {
		if updated, done, decided := d.received(ctx, it, at, at); decided {
			return updated, done
		}
	}
	switch {
	case errors.As(err, &refused):
		// The dialer's or the endpoint rules' refusal: the reason names
		// no URL (nor its query).
		why = "Parley refused to connect to the bot's endpoint: " + refused.Reason.Error()
		err = refused
	case errors.As(err, new(*UndecryptableError)):
		why = "Parley cannot decrypt the stored activity"
	case permanent(status):
		why = "bot refused the activity"
	case !now.Before(deadline):
		why = fmt.Sprintf("not delivered within bots.delivery_retry_for (%v)", d.cfg.RetryFor)
	}
	if why != "" && d.deadLetter(ctx, it, at, status, err, why, log) {
		return it, true
	}
	backoff := d.cfg.BaseBackoff << min(it.Attempts-1, 20)
	if backoff > d.cfg.MaxBackoff || backoff <= 0 {
		backoff = d.cfg.MaxBackoff
	}
	backoff = backoff/2 + rand.N(backoff/2+1) // jitter
	it.NextAttemptAt = now.Add(backoff)
	if it.NextAttemptAt.After(deadline) && deadline.After(now) {
		it.NextAttemptAt = deadline // the last attempt comes at the end of the window
	}
	log.Warn("bot delivery failed; will retry", "status", status, "err", err, "retry_in", it.NextAttemptAt.Sub(now))
	d.stats.retried.Add(1)
	if u := unreachable(err); u != nil {
		// Clients waiting for this conversation's activities (this one
		// and those queued behind it) learn now why the bot does not get
		// them (a host that does not resolve, a bot that is down); the
		// items stay queued and are retried.
		d.unreachableNow(it.ConversationID, u)
	}
	if rerr := d.st.RetryOutbox(ctx, it.ID, it.Attempts, at, it.NextAttemptAt); rerr != nil {
		return it, d.retryFailed(it, rerr, log)
	}
	return it, false
}

// retryFailed handles a retry the store could not record; done reports
// that the item is gone from the outbox (its conversation, site or bot was
// deleted, or another process finished it): it is dropped, never posted
// again. Any other error is logged and the item stays queued here.
func (d *Delivery) retryFailed(it store.OutboxItem, err error, log *slog.Logger) (done bool) {
	if errors.Is(err, store.ErrNotFound) {
		log.Info("bot delivery dropped: the item is no longer in the outbox (its conversation was deleted, or another process finished it)")
		d.notify(it.ActivityID, ErrConversationGone)
		d.finish(it.ID)
		return true
	}
	log.Error("outbox retry failed", "err", err)
	return false
}

// deadLetter moves it to the dead letters, counts and logs it (never its
// body) and answers a waiting client; false when the store could not
// record it (the item stays in the outbox and is retried).
func (d *Delivery) deadLetter(ctx context.Context, it store.OutboxItem, at time.Time, status int, cause error, why string, log *slog.Logger) bool {
	dl := store.DeadLetter{OutboxItem: it, LastAttemptAt: at, LastStatus: status, LastError: cause.Error(), DeadAt: d.cfg.Clock.Now()}
	if err := d.st.DeadLetterOutbox(ctx, dl); errors.Is(err, store.ErrNotFound) {
		// Gone from the outbox meanwhile (completed or moved by another
		// process): nothing left to retry here.
		log.Warn("outbox item to dead-letter is no longer in the outbox", "reason", why)
		return true
	} else if err != nil {
		log.Error("outbox dead-letter failed; the item stays in the outbox and is retried", "reason", why, "err", err)
		return false
	}
	d.deadLettered.Add(1)
	log.Error("bot delivery dead-lettered: it will not be retried; see 'parley deliveries dead list', redeliver with 'parley deliveries dead redeliver'",
		"outbox_id", it.ID, "reason", why, "status", status, "err", cause, "attempts", it.Attempts,
		"enqueued", it.CreatedAt, "first_attempt", it.FirstAttemptAt, "last_attempt", at)
	var refused *RefusedError
	if errors.As(cause, &refused) {
		d.notify(it.ActivityID, refused) // the client is told Parley refused, not the bot
	} else {
		d.notify(it.ActivityID, fmt.Errorf("%w: %s", ErrBotRejected, why))
	}
	return true
}

// finish marks an item as no longer pending and queues its removal.
func (d *Delivery) finish(id int64) {
	d.doneMu.Lock()
	d.done[id] = time.Time{}
	d.toFlush = append(d.toFlush, id)
	d.doneMu.Unlock()
	select {
	case d.flushSig <- struct{}{}:
	default:
	}
}

func (d *Delivery) isDone(id int64) bool {
	d.doneMu.Lock()
	defer d.doneMu.Unlock()
	_, ok := d.done[id]
	return ok
}

// skipDoneLocked drops finished items from l's queue; callers hold d.mu.
func (d *Delivery) skipDoneLocked(l *laneState) {
	d.doneMu.Lock()
	out := l.queue[:0]
	for _, it := range l.queue {
		if _, ok := d.done[it.ID]; !ok {
			out = append(out, it)
		}
	}
	d.doneMu.Unlock()
	clear(l.queue[len(out):]) // let go of the dropped bodies
	d.setQueueLocked(l, out)
}

// flusher commits finished items' removal in batches until Run stops, then
// once more.
func (d *Delivery) flusher() {
	for {
		stopping := false
		select {
		case <-d.flushSig:
			// Let more finish within the window, then commit them together.
			select {
			case <-time.After(flushEvery):
			case <-d.quit:
				stopping = true
			}
		case <-d.quit:
			stopping = true
		}
		d.flush()
		if stopping {
			return
		}
	}
}

func (d *Delivery) flush() {
	d.doneMu.Lock()
	batch := d.toFlush
	d.toFlush = nil
	d.doneMu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := d.st.CompleteOutbox(context.Background(), batch...); err != nil {
		// The bot has these: go on skipping them (they stay in done) and
		// try the removal again shortly. Forgetting them made every outbox
		// poll deliver them again, once a second, for as long as the store
		// could not commit (a full disk, a removed database file). After a
		// crash they are delivered again (at-least-once, same ids).
		d.doneMu.Lock()
		d.toFlush = append(batch, d.toFlush...)
		logIt := time.Since(d.flushErrAt) >= flushErrLogEvery
		if logIt {
			d.flushErrAt = time.Now()
		}
		d.doneMu.Unlock()
		if logIt {
			d.log.Error("outbox completion failed; retrying (this process does not deliver these activities again)", "items", len(batch), "err", err)
		}
		time.AfterFunc(flushRetry, func() {
			select {
			case d.flushSig <- struct{}{}:
			default:
			}
		})
		return
	}
	now := time.Now()
	d.doneMu.Lock()
	for _, id := range batch {
		d.done[id] = now
		d.flushed = append(d.flushed, flushedID{id, now})
	}
	d.pruneDoneLocked(now)
	d.doneMu.Unlock()
}

// flushedID is an id whose removal committed at at.
type flushedID struct {
	id int64
	at time.Time
}

// pruneDoneLocked forgets the ids flushed more than doneKeep before now;
// callers hold doneMu. An id finished again since (its done time is not
// the one listed) stays.
func (d *Delivery) pruneDoneLocked(now time.Time) {
	n := 0
	for n < len(d.flushed) && now.Sub(d.flushed[n].at) > doneKeep {
		f := d.flushed[n]
		if at, ok := d.done[f.id]; ok && at.Equal(f.at) {
			delete(d.done, f.id)
		}
		n++
	}
	if n > 0 {
		d.flushed = d.flushed[n:]
	}
}

// permanent: a 4xx other than timeout/throttling will not get better.
// UndecryptableError is a delivery whose stored body can never be
// decrypted (tampered, not sealed, its data key or KEK gone): it becomes a
// dead letter at once, without reaching the bot.
type UndecryptableError struct{ Reason error }

func (e *UndecryptableError) Error() string {
	return "the stored activity cannot be decrypted: " + e.Reason.Error()
}

func (e *UndecryptableError) Unwrap() error { return e.Reason }

func undecryptable(err error) bool {
	return errors.Is(err, keyring.ErrTampered) || errors.Is(err, keyring.ErrNoDataKey) ||
		errors.Is(err, keyring.ErrKeyDestroyed) || errors.Is(err, conversation.ErrNotSealed)
}

func permanent(status int) bool {
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

// maxBotResponse bounds what Parley reads of a bot's answer.
const maxBotResponse = 64 << 10

func (d *Delivery) post(ctx context.Context, it store.OutboxItem) (int, error) {
	bot, err := d.st.GetBot(ctx, it.BotID)
	if err != nil {
		return http.StatusNotFound, fmt.Errorf("bot %s: %w", it.BotID, err)
	}
	if bot.InsecureNoAuth && !loopbackURL(bot.Endpoint) {
		return http.StatusForbidden, &RefusedError{Reason: errors.New("the bot is registered without authentication but its endpoint is not on loopback")}
	}
	if !strings.HasPrefix(bot.Endpoint, "https://") && !loopbackURL(bot.Endpoint) {
		return http.StatusForbidden, &RefusedError{Reason: errors.New("the endpoint is not https and not on loopback")}
	}
	body, err := d.codec.DecodeOutbox(ctx, it.ConversationID, it.Body)
	if err != nil {
		if undecryptable(err) {
			return 0, &UndecryptableError{Reason: err}
		}
		// The key provider or the store failing for a moment (an HSM
		// unreachable): retried like a bot that did not answer.
		return 0, fmt.Errorf("decrypt the activity: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeoutFor(bot))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, bot.Endpoint, bytes.NewReader(body))
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("build request for bot %s: %w", bot.ID, RedactError(err))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Parley")
	if !bot.InsecureNoAuth {
		if d.creds == nil {
			return http.StatusUnauthorized, errors.New("no channel credentials configured for authenticated bots")
		}
		auth, err := d.creds.AuthorizationFor(ctx, bot, d.cfg.ServiceURL)
		if err != nil {
			return 0, fmt.Errorf("channel token: %w", err)
		}
		req.Header.Set("Authorization", auth)
	}
	resp, err := d.client.Do(req)
	var forbidden forbiddenAddrError
	if errors.As(err, &forbidden) { // the dialer's check: no URL (nor its query) in the reason
		return http.StatusForbidden, &RefusedError{Reason: forbidden} // permanent
	}
	err = RedactError(err) // *url.Error carries the endpoint with its query
	if err != nil {
		return 0, fmt.Errorf("post to bot: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBotResponse))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("bot answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// loopbackURL reports whether u's host is a loopback name or address.
func loopbackURL(u string) bool {
	parsed, err := url.Parse(u)
	if err != nil {
		return false
	}
	h := parsed.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
