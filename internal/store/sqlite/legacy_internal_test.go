package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/parley-gw/parley/internal/store"
)

// TestEncryptionMigrationMarksLegacyContent: migration 0007 over a database
// that holds content (written by the schema before it) sets the marker
// that makes the server seal it; over an empty one it does not.
func TestEncryptionMigrationMarksLegacyContent(t *testing.T) {
	for _, withContent := range []bool{false, true} {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "parley.db")
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		before := fstest.MapFS{}
		entries, _ := fs.ReadDir(migrations, "migrations")
		for _, e := range entries {
			if e.Name() < "0007" {
				b, _ := fs.ReadFile(migrations, "migrations/"+e.Name())
				before["migrations/"+e.Name()] = &fstest.MapFile{Data: b}
			}
		}
		if err := store.Migrate(ctx, db, before, "migrations", "?"); err != nil {
			t.Fatal(err)
		}
		if withContent {
			for _, q := range []string{
				`INSERT INTO bots (id, name, endpoint, insecure_no_auth, created_at) VALUES ('b', 'B', 'http://127.0.0.1/', 1, 0)`,
				`INSERT INTO sites (id, bot_id, name, enhanced_auth, trusted_origins, created_at) VALUES ('s', 'b', 'w', 0, '[]', 0)`,
				`INSERT INTO conversations (id, bot_id, site_id, user_id, created_at) VALUES ('c', 'b', 's', '', 0)`,
				`INSERT INTO activities (conversation_id, seq, visibility, body, created_at) VALUES ('c', 0, 0, x'007b7d', 0)`,
			} {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}
		_ = db.Close()
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		pending, err := s.LegacyPending(ctx)
		_ = s.Close()
		if err != nil || pending != withContent {
			t.Fatalf("with content %v: LegacyPending = %v, %v", withContent, pending, err)
		}
	}
}
