package connector

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// BenchmarkDeliveryRoundTrip: one activity committed to the outbox and
// delivered to a bot on loopback, one at a time (the common path: the lane
// delivers from memory).
func BenchmarkDeliveryRoundTrip(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "parley.db"))
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		got <- struct{}{}
	}))
	defer srv.Close()
	if err := st.CreateBot(ctx, store.Bot{ID: "bot-1", Name: "Bot", Endpoint: srv.URL + "/api/messages", InsecureNoAuth: true, CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	if err := st.CreateSite(ctx, store.Site{ID: "site-1", BotID: "bot-1", Name: "web", CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateConversation(ctx, store.Conversation{ID: "c1", BotID: "bot-1", SiteID: "site-1", CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	cfg := DefaultDeliveryConfig
	d := NewDelivery(st, conversation.PlainCodec{}, nil, NewBotClient(cfg.Timeout, nil), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	st.SetOutboxListener(d.Enqueue)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); d.Run(runCtx) }()
	defer func() { cancel(); <-done; _ = st.Close() }()
	body, err := conversation.PlainCodec{}.EncodeOutbox(context.Background(), "c1", []byte(`{"type":"message","text":"hello"}`))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		aid := fmt.Sprintf("c1|%d", i)
		if _, err := st.Append(ctx, "c1", nil, []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) { return aid, body, nil }}}); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}
