package connector

import (
	"context"
	"net/http"
	"strings"
	"sync"
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

// A conversation deleted (parley site delete, bot delete, conversation
// delete from another process) while an attempt is in flight: the attempt
// fails, the retry finds the item gone. The item is dropped, quietly (no
// error in the log: nothing is wrong), and never posted again.
func TestDeliveryDropsAnItemDeletedDuringItsAttempt(t *testing.T) {
	r := newRig(t, nil, "c1")
	r.bot.setFail("c1", http.StatusServiceUnavailable)
	var once sync.Once
	r.bot.mu.Lock()
	r.bot.onPost = func(conv string) {
		once.Do(func() {
			if _, err := r.st.DeleteConversation(context.Background(), conv, time.Now()); err != nil {
				t.Error(err)
			}
		})
	}
	r.bot.mu.Unlock()
	r.send(t, "c1", "message")
	r.until(t, time.Minute, time.Second, "no dropped line in the log", func() bool {
		return strings.Contains(r.logs.String(), "bot delivery dropped")
	})
	r.bot.setFail("c1", 0)
	r.run(10*time.Minute, 5*time.Second)
	if n := r.bot.postCount(); n != 1 {
		t.Fatalf("the bot got %d posts of a deleted conversation's activity, want the one in flight", n)
	}
	if strings.Contains(r.logs.String(), "level=ERROR") {
		t.Fatalf("errors logged for a deleted item:\n%s", r.logs.String())
	}
}
