package connector

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// turnBot is a bot whose turns outlast the attempt: it answers the POST
// only when the turn ends, meanwhile replying through the Bot Connector
// (here: Delivery.BotReplied, as the API does after storing the reply).
type turnBot struct {
	mu    sync.Mutex
	posts map[string]int
	turn  time.Duration
	reply func(conv, id string, final bool) // nil: a silent turn
}

func (b *turnBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var act struct {
		ID           string `json:"id"`
		Conversation struct {
			ID string `json:"id"`
		} `json:"conversation"`
	}
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &act)
	b.mu.Lock()
	b.posts[act.ID]++
	b.mu.Unlock()
	for end := time.Now().Add(b.turn); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if b.reply != nil {
			b.reply(act.Conversation.ID, act.ID, false) // typing, stream chunks
		}
	}
	if b.reply != nil {
		b.reply(act.Conversation.ID, act.ID, true) // the final message
	}
	w.WriteHeader(http.StatusOK)
}

var errNotYet = errors.New("not answered")

func (b *turnBot) count(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.posts[id]
}

// newTurnRig is newRig with bot as the bot and the HTTP client the
// server builds (MaxDeliveryTimeout: each attempt has its own deadline).
func newTurnRig(t *testing.T, timeout time.Duration, bot *turnBot) *rig {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(bot)
	t.Cleanup(srv.Close)
	if err := st.CreateBot(ctx, store.Bot{ID: "bot-1", Name: "Bot", Endpoint: srv.URL + "/api/messages", InsecureNoAuth: true, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSite(ctx, store.Site{ID: "site-1", BotID: "bot-1", Name: "web", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"c1", "c2"} {
		if _, err := st.CreateConversation(ctx, store.Conversation{ID: c, BotID: "bot-1", SiteID: "site-1", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	clock := &fakeClock{now: time.Now()}
	cfg := DefaultDeliveryConfig
	cfg.Clock = clock
	cfg.Timeout = timeout
	logs := &syncBuffer{}
	d := NewDelivery(st, conversation.PlainCodec{}, nil, NewBotClient(MaxDeliveryTimeout, nil), cfg, slog.New(slog.NewTextHandler(logs, nil)))
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
	return &rig{logs: logs, st: st, clock: clock, d: d}
}

func (r *rig) pending(t *testing.T, conv string) int {
	t.Helper()
	items, _, err := r.st.PendingOutboxPage(context.Background(), conv, 0, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return len(items)
}

// A turn longer than the per-attempt timeout, during which the bot sends
// typing (a stream) and then its answer in reply to the activity, is
// delivered once: the timed-out attempt is not repeated, the item leaves
// the outbox, and the waiting client is answered at the first reply.
// (Before: the activity was POSTed again after 250 ms of backoff, and the
// bot answered it twice.)
func TestLongTurnWithRepliesIsNotRedelivered(t *testing.T) {
	var r *rig
	bot := &turnBot{posts: map[string]int{}, turn: 700 * time.Millisecond}
	bot.reply = func(conv, id string, final bool) {
		typ := "typing"
		if final {
			typ = "message"
		}
		r.d.BotReplied(conv, id, typ)
	}
	r = newTurnRig(t, 200*time.Millisecond, bot)
	id := r.send(t, "c1", "message")
	result, cancel := r.d.Watch(id)
	defer cancel()
	var answered error = errNotYet
	r.until(t, time.Second, 10*time.Millisecond, "the waiting client was not answered at the bot's reply", func() bool {
		select {
		case answered = <-result:
			return true
		default:
			return false
		}
	})
	if answered != nil {
		t.Fatalf("the waiting client: %v", answered)
	}
	if bot.count(id) != 1 {
		t.Fatal("the client was answered before the bot had the activity")
	}
	r.until(t, time.Minute, 10*time.Millisecond, "the item did not leave the outbox", func() bool { return r.pending(t, "c1") == 0 })
	r.run(2*time.Minute, time.Second)
	if n := bot.count(id); n != 1 {
		t.Fatalf("the bot got the activity %d times, want once\n%s", n, r.logs.String())
	}
	if l := r.logs.String(); !strings.Contains(l, "bot delivery not repeated") {
		t.Fatalf("no log of the decision:\n%s", l)
	}
}

// Without any reply, a timed-out attempt is retried as before (the bot
// may never have seen it); a reply naming an activity of another
// conversation is not evidence.
func TestSilentLongTurnIsRetried(t *testing.T) {
	var r *rig
	bot := &turnBot{posts: map[string]int{}, turn: 400 * time.Millisecond}
	bot.reply = func(conv, id string, final bool) {
		r.d.BotReplied("c2", id, "message") // claims a c1 activity from c2
	}
	r = newTurnRig(t, 150*time.Millisecond, bot)
	id := r.send(t, "c1", "message")
	r.until(t, 5*time.Minute, 100*time.Millisecond, "the silent turn was not retried", func() bool { return bot.count(id) >= 2 })
}

// A bot's own per-attempt timeout replaces the default: a 400 ms turn
// under a 150 ms default but a 2 s bot timeout is delivered at the first
// attempt, with no failure.
func TestPerBotDeliveryTimeout(t *testing.T) {
	bot := &turnBot{posts: map[string]int{}, turn: 400 * time.Millisecond}
	r := newTurnRig(t, 150*time.Millisecond, bot)
	if err := r.st.SetBotDeliveryTimeout(context.Background(), "bot-1", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	id := r.send(t, "c1", "message")
	r.until(t, time.Minute, 100*time.Millisecond, "not delivered", func() bool { return r.pending(t, "c1") == 0 })
	r.run(time.Minute, time.Second)
	if n := bot.count(id); n != 1 || strings.Contains(r.logs.String(), "bot delivery failed") {
		t.Fatalf("posts %d, logs:\n%s", n, r.logs.String())
	}
	if got := (&Delivery{cfg: DeliveryConfig{Timeout: time.Second}}).timeoutFor(store.Bot{DeliveryTimeout: time.Hour}); got != MaxDeliveryTimeout {
		t.Fatalf("an hour-long bot timeout is used as %v, want the cap %v", got, MaxDeliveryTimeout)
	}
}
