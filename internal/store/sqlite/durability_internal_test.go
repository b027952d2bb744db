package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// store.durability reaches every connection: FULL (2) by default, NORMAL
// (1) when asked, on the writer and on the readers.
func TestDurabilitySetsSynchronous(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		opt  Options
		want int
	}{{Options{}, 2}, {Options{SyncNormal: true}, 1}} {
		s, err := OpenWith(ctx, filepath.Join(t.TempDir(), "p.db"), tc.opt)
		if err != nil {
			t.Fatal(err)
		}
		var w, r int
		if err := s.w.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&w); err != nil {
			t.Fatal(err)
		}
		if err := s.r.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&r); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		if w != tc.want || r != tc.want {
			t.Fatalf("%+v: synchronous = %d (writer), %d (reader); want %d", tc.opt, w, r, tc.want)
		}
	}
}
