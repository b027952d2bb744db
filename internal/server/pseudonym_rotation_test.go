package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/server"
)

// A rotation of the log pseudonym key (parley keys rotate --purpose
// log-pseudonym, in another process) reaches a running server at its next
// key reload: later log lines carry pseudonyms under the new key, and
// none under the old one, which may already be destroyed.
func TestLogPseudonymKeyRotationReachesRunningServer(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	old := h.pseudonymizer(t)

	keys, err := server.OpenKeys(ctx, h.cfg, h.st)
	if err != nil {
		t.Fatal(err)
	}
	r, err := keys.Set.Rotate(ctx, keyring.PurposeLogPseudonym, keyring.RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range r.Retired {
		if _, err := keys.Set.Destroy(ctx, id); err != nil {
			t.Fatalf("destroy the retired key %s: %v", id, err)
		}
	}
	_ = keys.Close()
	if err := h.srv.Authority().Reload(ctx); err != nil {
		t.Fatal(err)
	}
	cur := h.pseudonymizer(t)
	if cur.KeyID() == old.KeyID() {
		t.Fatal("the rotation did not change the active key")
	}

	const user = "dl_AfterRotation7"
	h.started(user)
	h.stop()
	logs := h.logs.String()
	if strings.Contains(logs, old.User(user)) {
		t.Errorf("a line written after the rotation carries the pseudonym under the old (destroyed) key %s", old.KeyID())
	}
	if !strings.Contains(logs, cur.User(user)) {
		t.Errorf("no line carries the user's pseudonym under the new key %s:\n%s", cur.KeyID(), logs)
	}
}
