package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

// With the admin listener off (the default), a serving gateway still signs
// the audit chain's head every audit.checkpoint_every, so entries the
// local CLI recorded after its own checkpoint get anchored (review: the
// checkpointer ran only with admin.listen on).
func TestCheckpointsWithTheAdminListenerOff(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Audit.CheckpointEvery = config.Duration(time.Second) })
	if !h.cfg.Admin.Off() {
		t.Fatal("the harness serves the admin listener")
	}
	srv := h.srv
	if err := srv.EnableAdmin(context.Background(), server.AdminOptions{}); err != nil {
		t.Fatal(err)
	}
	// A CLI-like writer: records entries, signs no checkpoint itself.
	cli, err := audit.New(audit.Config{Store: srv.Store(), Keys: srv.Keys().Set})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := cli.Record(context.Background(), audit.Event{Actor: "local:test", Action: "bots.write", Target: "bot:b" + string(rune('0'+i)), Outcome: audit.Success}); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		cps, err := srv.Store().ListAuditCheckpoints(context.Background())
		if err == nil && len(cps) > 0 && cps[len(cps)-1].Seq >= 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of the head within 10 s: %+v, %v", cps, err)
		}
	}
}
