package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// testDeletedConversations: the conversations deleted since a time are
// listed, whichever way they were deleted (one, or with their site), oldest
// first and bounded; those deleted before, and live ones, are not; pruned
// tombstones are gone from the list.
func testDeletedConversations(t *testing.T, s store.Store) {
	ctx := context.Background()
	seed(t, s)
	for _, id := range []string{"early", "one", "live", "a1", "a2"} {
		conv(t, s, id)
	}
	if err := s.CreateSite(ctx, store.Site{ID: "site-2", BotID: "bot-1", Name: "other", CreatedAt: epoch}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b1", "b2"} {
		if _, err := s.CreateConversation(ctx, store.Conversation{ID: id, BotID: "bot-1", SiteID: "site-2", CreatedAt: epoch}); err != nil {
			t.Fatal(err)
		}
	}
	t0 := epoch.Add(time.Hour)
	if _, err := s.DeleteConversation(ctx, "early", t0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteConversation(ctx, "one", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteSite(ctx, "site-2", t0.Add(time.Second), store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ids, err := s.DeletedConversations(ctx, t0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"one", "b1", "b2"}) {
		t.Fatalf("deleted since t0 = %v, want [one b1 b2] (oldest first; not the earlier one, not live ones)", ids)
	}
	if ids, _ := s.DeletedConversations(ctx, t0, 2); len(ids) != 2 || ids[0] != "one" {
		t.Fatalf("limit 2 = %v", ids)
	}
	if ids, _ := s.DeletedConversations(ctx, t0.Add(time.Hour), 10); len(ids) != 0 {
		t.Fatalf("deleted since later = %v, want none", ids)
	}
	if err := s.PruneTombstones(ctx, t0.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.DeletedConversations(ctx, epoch, 10); !slices.Equal(ids, []string{"b1", "b2"}) {
		t.Fatalf("after pruning = %v, want [b1 b2]", ids)
	}
}
