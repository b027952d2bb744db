package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

func testAuthFailures(t *testing.T, s store.Store) {
	ctx := context.Background()
	m0 := epoch.Truncate(time.Minute)
	m1 := m0.Add(time.Minute)
	row := func(m time.Time, site, client, ua string, status int, reason string, n int64, first, last time.Duration) store.AuthFailureCount {
		return store.AuthFailureCount{Minute: m, Site: site, Client: client, UserAgent: ua, Status: status, Reason: reason, Count: n,
			FirstSeen: m.Add(first), LastSeen: m.Add(last)}
	}
	// Two replicas flush the same minute: the counts add up, first and
	// last seen widen.
	if err := s.AddAuthFailures(ctx, []store.AuthFailureCount{
		row(m0, "", "a_1", "curl", 403, "invalid_credential", 5, 10*time.Second, 20*time.Second),
		row(m0, "", "a_2", "python-requests", 401, "missing_credential", 2, time.Second, 2*time.Second),
		row(m0, "site-1", "a_3", "browser-chrome", 403, "invalid_credential", 1, 0, 0),
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAuthFailures(ctx, []store.AuthFailureCount{
		row(m0, "", "a_1", "curl", 403, "invalid_credential", 3, 5*time.Second, 30*time.Second),
		row(m1, "", "a_1", "curl", 429, "rate_limited", 4, 0, 50*time.Second),
		row(m1, "", "a_2", "python-requests", 401, "missing_credential", 2, 0, 0),
	}); err != nil {
		t.Fatal(err)
	}
	top, err := s.TopAuthFailures(ctx, m0, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.AuthFailureCount{
		{Site: "", Client: "a_1", UserAgent: "curl", Status: 403, Reason: "invalid_credential", Count: 8, FirstSeen: m0.Add(5 * time.Second), LastSeen: m0.Add(30 * time.Second)},
		{Site: "", Client: "a_1", UserAgent: "curl", Status: 429, Reason: "rate_limited", Count: 4, FirstSeen: m1, LastSeen: m1.Add(50 * time.Second)},
		{Site: "", Client: "a_2", UserAgent: "python-requests", Status: 401, Reason: "missing_credential", Count: 4, FirstSeen: m0.Add(time.Second), LastSeen: m1},
	}
	if len(top) != len(want) {
		t.Fatalf("TopAuthFailures = %+v, want %+v", top, want)
	}
	for i := range want {
		g := top[i]
		if g.Site != want[i].Site || g.Client != want[i].Client || g.UserAgent != want[i].UserAgent || g.Status != want[i].Status ||
			g.Reason != want[i].Reason || g.Count != want[i].Count || !g.FirstSeen.Equal(want[i].FirstSeen) || !g.LastSeen.Equal(want[i].LastSeen) {
			t.Fatalf("TopAuthFailures[%d] = %+v, want %+v", i, g, want[i])
		}
	}
	// Since the second minute: only its rows.
	if late, err := s.TopAuthFailures(ctx, m1, 10); err != nil || len(late) != 2 || late[0].Count != 4 || late[0].Status != 429 {
		t.Fatalf("TopAuthFailures(since m1) = %+v, %v", late, err)
	}
	tot, err := s.AuthFailureTotals(ctx, m0, nil, 1, 0)
	if err != nil || len(tot) != 1 || tot[0].Count != 17 {
		t.Fatalf("AuthFailureTotals(total) = %+v, %v; want one row of 17", tot, err)
	}
	byClient, err := s.AuthFailureTotals(ctx, m0, []string{"client"}, 4, 0)
	if err != nil || len(byClient) != 2 || byClient[0].Client != "a_1" || byClient[0].Count != 12 || byClient[1].Client != "a_2" || byClient[0].UserAgent != "" {
		t.Fatalf("AuthFailureTotals(by client, min 4) = %+v, %v", byClient, err)
	}
	bySite, err := s.AuthFailureTotals(ctx, m0, []string{"site"}, 1, 1)
	if err != nil || len(bySite) != 1 || bySite[0].Site != "" || bySite[0].Count != 16 {
		t.Fatalf("AuthFailureTotals(by site, limit 1) = %+v, %v", bySite, err)
	}
	if _, err := s.AuthFailureTotals(ctx, m0, []string{"count; DROP TABLE x"}, 1, 0); err == nil {
		t.Fatal("AuthFailureTotals grouped by an unknown field")
	}

	// One claim per rule and key within a window, across callers.
	now := m1
	if ok, err := s.ClaimAlert(ctx, "stuffing", "a_1", now, time.Hour); err != nil || !ok {
		t.Fatalf("first ClaimAlert = %v, %v", ok, err)
	}
	if ok, err := s.ClaimAlert(ctx, "stuffing", "a_1", now.Add(30*time.Minute), time.Hour); err != nil || ok {
		t.Fatalf("ClaimAlert within the window = %v, %v; want refused", ok, err)
	}
	if ok, err := s.ClaimAlert(ctx, "stuffing", "a_2", now, time.Hour); err != nil || !ok {
		t.Fatalf("ClaimAlert for another key = %v, %v", ok, err)
	}
	if ok, err := s.ClaimAlert(ctx, "stuffing", "a_1", now.Add(time.Hour), time.Hour); err != nil || !ok {
		t.Fatalf("ClaimAlert after the window = %v, %v", ok, err)
	}

	// Retention: the first minute goes, the second stays.
	n, err := s.PruneAuthFailures(ctx, m1)
	if err != nil || n != 3 {
		t.Fatalf("PruneAuthFailures = %d, %v; want the 3 rows of the first minute", n, err)
	}
	if tot, err := s.AuthFailureTotals(ctx, m0, nil, 1, 0); err != nil || len(tot) != 1 || tot[0].Count != 6 {
		t.Fatalf("after prune, total = %+v, %v; want 6", tot, err)
	}
}
