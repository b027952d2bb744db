package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// testAuthFailureSeries: one offender's failures in time buckets, other
// offenders and older minutes left out, statuses and reasons summed.
func testAuthFailureSeries(t *testing.T, s store.Store) {
	ctx := context.Background()
	m0 := epoch.Truncate(10 * time.Minute)
	row := func(m time.Time, client string, status int, n int64) store.AuthFailureCount {
		return store.AuthFailureCount{Minute: m, Client: client, UserAgent: "curl", Status: status, Reason: "invalid_credential", Count: n, FirstSeen: m, LastSeen: m}
	}
	if err := s.AddAuthFailures(ctx, []store.AuthFailureCount{
		row(m0.Add(-time.Minute), "a_1", 403, 100), // before since
		row(m0, "a_1", 403, 2),
		row(m0, "a_1", 401, 1),
		row(m0.Add(4*time.Minute), "a_1", 403, 3),
		row(m0.Add(5*time.Minute), "a_1", 429, 4),
		row(m0.Add(12*time.Minute), "a_1", 403, 5),
		row(m0, "a_2", 403, 50), // another offender
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.AuthFailureSeries(ctx, m0, 5*time.Minute, "", "a_1", "curl")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		at time.Time
		n  int64
	}{{m0, 6}, {m0.Add(5 * time.Minute), 4}, {m0.Add(10 * time.Minute), 5}}
	if len(got) != len(want) {
		t.Fatalf("AuthFailureSeries = %+v; want %d buckets", got, len(want))
	}
	for i, w := range want {
		if !got[i].Minute.Equal(w.at) || got[i].Count != w.n {
			t.Fatalf("bucket %d = %v %d; want %v %d (all: %+v)", i, got[i].Minute, got[i].Count, w.at, w.n, got)
		}
	}
	if got, err := s.AuthFailureSeries(ctx, m0, 5*time.Minute, "", "nobody", "curl"); err != nil || len(got) != 0 {
		t.Fatalf("AuthFailureSeries of an unknown offender = %+v, %v", got, err)
	}
}
