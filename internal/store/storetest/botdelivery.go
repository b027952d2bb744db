package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

func testBotDeliveryTimeout(t *testing.T, s store.Store) {
	ctx := context.Background()
	b, _ := seed(t, s)
	if got, err := s.GetBot(ctx, b.ID); err != nil || got.DeliveryTimeout != 0 {
		t.Fatalf("default delivery timeout = %v, %v; want 0", got.DeliveryTimeout, err)
	}
	if err := s.SetBotDeliveryTimeout(ctx, b.ID, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	// GetBot (cached before the change) and ListBots see it.
	if got, err := s.GetBot(ctx, b.ID); err != nil || got.DeliveryTimeout != 90*time.Second {
		t.Fatalf("GetBot delivery timeout = %v, %v; want 90s", got.DeliveryTimeout, err)
	}
	bots, err := s.ListBots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, lb := range bots {
		if lb.ID == b.ID {
			found = lb.DeliveryTimeout == 90*time.Second
		}
	}
	if !found {
		t.Fatalf("ListBots lacks the delivery timeout: %+v", bots)
	}
	if err := s.SetBotDeliveryTimeout(ctx, b.ID, -time.Second); err == nil {
		t.Fatal("a negative timeout was stored")
	}
	if err := s.SetBotDeliveryTimeout(ctx, "no-such-bot", time.Second); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown bot: %v, want ErrNotFound", err)
	}
	// CreateBot stores it with the rest (one write).
	made := store.Bot{ID: "bot-slow", Name: "Slow", Endpoint: "https://slow.example.com/api/messages", CreatedAt: epoch, DeliveryTimeout: 45 * time.Second}
	if err := s.CreateBot(ctx, made); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetBot(ctx, made.ID); err != nil || got.DeliveryTimeout != 45*time.Second {
		t.Fatalf("a bot created with a delivery timeout has %v, %v; want 45s", got.DeliveryTimeout, err)
	}
	if err := s.CreateBot(ctx, store.Bot{ID: "bot-neg", Name: "Neg", Endpoint: "https://neg.example.com/api/messages", CreatedAt: epoch, DeliveryTimeout: -time.Second}); err == nil {
		t.Fatal("a bot with a negative delivery timeout was created")
	}
	// An update of the other fields keeps it; zero resets it.
	got, _ := s.GetBot(ctx, b.ID)
	got.Name = "renamed for timeout"
	if err := s.UpdateBot(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetBot(ctx, b.ID); got.DeliveryTimeout != 90*time.Second {
		t.Fatalf("after UpdateBot: %v", got.DeliveryTimeout)
	}
	if err := s.SetBotDeliveryTimeout(ctx, b.ID, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetBot(ctx, b.ID); got.DeliveryTimeout != 0 {
		t.Fatalf("after reset: %v", got.DeliveryTimeout)
	}
}
