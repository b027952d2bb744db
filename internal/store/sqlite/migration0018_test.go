package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/parley-gw/parley/internal/store"
)

// Migration 0018 rebuilds the log as a rowid table: a database written
// before it keeps every activity (sequence, visibility, body, time), in
// order, its sequence numbers continue where they were, and (conversation,
// seq) stays unique.
func TestMigration0018KeepsTheLog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "parley.db")
	db := openBefore(t, path, "0018")
	qs := []string{
		`INSERT INTO bots (id, name, endpoint, insecure_no_auth, created_at) VALUES ('b1', 'Echo', 'http://127.0.0.1:1/', 1, 0)`,
		`INSERT INTO sites (id, bot_id, name, enhanced_auth, trusted_origins, created_at) VALUES ('s1', 'b1', 'web', 1, '[]', 0)`,
	}
	for _, c := range []string{"c1", "c2"} {
		qs = append(qs, fmt.Sprintf(`INSERT INTO conversations (id, bot_id, site_id, user_id, created_at, last_activity_at) VALUES ('%s', 'b1', 's1', 'dl_u', 0, 0)`, c))
		for seq := range 5 {
			// Interleaved and out of time order, as concurrent conversations write.
			qs = append(qs, fmt.Sprintf(`INSERT INTO activities (conversation_id, seq, visibility, body, created_at) VALUES ('%s', %d, %d, x'%02x%02x', %d)`, c, seq, seq%2, seq, len(c), 100-seq))
		}
	}
	for _, q := range qs {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_ = db.Close()

	s, err := Open(ctx, path) // the upgrade: applies 0018
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer s.Close()
	for _, c := range []string{"c1", "c2"} {
		recs, err := s.Read(ctx, c, -1, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 5 {
			t.Fatalf("%s: %d activities after the upgrade, want 5", c, len(recs))
		}
		for i, r := range recs {
			if r.Seq != int64(i) || int(r.Visibility) != i%2 || len(r.Body) != 2 || r.Body[0] != byte(i) || r.CreatedAt.UnixNano() != int64(100-i) {
				t.Fatalf("%s: activity %d after the upgrade = %+v", c, i, r)
			}
		}
		head, err := s.Head(ctx, c)
		if err != nil || head != 4 {
			t.Fatalf("%s: head = %d, %v; want 4", c, head, err)
		}
	}
	got, err := s.Append(ctx, "c1", []store.NewRecord{{Build: func(int64) ([]byte, error) { return []byte("new"), nil }}}, nil)
	if err != nil || len(got) != 1 || got[0].Seq != 5 {
		t.Fatalf("append after the upgrade = %+v, %v; want seq 5", got, err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO activities (conversation_id, seq, visibility, body, created_at) VALUES ('c2', 3, 0, x'', 0)`); !isUnique(err) {
		t.Fatalf("a second activity c2/3 after the upgrade: %v, want a unique constraint failure", err)
	}
	var without int
	if err := s.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'activities' AND sql LIKE '%WITHOUT ROWID%'`).Scan(&without); err != nil || without != 0 {
		t.Fatalf("activities is still WITHOUT ROWID (%d, %v)", without, err)
	}
}
