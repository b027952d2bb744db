package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

// testUniqueNames: a bot name, and a site name within a bot, is refused
// when taken (case-insensitively), naming the existing one; a site name
// may repeat under another bot; a bot keeps its own name on update.
func testUniqueNames(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, site := seed(t, s) // bot-1 "Echo", site-1 "web"
	dup := store.Bot{ID: "bot-dup", Name: "ECHO", Endpoint: b.Endpoint, InsecureNoAuth: true, CreatedAt: epoch}
	err := s.CreateBot(ctx, dup)
	var taken *store.NameTakenError
	if !errors.Is(err, store.ErrNameTaken) || !errors.As(err, &taken) || taken.ExistingID != b.ID || taken.Kind != "bot" {
		t.Fatalf("CreateBot(duplicate name) = %v; want ErrNameTaken naming %s", err, b.ID)
	}
	if _, err := s.GetBot(ctx, "bot-dup"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused bot stored: %v", err)
	}
	other := store.Bot{ID: "bot-2", Name: "Other", Endpoint: b.Endpoint, InsecureNoAuth: true, CreatedAt: epoch}
	if err := s.CreateBot(ctx, other); err != nil {
		t.Fatal(err)
	}
	other.Name = "echo"
	if err := s.UpdateBot(ctx, other); !errors.Is(err, store.ErrNameTaken) {
		t.Fatalf("UpdateBot(rename to a taken name) = %v; want ErrNameTaken", err)
	}
	b.Name, b.Endpoint = "Echo", "http://127.0.0.1:3999/api/messages"
	if err := s.UpdateBot(ctx, b); err != nil {
		t.Fatalf("UpdateBot(own name) = %v", err)
	}
	b.Name = "eCHO" // a change of case only is the bot's own name
	if err := s.UpdateBot(ctx, b); err != nil {
		t.Fatalf("UpdateBot(own name, other case) = %v", err)
	}

	err = s.CreateSite(ctx, store.Site{ID: "site-dup", BotID: b.ID, Name: "WEB", SecretHashes: [2][]byte{{9, 9}, nil}, CreatedAt: epoch})
	taken = nil
	if !errors.Is(err, store.ErrNameTaken) || !errors.As(err, &taken) || taken.ExistingID != site.ID || taken.Kind != "site" {
		t.Fatalf("CreateSite(duplicate name) = %v; want ErrNameTaken naming %s", err, site.ID)
	}
	if err := s.CreateSite(ctx, store.Site{ID: "site-other-bot", BotID: other.ID, Name: "web", SecretHashes: [2][]byte{{9, 8}, nil}, CreatedAt: epoch}); err != nil {
		t.Fatalf("CreateSite(same name, other bot) = %v", err)
	}
}
