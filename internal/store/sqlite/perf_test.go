package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parley-gw/parley/internal/store/sqlite"
)

// TestOutboxIndexes guards the round trip's cost: every round trip inserts
// an outbox item and deletes it, so each index on the outbox is a b-tree
// insert and delete (WAL pages) per round trip. Only the per-conversation
// index is needed (lanes, heads, erasure); migration 0017 dropped the one
// on next_attempt_at.
func TestOutboxIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"outbox_conversation"}; !slices.Equal(names, want) {
		t.Fatalf("outbox indexes = %v, want %v", names, want)
	}
}
