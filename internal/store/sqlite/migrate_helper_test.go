package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/parley-gw/parley/internal/store"
)

// openBefore opens a database at path as the version before migration
// upto left it: every migration whose name sorts before upto applied.
func openBefore(t *testing.T, path, upto string) *sql.DB {
	t.Helper()
	before := fstest.MapFS{}
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() < upto {
			b, _ := fs.ReadFile(migrations, "migrations/"+e.Name())
			before["migrations/"+e.Name()] = &fstest.MapFile{Data: b}
		}
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(context.Background(), db, before, "migrations", "?"); err != nil {
		t.Fatal(err)
	}
	return db
}
