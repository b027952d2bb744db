package server_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A bot that cannot be reached at all (nothing listens at its endpoint)
// fails the client's send at once, saying why, instead of after
// directline.bot_wait as a timeout; the activity is stored and stays
// queued for the bot.
func TestUnreachableBotFailsTheSendAtOnce(t *testing.T) {
	h := newHarness(t, func(c *configT) { c.DirectLine.BotWait = durationT(10 * time.Second) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String() + "/api/messages"
	_ = ln.Close() // nothing listens there now
	_, secret, _ := provision(t, h.st, "bot-down", endpoint, true, []string{trustedOrigin})
	tok, conv := startWith(t, h, secret, "dl_alice")
	began := time.Now()
	r := h.do("POST", "/conversations/"+conv+"/activities", tok, map[string]any{"type": "message", "from": map[string]any{"id": "dl_alice"}, "text": "anyone there?"}, nil)
	took := time.Since(began)
	if r.status != http.StatusBadGateway || r.errCode() != "BotRejectedActivity" || !strings.Contains(string(r.raw), "unreachable") || !strings.Contains(string(r.raw), "will be delivered") {
		t.Fatalf("send to an unreachable bot = %d %s; want 502 saying the bot is unreachable and the activity will be delivered", r.status, r.raw)
	}
	if took > 5*time.Second {
		t.Fatalf("the send took %v: it waited for the bot instead of failing at once", took)
	}
	acts, _ := h.history(tok, conv, "")
	if got := texts(acts); len(got) == 0 || !strings.Contains(got[len(got)-1], "anyone there?") {
		t.Fatalf("the activity is not in the history: %v", got)
	}
	// A second send while the bot is still down is told at once too.
	began = time.Now()
	if r := h.do("POST", "/conversations/"+conv+"/activities", tok, map[string]any{"type": "message", "from": map[string]any{"id": "dl_alice"}, "text": "still there?"}, nil); r.status != http.StatusBadGateway || !strings.Contains(string(r.raw), "unreachable") || time.Since(began) > 5*time.Second {
		t.Fatalf("second send = %d %s after %v", r.status, r.raw, time.Since(began))
	}
	if pend, err := h.st.PendingOutbox(context.Background(), conv); err != nil || len(pend) == 0 {
		t.Fatalf("the activity is not queued for the bot: %d, %v", len(pend), err)
	}
}
