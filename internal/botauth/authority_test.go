package botauth

import (
	"context"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// A channel token is reused for at most a minute per bot and serviceUrl,
// and never across a key change.
func TestChannelTokenReuseWindow(t *testing.T) {
	a, _ := benchAuthority(t)
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0)
	at := func(d time.Duration, bot, svc string) string {
		a.now = func() time.Time { return t0.Add(d) }
		h, err := a.AuthorizationFor(ctx, store.Bot{ID: bot}, svc)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	first := at(0, "bot-1", "https://chat.example.com/")
	if at(59*time.Second, "bot-1", "https://chat.example.com/") != first {
		t.Fatal("token not reused within the minute")
	}
	if at(61*time.Second, "bot-1", "https://chat.example.com/") == first {
		t.Fatal("token reused after a minute")
	}
	if at(0, "bot-2", "https://chat.example.com/") == first || at(0, "bot-1", "https://other.example.com/") == first {
		t.Fatal("token reused for another bot or serviceUrl")
	}
	if at(-time.Second, "bot-1", "https://chat.example.com/") == first {
		t.Fatal("token minted in the future reused")
	}
}
