package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"
)

// TestBenchRunsBothServers runs the shipped load generator briefly: it must
// start a gateway and the floor, drive every simulated client through the
// full path on both, and account for every round trip. (Enough round trips
// for /proc's 10 ms CPU accounting to see both servers work.)
func TestBenchRunsBothServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "bench", "--clients", "3", "--messages", "40", "--idle", "0", "--token-time", "300ms", "--runs", "2", "--json").Output()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	var rep benchReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("bench printed %q: %v", out, err)
	}
	if len(rep.Levels) != 2 || len(rep.Medians) != 1 {
		t.Fatalf("levels = %+v, medians = %+v", rep.Levels, rep.Medians)
	}
	m := rep.Medians[0]
	if m.Runs != 2 || m.Clients != 3 || m.ThroughputRatio != (rep.Levels[0].ThroughputRatio+rep.Levels[1].ThroughputRatio)/2 {
		t.Errorf("median = %+v of %+v", m, rep.Levels)
	}
	for _, l := range rep.Levels {
		for name, r := range map[string]struct {
			trips, lost, dups, errs int
			perSecond               float64
			cpu                     time.Duration
		}{
			"gateway": {l.Gateway.RoundTrips, l.Gateway.Lost, l.Gateway.Duplicated, l.Gateway.Errors, l.Gateway.PerSecond, l.Gateway.CPUPerRoundTr},
			"floor":   {l.Floor.RoundTrips, l.Floor.Lost, l.Floor.Duplicated, l.Floor.Errors, l.Floor.PerSecond, l.Floor.CPUPerRoundTr},
		} {
			if r.trips != 120 || r.lost != 0 || r.dups != 0 || r.errs != 0 {
				t.Errorf("%s: %d round trips (want 120), %d lost, %d duplicated, %d errors", name, r.trips, r.lost, r.dups, r.errs)
			}
			if r.perSecond <= 0 || r.cpu <= 0 {
				t.Errorf("%s: %.0f round trips/s, %s CPU per round trip: not measured", name, r.perSecond, r.cpu)
			}
		}
		if l.ThroughputRatio <= 0 || l.CPURatio <= 0 || l.P99Ratio <= 0 {
			t.Errorf("ratios not computed: %+v", l)
		}
	}
	if rep.TokensPerSecond <= 0 {
		t.Errorf("token rate = %v", rep.TokensPerSecond)
	}
}
