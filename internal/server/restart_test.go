package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

// runServer starts a server on dir; stop shuts it down gracefully.
func runServer(t *testing.T, dir string, setup func(*server.Server)) (base string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base = "http://" + ln.Addr().String()
	cfg := config.Default()
	cfg.Listen, cfg.PublicURL, cfg.DataDir, cfg.InsecureHTTP, cfg.MasterKeyFile = ln.Addr().String(), base, dir, true, dir+"/master.key"
	cfg.DirectLine.BotWait = config.Duration(time.Second)
	cfg.Metrics.Listen = "127.0.0.1:0" // opened by Serve
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, server.Listeners{Main: ln}) }()
	return base, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
}

func TestPendingDeliveriesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	bot := newTestBot(t)
	// The bot is down for this message (the conversationUpdate got through;
	// a failing one would hold back, in order, everything after it).
	bot.fail = func(a map[string]any) int {
		if a["text"] == "while the bot was down" {
			return 503
		}
		return 0
	}
	var secret string
	base, stop := runServer(t, dir, func(s *server.Server) {
		_, secret, _ = provision(t, s.Store(), "bot-a", bot.url, true, []string{trustedOrigin})
	})
	h := &harness{t: t, base: base, dl: base + "/v3/directline", secret: secret}
	tok, conv, _ := h.started("dl_alice")
	r := h.do("POST", "/conversations/"+conv+"/activities", tok, `{"type":"message","text":"while the bot was down"}`, nil)
	if r.status != 502 || r.errCode() != "BotRejectedActivity" {
		t.Fatalf("post while bot down = %d %s", r.status, r.raw)
	}
	failedID := ""
	for _, a := range bot.all() {
		if a["text"] == "while the bot was down" {
			failedID = a["id"].(string)
		}
	}
	if failedID == "" {
		t.Fatal("the bot was never tried")
	}
	stop()

	// The bot comes back; so does the gateway, on the same data.
	bot.mu.Lock()
	bot.fail = nil
	before := len(bot.received)
	bot.mu.Unlock()
	_, stop2 := runServer(t, dir, nil)
	defer stop2()
	deadline := time.Now().Add(15 * time.Second)
	for {
		bot.mu.Lock()
		var redelivered bool
		for _, a := range bot.received[before:] {
			if a["id"] == failedID && a["text"] == "while the bot was down" {
				redelivered = true
			}
		}
		bot.mu.Unlock()
		if redelivered {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the pending delivery was not made after the restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
