package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
)

func (h *harness) setBotFail(fn func(map[string]any) int) {
	h.botRec.mu.Lock()
	h.botRec.fail = fn
	h.botRec.mu.Unlock()
}

func (h *harness) metric(name string) string {
	h.t.Helper()
	res, err := http.Get(h.metrics + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// What a client is told about an activity the bot has not received yet:
// 502 BotRejectedActivity after bot_wait, while delivery goes on in the
// background; the activity is in the conversation already and reaches the
// bot once when it is back. A refusal (4xx) is a dead letter: counted in
// the metrics, kept in the store. The endpoint's function key and userinfo
// never reach the logs.
func TestDeliveryOutcomesAsClientsAndOperatorsSeeThem(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.DirectLine.BotWait = durationT(time.Second) })
	ctx := context.Background()
	bot, err := h.st.GetBot(ctx, "bot-a")
	if err != nil {
		t.Fatal(err)
	}
	bot.Endpoint = strings.Replace(bot.Endpoint, "http://", "http://deployer:hunter2pass@", 1) + "?code=SECRETFUNCTIONKEY"
	if err := h.st.UpdateBot(ctx, bot); err != nil {
		t.Fatal(err)
	}
	tok, conv, _ := h.started("dl_alice")
	h.botRec.waitFor(t, "the conversationUpdate", func(a map[string]any) bool { return a["type"] == "conversationUpdate" })

	h.setBotFail(func(map[string]any) int { return http.StatusServiceUnavailable })
	r := h.do("POST", "/conversations/"+conv+"/activities", tok, `{"type":"message","text":"while down"}`, nil)
	if r.status != http.StatusBadGateway || r.errCode() != "BotRejectedActivity" {
		t.Fatalf("bot down: %d %s, want 502 BotRejectedActivity", r.status, r.raw)
	}
	acts, _ := h.history(tok, conv, "")
	if len(acts) == 0 || acts[len(acts)-1]["text"] != "while down" {
		t.Fatalf("the activity told 502 is not in the conversation: %v", acts)
	}
	id, _ := acts[len(acts)-1]["id"].(string)
	h.setBotFail(nil)
	h.botRec.waitFor(t, "the activity after the bot came back", func(a map[string]any) bool { return a["text"] == "while down" && a["id"] == id })

	h.setBotFail(func(a map[string]any) int {
		if a["text"] == "refused" {
			return http.StatusBadRequest
		}
		return 0
	})
	r = h.do("POST", "/conversations/"+conv+"/activities", tok, `{"type":"message","text":"refused"}`, nil)
	if r.status != http.StatusBadGateway || r.errCode() != "BotRejectedActivity" {
		t.Fatalf("bot 400: %d %s", r.status, r.raw)
	}
	// The 502 comes at bot_wait at the latest; on a loaded machine the
	// refused attempt can still be under way then: wait for its outcome.
	for deadline := time.Now().Add(10 * time.Second); h.metric("parley_outbox_dead_lettered_total") != "1" && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if got := h.metric("parley_outbox_dead_letters"); got != "1" {
		t.Errorf("parley_outbox_dead_letters = %q, want 1", got)
	}
	if got := h.metric("parley_outbox_dead_lettered_total"); got != "1" {
		t.Errorf("parley_outbox_dead_lettered_total = %q, want 1", got)
	}
	dls, err := h.st.ListDeadLetters(ctx, "bot-a")
	if err != nil || len(dls) != 1 || dls[0].ConversationID != conv || dls[0].LastStatus != http.StatusBadRequest {
		t.Fatalf("dead letters = %+v, %v", dls, err)
	}
	// Later messages are not held back by the dead letter.
	h.post(tok, conv, map[string]any{"type": "message", "text": "after"})

	h.stop()
	logs := h.logs.String()
	for _, secret := range []string{"SECRETFUNCTIONKEY", "hunter2pass", "deployer"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs show %q", secret)
		}
	}
	if !strings.Contains(logs, "dead-lettered") {
		t.Errorf("no dead-letter log line")
	}
}
