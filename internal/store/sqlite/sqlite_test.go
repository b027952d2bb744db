package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
	"github.com/parley-gw/parley/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "parley.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestConcurrentAppendsShareCommits: appends that arrive together are
// committed together (one fsync for several), and the counters say so.
func TestConcurrentAppendsShareCommits(t *testing.T) {
	ctx := context.Background()
	const convs, each = 32, 20
	s := storeWith(t, convs)
	c0, w0 := s.WriteStats()
	var wg sync.WaitGroup
	for i := range convs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := s.Append(ctx, fmt.Sprintf("c%d", i), []store.NewRecord{{Build: func(int64) ([]byte, error) { return []byte("x"), nil }}}, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	c1, w1 := s.WriteStats()
	commits, writes := c1-c0, w1-w0
	if writes != convs*each {
		t.Fatalf("%d writes counted, want %d", writes, convs*each)
	}
	// Serial commits would be one per append; sharing must cut that at
	// least in half with 32 writers (typically to a tenth or less).
	if commits*2 > writes {
		t.Errorf("%d appends took %d commits: group commit is not sharing fsyncs", writes, commits)
	}
	t.Logf("%d appends, %d commits (%.1f per commit)", writes, commits, float64(writes)/float64(commits))
}
