package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// testEndedWaitsForTheBot: a conversation that ended (endOfConversation)
// is listed for deletion only once the bot has everything queued for it:
// a bot that is down when the user ends the conversation still gets its
// last messages and the endOfConversation (no acknowledged activity is
// lost). Its idle period still applies in any case.
func testEndedWaitsForTheBot(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	conv(t, s, "ended")
	end := rec("bye")
	end.EndsConversation = true
	if _, err := s.Append(ctx, "ended", []store.NewRecord{end}, []store.NewOutbox{{BotID: "bot-1", Build: func([]int64) (string, []byte, error) {
		return "ended|0", []byte("bye to the bot"), nil
	}}}); err != nil {
		t.Fatal(err)
	}
	notIdle := time.Now().Add(-time.Hour)
	ids, err := s.ExpiredConversations(ctx, "site-1", notIdle, true, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 0 {
		t.Fatalf("an ended conversation whose last delivery is pending was listed for deletion: %v", ids)
	}
	// Idle past its period: listed, pending or not.
	if ids, _ := s.ExpiredConversations(ctx, "site-1", time.Now().Add(time.Hour), true, "", 10); len(ids) != 1 {
		t.Fatalf("idle past its period: %v, want [ended]", ids)
	}
	pend, err := s.PendingOutbox(ctx, "ended")
	if err != nil || len(pend) != 1 {
		t.Fatalf("PendingOutbox = %v, %v", pend, err)
	}
	if err := s.CompleteOutbox(ctx, pend[0].ID); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.ExpiredConversations(ctx, "site-1", notIdle, true, "", 10); len(ids) != 1 || ids[0] != "ended" {
		t.Fatalf("delivered and ended: %v, want [ended]", ids)
	}
}
