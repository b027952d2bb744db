package server_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/server"
)

// A KEK rotated and destroyed at once from another process (`parley keys
// rotate --purpose kek` then `parley keys destroy --yes`), before the
// running server has re-read its keys: the server still wraps new data
// keys under the KEK it believes active. The destruction must be refused
// until every server has had the time to reload and re-wrap, or a
// conversation started meanwhile is lost (its data key wrapped by a
// destroyed KEK).
func TestKEKDestroyWaitsForServersToReload(t *testing.T) {
	h := newHarness(t, func(c *configT) { c.Bots.KeyReload = durationT(10 * time.Minute) })
	ctx := t.Context()
	admin, err := server.OpenKeys(ctx, h.cfg, h.st)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	before, _ := h.st.ListKeys(ctx, keyring.PurposeKEK)
	if _, err := admin.Envelope.RotateKEK(ctx); err != nil {
		t.Fatal(err)
	}
	_, derr := admin.Envelope.DestroyKEK(ctx, before[0].ID, false)
	if derr != nil && !errors.Is(derr, keyring.ErrTooSoonToDestroy) {
		t.Fatalf("destroy right after the rotation: %v, want nil or ErrTooSoonToDestroy", derr)
	}
	// The server has not reloaded (key_reload 10m): a new conversation.
	tok, conv, _ := h.started("dl_afterDestroy")
	h.post(tok, conv, map[string]any{"type": "message", "text": "written after the destroy"})

	fresh, err := server.OpenKeys(ctx, h.cfg, h.st)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	entries, err := conversation.NewLog(h.st, fresh.Codec).Read(ctx, conv, -1, 100)
	if err != nil {
		t.Fatalf("a conversation started after the KEK destruction (%v) is unreadable: %v", derr, err)
	}
	joined := ""
	for _, e := range entries {
		joined += string(e.JSON)
	}
	if !strings.Contains(joined, "written after the destroy") {
		t.Fatalf("message lost: %s", joined)
	}
	if derr == nil {
		t.Fatal("the retired KEK was destroyed before the running server reloaded its keys")
	}
	// --force still destroys it (the operator accepts the loss).
	if _, err := admin.Envelope.DestroyKEK(ctx, before[0].ID, true); err != nil {
		t.Fatalf("forced destroy: %v", err)
	}
}

// destroyRetiredKEK destroys a retired KEK without force as soon as it may
// be (two key reloads after its retirement).
func destroyRetiredKEK(t *testing.T, admin server.Keys, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := admin.Envelope.DestroyKEK(t.Context(), id, false)
		if err == nil {
			return
		}
		if !errors.Is(err, keyring.ErrTooSoonToDestroy) || time.Now().After(deadline) {
			t.Fatalf("destroy retired KEK: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
