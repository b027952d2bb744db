package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/redact"
	"github.com/parley-gw/parley/internal/server"
)

// A rotation of the log-pseudonym key made by another process (`parley keys
// rotate --purpose log-pseudonym`) reaches a running server within
// key_reload: its lines from then on carry pseudonyms under the new key.
func TestLogPseudonymRotationReachesARunningServer(t *testing.T) {
	h := newHarness(t, func(c *configT) { c.Bots.KeyReload = durationT(time.Second) })
	ctx := context.Background()
	before := h.pseudonymizer(t).User("dl_alice")
	h.started("dl_alice")
	if !strings.Contains(h.logs.String(), before) {
		t.Fatalf("the conversation start is not logged under the current pseudonym %s", before)
	}
	admin, err := server.OpenKeys(ctx, h.cfg, h.st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Set.Rotate(ctx, keyring.PurposeLogPseudonym, keyring.RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	id, key, err := admin.Set.HMACKey(keyring.PurposeLogPseudonym)
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := redact.NewPseudonymizer(id, key)
	after := ps.User("dl_alice")
	if after == before {
		t.Fatal("the rotation did not change the key")
	}
	// Within a few key reloads, the user's new lines carry the new
	// pseudonym and never the old one again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mark := len(h.logs.String())
		h.started("dl_alice")
		later := h.logs.String()[mark:]
		if strings.Contains(later, after) && !strings.Contains(later, before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the rotation the user's pseudonym is still not %s:\n%s", after, later)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
