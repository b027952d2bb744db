package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

// testDeleteEmptyOnly: with EmptyOnly, a site or a bot that still has a
// conversation is refused with ErrHasConversations and nothing changes; an
// empty one is deleted.
func testDeleteEmptyOnly(t *testing.T, s store.Store) {
	ctx := context.Background()
	lifecycleSeed(t, s)
	empty := store.DeleteOptions{EmptyOnly: true}
	if _, err := s.DeleteSite(ctx, "site-1", epoch, empty); !errors.Is(err, store.ErrHasConversations) {
		t.Fatalf("DeleteSite(EmptyOnly) of a site with conversations = %v, want ErrHasConversations", err)
	}
	if _, err := s.DeleteBot(ctx, "bot-1", epoch, store.DeleteOptions{Cascade: true, EmptyOnly: true}); !errors.Is(err, store.ErrHasConversations) {
		t.Fatalf("DeleteBot(EmptyOnly) of a bot with conversations = %v, want ErrHasConversations", err)
	}
	for _, id := range []string{"ca", "cb"} {
		if _, err := s.GetConversation(ctx, id); err != nil {
			t.Fatalf("conversation %s after the refusals: %v", id, err)
		}
	}
	if _, err := s.GetSite(ctx, "site-1"); err != nil {
		t.Fatalf("site after the refusal: %v", err)
	}
	if err := s.CreateSite(ctx, store.Site{ID: "site-empty", BotID: "bot-1", Name: "empty one", CreatedAt: epoch}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.DeleteSite(ctx, "site-empty", epoch, empty); err != nil || r.Conversations != 0 {
		t.Fatalf("DeleteSite(EmptyOnly) of an empty site = %+v, %v", r, err)
	}
}
