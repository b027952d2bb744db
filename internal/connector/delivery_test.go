package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// fakeClock is a manual clock: timers fire only when Advance passes them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.ch <- c.now
	}
	c.timers = kept
}

// fakeBot records what it accepts; conversations in down get 503 (or the
// status set for them).
type fakeBot struct {
	mu       sync.Mutex
	got      map[string][]string // conversation -> activity ids, in arrival order
	failWith map[string]int      // conversation -> status to answer
	posts    int
	// onPost, when set, runs for each POST before it is answered.
	onPost func(conv string)
}

func (b *fakeBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var act struct {
		ID           string `json:"id"`
		Conversation struct {
			ID string `json:"id"`
		} `json:"conversation"`
	}
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &act)
	b.mu.Lock()
	onPost := b.onPost
	b.mu.Unlock()
	if onPost != nil {
		onPost(act.Conversation.ID)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.posts++
	if st := b.failWith[act.Conversation.ID]; st != 0 {
		w.WriteHeader(st)
		return
	}
	b.got[act.Conversation.ID] = append(b.got[act.Conversation.ID], act.ID)
	w.WriteHeader(http.StatusOK)
}

func (b *fakeBot) setFail(conv string, status int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if status == 0 {
		delete(b.failWith, conv)
	} else {
		b.failWith[conv] = status
	}
}

func (b *fakeBot) received(conv string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.got[conv])
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type rig struct {
	logs  *syncBuffer
	st    *sqlite.Store
	clock *fakeClock
	bot   *fakeBot
	d     *Delivery
}

// newRig runs a Delivery with a fake clock against a real SQLite store and
// a real HTTP bot on loopback.
func newRig(t *testing.T, tune func(*DeliveryConfig), convs ...string) *rig {
	t.Helper()
	return newRigCodec(t, conversation.PlainCodec{}, tune, convs...)
}

// newRigCodec is newRig whose delivery decodes with codec.
func newRigCodec(t *testing.T, codec conversation.Codec, tune func(*DeliveryConfig), convs ...string) *rig {
	t.Helper()
	return newRigWrapped(t, codec, nil, tune, convs...)
}

// newRigWrapped is newRigCodec whose delivery works on wrap(store) (nil:
// the store itself), for faults injected between the two.
func newRigWrapped(t *testing.T, codec conversation.Codec, wrap func(*sqlite.Store) store.Store, tune func(*DeliveryConfig), convs ...string) *rig {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	bot := &fakeBot{got: map[string][]string{}, failWith: map[string]int{}}
	srv := httptest.NewServer(bot)
	t.Cleanup(srv.Close)
	if err := st.CreateBot(ctx, store.Bot{ID: "bot-1", Name: "Bot", Endpoint: srv.URL + "/api/messages", InsecureNoAuth: true, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSite(ctx, store.Site{ID: "site-1", BotID: "bot-1", Name: "web", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, c := range convs {
		if _, err := st.CreateConversation(ctx, store.Conversation{ID: c, BotID: "bot-1", SiteID: "site-1", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	clock := &fakeClock{now: time.Now()}
	cfg := DefaultDeliveryConfig
	cfg.Clock = clock
	if tune != nil {
		tune(&cfg)
	}
	logs := &syncBuffer{}
	var dst store.Store = st
	if wrap != nil {
		dst = wrap(st)
	}
	d := NewDelivery(dst, codec, nil, NewBotClient(cfg.Timeout, nil), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	st.SetOutboxListener(d.Enqueue)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(runCtx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = st.Close()
	})
	return &rig{logs: logs, st: st, clock: clock, bot: bot, d: d}
}

// send appends one activity to conv and enqueues its delivery.
func (r *rig) send(t *testing.T, conv, typ string) string {
	t.Helper()
	var id string
	_, err := r.st.Append(context.Background(), conv, nil, []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) {
		id = fmt.Sprintf("%s|%s-%d", conv, typ, time.Now().UnixNano())
		b, _ := json.Marshal(map[string]any{"type": typ, "id": id, "conversation": map[string]string{"id": conv}, "text": "PRIVATE-MESSAGE-TEXT"})
		body, _ := conversation.PlainCodec{}.EncodeOutbox(context.Background(), conv, b)
		return id, body, nil
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// run advances the fake clock by total in steps, letting the workers act
// between steps.
func (r *rig) run(total, step time.Duration) {
	for el := time.Duration(0); el < total; el += step {
		r.clock.Advance(step)
		time.Sleep(10 * time.Millisecond)
	}
}

// until advances the clock in steps until cond holds, failing after max of
// simulated time.
func (r *rig) until(t *testing.T, max, step time.Duration, what string, cond func() bool) {
	t.Helper()
	for el := time.Duration(0); !cond(); el += step {
		if el > max {
			t.Fatalf("after %v of simulated time: %s", max, what)
		}
		r.clock.Advance(step)
		time.Sleep(10 * time.Millisecond)
	}
}

// A bot that is down for ten minutes (a redeploy), far beyond the old
// two-minute cutoff, then comes back gets every activity once, in order,
// starting with the conversationUpdate; other conversations are never
// held back meanwhile.
func TestDeliverySurvivesTenMinuteOutage(t *testing.T) {
	r := newRig(t, nil, "c1", "c2")
	r.bot.setFail("c1", http.StatusServiceUnavailable)
	want := []string{r.send(t, "c1", "conversationUpdate"), r.send(t, "c1", "message"), r.send(t, "c1", "message")}
	other := r.send(t, "c2", "message")
	r.until(t, time.Minute, time.Second, "c2 was not delivered while c1 was failing", func() bool { return len(r.bot.received("c2")) == 1 })
	if got := r.bot.received("c2"); !slices.Equal(got, []string{other}) {
		t.Fatalf("c2 got %v, want %v", got, []string{other})
	}
	r.run(10*time.Minute, 5*time.Second)
	r.bot.setFail("c1", 0)
	r.until(t, 10*time.Minute, 5*time.Second, "c1 was not delivered after the bot came back", func() bool { return len(r.bot.received("c1")) >= len(want) })
	r.run(time.Minute, 5*time.Second) // anything extra would show up now
	if got := r.bot.received("c1"); !slices.Equal(got, want) {
		t.Fatalf("c1 got %v, want %v (each once, in order)", got, want)
	}
}

// Bot endpoints carry secrets in their query (Azure Functions ?code=) and
// userinfo: no log line and no recorded error of a failed delivery shows
// them, whether the bot refuses the connection, answers 500 or times out.
func TestDeliveryFailuresDoNotLeakEndpointSecrets(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer failing.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close() // nothing listens there now: connection refused
	for name, base := range map[string]string{"refused": closedURL, "500": failing.URL, "timeout": slow.URL} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, func(c *DeliveryConfig) { c.Timeout = 300 * time.Millisecond; c.RetryFor = 2 * time.Minute }, "c1")
			endpoint := "http://someuser:hunter2pass@" + base[len("http://"):] + "/api/messages?code=SECRETFUNCTIONKEY&clientId=default"
			if err := r.st.UpdateBot(context.Background(), store.Bot{ID: "bot-1", Name: "Bot", Endpoint: endpoint, InsecureNoAuth: true}); err != nil {
				t.Fatal(err)
			}
			r.send(t, "c1", "message")
			r.until(t, time.Minute, time.Second, "no failed attempt was logged", func() bool { return bytes.Contains([]byte(r.logs.String()), []byte("attempt")) })
			// Past delivery_retry_for: dead-lettered.
			r.until(t, time.Hour, 5*time.Second, "not dead-lettered", func() bool { n, _ := r.st.CountDeadLetters(context.Background()); return n == 1 })
			checkNoSecrets(t, "log", r.logs.String())
			dls, err := r.st.ListDeadLetters(context.Background(), "")
			if err != nil || len(dls) != 1 {
				t.Fatalf("dead letters = %+v, %v", dls, err)
			}
			checkNoSecrets(t, "dead letter's recorded error", dls[0].LastError)
			t.Logf("recorded error: %s", dls[0].LastError)
		})
	}
}

func checkNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{"SECRETFUNCTIONKEY", "hunter2pass", "someuser", "clientId"} {
		if bytes.Contains([]byte(s), []byte(secret)) {
			t.Errorf("%s shows %q:\n%s", what, secret, s)
		}
	}
}

// A bot down for longer than delivery_retry_for: its conversation's items
// become dead letters (body kept, why recorded, counted, logged without
// their text), later conversations are not held up, and an operator's
// redelivery gets each to the bot once, in order.
func TestDeliveryDeadLettersAfterRetryWindowAndRedelivers(t *testing.T) {
	r := newRig(t, func(c *DeliveryConfig) { c.RetryFor = time.Hour }, "c1", "c2")
	ctx := context.Background()
	r.bot.setFail("c1", http.StatusServiceUnavailable)
	want := []string{r.send(t, "c1", "conversationUpdate"), r.send(t, "c1", "message"), r.send(t, "c1", "message")}
	r.run(50*time.Minute, 30*time.Second)
	if dls, _ := r.st.ListDeadLetters(ctx, ""); len(dls) != 0 {
		t.Fatalf("dead letters before the retry window ended: %+v", dls)
	}
	r.until(t, time.Hour, 30*time.Second, "items were not dead-lettered after delivery_retry_for", func() bool {
		dls, _ := r.st.ListDeadLetters(ctx, "")
		return len(dls) == len(want)
	})
	// The worker counts and logs each dead letter right after storing it:
	// wait for the last one's count and line before reading them.
	deadline := time.Now().Add(5 * time.Second)
	for (r.d.DeadLettered() < int64(len(want)) || strings.Count(r.logs.String(), "dead-lettered") < len(want)) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	dls, _ := r.st.ListDeadLetters(ctx, "bot-1")
	for i, d := range dls {
		if d.ActivityID != want[i] || d.LastStatus != http.StatusServiceUnavailable || d.Attempts < 1 || d.LastError == "" ||
			d.FirstAttemptAt.IsZero() || d.LastAttemptAt.Before(d.FirstAttemptAt) || !bytes.Contains(d.Body, []byte("PRIVATE-MESSAGE-TEXT")) {
			t.Fatalf("dead letter %d = %+v (want %s, status 503, attempts, times, body kept)", i, d, want[i])
		}
	}
	if dls[0].Attempts < 10 {
		t.Errorf("the head was tried %d times in an hour; want retries up to the window's end", dls[0].Attempts)
	}
	if n := r.d.DeadLettered(); n != int64(len(want)) {
		t.Errorf("DeadLettered() = %d, want %d", n, len(want))
	}
	if n, _ := r.st.CountDeadLetters(ctx); n != len(want) {
		t.Errorf("CountDeadLetters = %d, want %d", n, len(want))
	}
	logs := r.logs.String()
	if got := strings.Count(logs, "dead-lettered"); got != len(want) {
		t.Errorf("%d dead-letter log lines, want %d:\n%s", got, len(want), logs)
	}
	if strings.Contains(logs, "PRIVATE-MESSAGE-TEXT") {
		t.Errorf("logs show message text:\n%s", logs)
	}
	// The conversation is not blocked for good: a new message flows once
	// the bot is back.
	r.bot.setFail("c1", 0)
	later := r.send(t, "c1", "message")
	r.until(t, 10*time.Minute, 5*time.Second, "a new message was held up by dead letters", func() bool { return len(r.bot.received("c1")) == 1 })
	for _, d := range dls {
		if _, err := r.st.RedeliverDeadLetter(ctx, d.ID, r.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	r.until(t, 10*time.Minute, 5*time.Second, "redelivered items did not reach the bot", func() bool { return len(r.bot.received("c1")) >= 1+len(want) })
	r.run(time.Minute, 5*time.Second)
	if got := r.bot.received("c1"); !slices.Equal(got, append([]string{later}, want...)) {
		t.Fatalf("bot got %v, want %v then the redelivered %v, each once", got, later, want)
	}
	if n, _ := r.st.CountDeadLetters(ctx); n != 0 {
		t.Errorf("dead letters left after redelivery: %d", n)
	}
}

// A bot that refuses an activity for good (4xx) gets a dead letter, not a
// silent drop, and the conversation moves on to the next item at once.
func TestDeliveryRefusalIsDeadLettered(t *testing.T) {
	r := newRig(t, nil, "c1")
	ctx := context.Background()
	r.bot.setFail("c1", http.StatusBadRequest)
	refused := r.send(t, "c1", "message")
	r.until(t, time.Minute, time.Second, "refused item was not dead-lettered", func() bool { n, _ := r.st.CountDeadLetters(ctx); return n == 1 })
	r.bot.setFail("c1", 0)
	next := r.send(t, "c1", "message")
	r.until(t, time.Minute, time.Second, "next item not delivered", func() bool { return len(r.bot.received("c1")) == 1 })
	if got := r.bot.received("c1"); !slices.Equal(got, []string{next}) {
		t.Fatalf("bot got %v, want %v", got, []string{next})
	}
	dls, _ := r.st.ListDeadLetters(ctx, "")
	if len(dls) != 1 || dls[0].ActivityID != refused || dls[0].LastStatus != http.StatusBadRequest || dls[0].Attempts != 1 {
		t.Fatalf("dead letters = %+v", dls)
	}
	if !strings.Contains(r.logs.String(), "dead-lettered") {
		t.Fatalf("no log line for the dead letter:\n%s", r.logs.String())
	}
}

// heldNow reports the bodies all lanes hold and the largest lane's item
// count and bytes.
func (d *Delivery) heldNow() (held, maxItems, maxBytes int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sum := 0
	for _, l := range d.lanes {
		maxItems = max(maxItems, len(l.queue))
		maxBytes = max(maxBytes, l.bytes)
		n := 0
		for _, it := range l.queue {
			n += len(it.Body)
		}
		if n != l.bytes {
			panic(fmt.Sprintf("lane counts %d bytes, holds %d", l.bytes, n))
		}
		sum += n
	}
	if sum != d.held {
		panic(fmt.Sprintf("delivery counts %d bytes, lanes hold %d", d.held, sum))
	}
	return d.held, maxItems, maxBytes
}

// Pending deliveries to a failing bot stay in the store: each lane holds a
// bounded window (WindowItems, WindowBytes), all lanes together at most
// MaxHeldBytes beyond one item each, whatever the backlog, and nothing
// while it waits for a retry. When the bot
// comes back, every activity arrives once, in order, including those
// posted while the lanes were reading their backlog window by window.
func TestDeliveryBacklogIsReadInWindows(t *testing.T) {
	convs := []string{"c1", "c2", "c3"}
	r := newRig(t, func(c *DeliveryConfig) { c.WindowItems = 4; c.WindowBytes = 1000; c.MaxHeldBytes = 700 }, convs...)
	want := map[string][]string{}
	maxBody := 0
	send := func(c string) {
		want[c] = append(want[c], r.send(t, c, "message"))
		pend, _ := r.st.PendingOutbox(context.Background(), c)
		for _, it := range pend {
			maxBody = max(maxBody, len(it.Body))
		}
	}
	for _, c := range convs {
		r.bot.setFail(c, http.StatusServiceUnavailable)
	}
	check := func(when string) {
		held, items, bytes := r.d.heldNow()
		if items > 4 || bytes > max(1000, maxBody) || held > 700+len(convs)*maxBody {
			t.Fatalf("%s: lanes hold %d bytes, a lane %d items and %d bytes; want at most 4 items and 1000 bytes a lane, 700 bytes beyond one item each in all", when, held, items, bytes)
		}
	}
	for i := 0; i < 15; i++ {
		for _, c := range convs {
			send(c)
		}
		check("while the bot is down")
	}
	// Between attempts (the fake clock stands still: a short backoff),
	// lanes waiting for a retry hold no bodies at all.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		held, _, _ := r.d.heldNow()
		if held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lanes waiting for a short retry hold %d bytes of bodies", held)
		}
	}
	for i := 0; i < 20; i++ {
		r.clock.Advance(10 * time.Second)
		time.Sleep(10 * time.Millisecond)
		check("during the outage")
	}
	for _, c := range convs {
		r.bot.setFail(c, 0)
	}
	for i := 0; i < 10; i++ { // more while the backlog drains
		for _, c := range convs {
			send(c)
		}
		r.clock.Advance(5 * time.Second)
		time.Sleep(5 * time.Millisecond)
		check("while the backlog drains")
	}
	r.until(t, 30*time.Minute, 5*time.Second, "the backlog was not delivered", func() bool {
		for _, c := range convs {
			if len(r.bot.received(c)) < len(want[c]) {
				return false
			}
		}
		return true
	})
	r.run(time.Minute, 5*time.Second) // anything extra would show up now
	for _, c := range convs {
		if got := r.bot.received(c); !slices.Equal(got, want[c]) {
			t.Fatalf("%s got %d items %v, want %d %v (each once, in order)", c, len(got), got, len(want[c]), want[c])
		}
	}
	if held, _, _ := r.d.heldNow(); held != 0 {
		t.Fatalf("lanes still hold %d bytes with nothing pending", held)
	}
}

func (d *Delivery) isUnsure() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.unsure
}

// The conversations parked with items in the store are remembered by id,
// up to a bound; past it, every new lane reads the store before
// delivering, so a new message still waits behind its conversation's
// older items. Once the backlog fits again, the common path returns.
func TestDeliveryParkedConversationsAreBounded(t *testing.T) {
	convs := []string{"c1", "c2", "c3"}
	r := newRig(t, func(c *DeliveryConfig) { c.maxParked = 2 }, convs...)
	r.until(t, time.Minute, time.Second, "the start-up scan of an empty outbox did not end", func() bool { return !r.d.isUnsure() })
	want := map[string][]string{}
	for _, c := range convs {
		r.bot.setFail(c, http.StatusServiceUnavailable)
		want[c] = append(want[c], r.send(t, c, "conversationUpdate"), r.send(t, c, "message"))
	}
	r.until(t, 30*time.Minute, 5*time.Second, "three failing conversations did not overflow the parked set", r.d.isUnsure)
	for _, c := range convs {
		r.bot.setFail(c, 0)
		want[c] = append(want[c], r.send(t, c, "message")) // before the poller finds its older items
	}
	r.until(t, 30*time.Minute, 5*time.Second, "the backlog was not delivered", func() bool {
		for _, c := range convs {
			if len(r.bot.received(c)) < len(want[c]) {
				return false
			}
		}
		return true
	})
	r.run(3*time.Minute, 5*time.Second) // anything extra would show up now; the heads are scanned again
	for _, c := range convs {
		if got := r.bot.received(c); !slices.Equal(got, want[c]) {
			t.Fatalf("%s got %v, want %v (each once, in order)", c, got, want[c])
		}
	}
	if r.d.isUnsure() {
		t.Fatal("still reading the store for every new lane with nothing pending")
	}
}
