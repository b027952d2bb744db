package sqlite_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// A full store (max_page_count pins the file at its size: commits fail
// with SQLITE_FULL, as on a full disk) is not ready, its appends fail with
// store.ErrFull and nothing half-written; readiness probes are rate
// limited; once space returns a probe makes it ready with no other write.
func TestReadyFollowsAFullStore(t *testing.T) {
	ctx := context.Background()
	s := storeWith(t, 1)
	big := make([]byte, 64<<10)
	appendBig := func() error {
		_, err := s.Append(ctx, "c0", []store.NewRecord{{Build: func(int64) ([]byte, error) { return big, nil }}},
			[]store.NewOutbox{{BotID: "bot", Build: func([]int64) (string, []byte, error) { return "x", big, nil }}})
		return err
	}
	if err := appendBig(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("healthy store: Ready = %v", err)
	}

	if err := s.LimitPages(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := appendBig(); !errors.Is(err, store.ErrFull) {
		t.Fatalf("append to a full store: %v, want store.ErrFull", err)
	}
	if err := s.Ready(ctx); !errors.Is(err, store.ErrFull) {
		t.Fatalf("full store: Ready = %v, want store.ErrFull", err)
	}
	if head, err := s.Head(ctx, "c0"); err != nil || head != 0 {
		t.Fatalf("head after the failed append = %d, %v; want 0", head, err)
	}

	// However often readiness is asked, the writer sees at most one probe
	// per interval.
	s.SetProbeEvery(time.Hour)
	before := s.Probes()
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if err := s.Ready(ctx); !errors.Is(err, store.ErrFull) {
				t.Errorf("full store: Ready = %v", err)
			}
		})
	}
	wg.Wait()
	if n := s.Probes() - before; n > 1 {
		t.Fatalf("200 readiness checks started %d probes, want at most 1", n)
	}

	// Space returns: the next probe (no client write) makes it ready.
	if err := s.LimitPages(ctx, 1<<30); err != nil {
		t.Fatal(err)
	}
	s.SetProbeEvery(0)
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("space is back: Ready = %v", err)
	}
	if err := appendBig(); err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
}

// An idle store (no write for a while) confirms its readiness with a probe:
// a disk that filled up while nothing was written is noticed.
func TestReadyNoticesAFullStoreWhileIdle(t *testing.T) {
	ctx := context.Background()
	s := storeWith(t, 1)
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("healthy store: Ready = %v", err)
	}
	if err := s.LimitPages(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("a recent commit succeeded: Ready = %v, want nil without a probe", err)
	}
	s.SetStaleAfter(0)
	s.SetProbeEvery(0)
	if err := s.Ready(ctx); !errors.Is(err, store.ErrFull) {
		t.Fatalf("idle full store: Ready = %v, want store.ErrFull", err)
	}
	if err := s.LimitPages(ctx, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("space is back: Ready = %v", err)
	}
}
