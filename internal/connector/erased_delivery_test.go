package connector

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func (b *fakeBot) postCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.posts
}

// A conversation erased (parley erase, the sweeper) while its delivery
// waits for a retry: when the bot comes back it must not receive the
// erased activity (the lane re-reads its window from the store after a
// backoff, rather than retrying from memory).
func TestDeliveryDropsRetriesOfAnErasedConversation(t *testing.T) {
	r := newRig(t, nil, "c1")
	r.bot.setFail("c1", http.StatusServiceUnavailable)
	r.send(t, "c1", "message")
	r.until(t, time.Minute, time.Second, "no first attempt", func() bool { return r.bot.postCount() > 0 })
	if _, err := r.st.DeleteConversation(context.Background(), "c1", time.Now()); err != nil {
		t.Fatal(err)
	}
	r.bot.setFail("c1", 0)
	r.run(10*time.Minute, 5*time.Second)
	if got := r.bot.received("c1"); len(got) != 0 {
		t.Fatalf("the bot received %v after the conversation was erased", got)
	}
}
