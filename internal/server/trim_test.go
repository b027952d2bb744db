package server

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestIdleTrimmerTrimsOncePerQuietPeriod(t *testing.T) {
	// In a synctest bubble the clock is virtual: a loaded machine cannot
	// stretch a 5 ms pause past the 30 ms quiet period (it did, once).
	synctest.Test(t, func(t *testing.T) {
		var trims atomic.Int32
		tr := &idleTrimmer{idleFor: 30 * time.Millisecond, check: 5 * time.Millisecond, trim: func() { trims.Add(1) }}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go tr.run(ctx)
		// Busy: requests keep arriving, no trim.
		for i := 0; i < 20; i++ {
			tr.seen()
			time.Sleep(5 * time.Millisecond)
			synctest.Wait()
		}
		if n := trims.Load(); n != 0 {
			t.Fatalf("trimmed %d times while busy", n)
		}
		// Quiet: exactly one trim, however long it stays quiet.
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		if n := trims.Load(); n != 1 {
			t.Fatalf("trimmed %d times in one quiet period, want 1", n)
		}
		// Busy again, then quiet again: one more.
		tr.seen()
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		if n := trims.Load(); n != 2 {
			t.Fatalf("trimmed %d times after the second quiet period, want 2", n)
		}
	})
}
