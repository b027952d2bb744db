package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// testDeleteBotTakesOAuth: a deleted bot's OAuth connections and its
// users' tokens go with it (planned, counted, gone), another bot's stay.
func testDeleteBotTakesOAuth(t *testing.T, s store.Store) {
	ctx := context.Background()
	b := store.Bot{ID: "oauth-bot", Name: "OAuth bot", Endpoint: "https://bot.example.com/api/messages", CreatedAt: epoch}
	other := store.Bot{ID: "oauth-bot-2", Name: "OAuth bot 2", Endpoint: "https://bot2.example.com/api/messages", CreatedAt: epoch}
	for _, bot := range []store.Bot{b, other} {
		if err := s.CreateBot(ctx, bot); err != nil {
			t.Fatal(err)
		}
		c := store.OAuthConnection{BotID: bot.ID, Name: "gh", Kind: store.OAuthKindGitHub, ClientID: "cid", SealedSecret: []byte{1},
			Scopes: []string{"read:user"}, MaxLogin: time.Hour, CreatedAt: epoch, UpdatedAt: epoch}
		if err := s.CreateOAuthConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{"dl_a", "dl_b"} {
			if err := s.PutUserToken(ctx, store.UserToken{BotID: bot.ID, UserID: u, Connection: "gh", Sealed: []byte{2}, SignedInAt: epoch, ExpiresAt: epoch.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	plan, err := s.PlanDeleteBot(ctx, b.ID)
	if err != nil || plan.OAuthConnections != 1 || plan.UserTokens != 2 {
		t.Fatalf("PlanDeleteBot = %+v, %v; want 1 connection, 2 user tokens", plan, err)
	}
	r, err := s.DeleteBot(ctx, b.ID, epoch.Add(time.Hour), store.DeleteOptions{})
	if err != nil || r.OAuthConnections != 1 || r.UserTokens != 2 {
		t.Fatalf("DeleteBot = %+v, %v; want 1 connection, 2 user tokens", r, err)
	}
	if _, err := s.GetOAuthConnection(ctx, b.ID, "gh"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the deleted bot's connection: %v, want ErrNotFound", err)
	}
	if _, err := s.GetUserToken(ctx, b.ID, "dl_a", "gh"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the deleted bot's user token: %v, want ErrNotFound", err)
	}
	if _, err := s.GetUserToken(ctx, other.ID, "dl_a", "gh"); err != nil {
		t.Fatalf("the other bot's user token: %v", err)
	}
}
