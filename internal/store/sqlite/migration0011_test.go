package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

// Migration 0011 must not fail on a database that already holds duplicate
// names: they stay, can still be updated, and new duplicates are refused.
func TestMigration0011ToleratesExistingDuplicates(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "parley.db")
	db := openBefore(t, path, "0011")
	for _, q := range []string{
		`INSERT INTO bots (id, name, endpoint, insecure_no_auth, created_at) VALUES ('b1', 'Echo', 'http://127.0.0.1:1/', 1, 0)`,
		`INSERT INTO bots (id, name, endpoint, insecure_no_auth, created_at) VALUES ('b2', 'echo', 'http://127.0.0.1:2/', 1, 0)`,
		`INSERT INTO sites (id, bot_id, name, enhanced_auth, trusted_origins, created_at) VALUES ('s1', 'b1', 'web', 1, '[]', 0)`,
		`INSERT INTO sites (id, bot_id, name, enhanced_auth, trusted_origins, created_at) VALUES ('s2', 'b1', 'web', 1, '[]', 0)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	_ = db.Close()

	s, err := Open(ctx, path) // the upgrade: applies 0011
	if err != nil {
		t.Fatalf("upgrade with duplicate names: %v", err)
	}
	defer s.Close()
	if bots, _ := s.ListBots(ctx); len(bots) != 2 {
		t.Fatalf("bots after the upgrade = %d, want both", len(bots))
	}
	b2, err := s.GetBot(ctx, "b2")
	if err != nil {
		t.Fatal(err)
	}
	b2.Endpoint = "http://127.0.0.1:3/"
	if err := s.UpdateBot(ctx, b2); err != nil {
		t.Fatalf("update an existing duplicate without renaming: %v", err)
	}
	if err := s.UpdateSitePolicy(ctx, "s2", false, nil); err != nil {
		t.Fatalf("update an existing duplicate site: %v", err)
	}
	err = s.CreateBot(ctx, store.Bot{ID: "b3", Name: "ECHO", Endpoint: "http://127.0.0.1:4/", InsecureNoAuth: true})
	if !errors.Is(err, store.ErrNameTaken) {
		t.Fatalf("new duplicate after the upgrade: %v, want ErrNameTaken", err)
	}
}
