package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// Conversations that exist when migration 0009 runs count their retention
// from the upgrade, not from their (old) last activity: an upgrade must not
// delete a deployment's history at its first sweep.
func TestMigration0009StartsRetentionAtUpgrade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "parley.db")
	// The database as the previous version left it: migrations before 0009.
	db := openBefore(t, path, "0009")
	old := time.Now().Add(-90 * 24 * time.Hour).UnixNano()
	for _, q := range []string{
		`INSERT INTO bots (id, name, endpoint, insecure_no_auth, created_at) VALUES ('b', 'b', 'http://127.0.0.1:1/', 1, 0)`,
		`INSERT INTO sites (id, bot_id, name, enhanced_auth, trusted_origins, created_at) VALUES ('s', 'b', 's', 1, '[]', 0)`,
		`INSERT INTO conversations (id, bot_id, site_id, user_id, created_at) VALUES ('old', 'b', 's', 'dl_u', ` + itoa(old) + `)`,
		`INSERT INTO activities (conversation_id, seq, visibility, body, created_at) VALUES ('old', 0, 0, x'00', ` + itoa(old) + `)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", strings.Fields(q)[2], err)
		}
	}
	_ = db.Close()

	s, err := Open(ctx, path) // the upgrade: applies 0009
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ids, _ := s.ExpiredConversations(ctx, "s", time.Now().Add(-time.Minute), false, "", 10); len(ids) != 0 {
		t.Fatalf("right after the upgrade: %v expired, want none", ids)
	}
	if ids, _ := s.ExpiredConversations(ctx, "s", time.Now().Add(time.Second), false, "", 10); len(ids) != 1 {
		t.Fatalf("a period after the upgrade: %v expired, want [old]", ids)
	}
	if got, _ := s.GetSite(ctx, "s"); got.Retention != (store.Retention{}) {
		t.Fatalf("an existing site's retention = %+v, want the default", got.Retention)
	}
}
