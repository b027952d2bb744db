package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBenchRunsAllServers runs the shipped load generator briefly: it must
// start both gateways (durability full and normal) and both floors (in
// memory and durable), drive every simulated client through the full path
// on all four, account for every round trip, judge the median ratios
// against the targets, and show that the durable floor journaled with group
// commit. (Enough round trips for /proc's 10 ms CPU accounting to see each
// server work.)
func TestBenchRunsAllServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four servers")
	}
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
	if rep.CPUs < 1 || rep.LoadBefore == "" || rep.LoadBefore == "unknown" || rep.LoadAfter == "" {
		t.Errorf("machine not described: %d CPUs, load %q then %q", rep.CPUs, rep.LoadBefore, rep.LoadAfter)
	}
	for _, l := range rep.Levels {
		for _, name := range benchServers {
			r, ok := l.Results[name]
			if !ok {
				t.Fatalf("run %d: no result for %s", l.Run, name)
			}
			if r.RoundTrips != 120 || r.Lost != 0 || r.Duplicated != 0 || r.Errors != 0 {
				t.Errorf("%s: %d round trips (want 120), %d lost, %d duplicated, %d errors", name, r.RoundTrips, r.Lost, r.Duplicated, r.Errors)
			}
			if r.PerSecond <= 0 || r.CPUPerRoundTr <= 0 {
				t.Errorf("%s: %.0f round trips/s, %s CPU per round trip: not measured", name, r.PerSecond, r.CPUPerRoundTr)
			}
		}
		// Durable commits per round trip: each durable server counts them
		// (a conversationUpdate and greeting per conversation come on
		// top, so a little over 0 and at most ~3 per round trip).
		for _, name := range []string{srvDurable, srvFull, srvNormal} {
			c, w := l.CommitsPerRoundTrip[name], l.WritesPerCommit[name]
			if c <= 0 || c > 4 || w < 1 {
				t.Errorf("%s: %v commits per round trip carrying %v writes each", name, c, w)
			}
		}
		if _, ok := l.CommitsPerRoundTrip[srvMemory]; ok {
			t.Errorf("the in-memory floor has no commits: %v", l.CommitsPerRoundTrip)
		}
		if len(l.Comparisons) != len(comparisons) {
			t.Fatalf("comparisons = %+v", l.Comparisons)
		}
		for _, c := range l.Comparisons {
			g, f := l.Results[c.Parley], l.Results[c.Floor]
			if c.ThroughputRatio != g.PerSecond/f.PerSecond || c.P99Ratio != float64(g.P99)/float64(f.P99) {
				t.Errorf("%s: ratios %+v do not match %s/%s", c.Name, c, c.Parley, c.Floor)
			}
		}
	}
	m := rep.Medians[0]
	if m.Runs != 2 || m.Clients != 3 || len(m.Comparisons) != 3 {
		t.Fatalf("median = %+v", m)
	}
	want := map[string][2]string{
		"full vs durable floor":     {srvFull, srvDurable},
		"normal vs in-memory floor": {srvNormal, srvMemory},
		"full vs in-memory floor":   {srvFull, srvMemory},
	}
	for i, c := range m.Comparisons {
		if p := want[c.Name]; p[0] != c.Parley || p[1] != c.Floor {
			t.Errorf("comparison %q pairs %s with %s", c.Name, c.Parley, c.Floor)
		}
		if mean := (rep.Levels[0].Comparisons[i].ThroughputRatio + rep.Levels[1].Comparisons[i].ThroughputRatio) / 2; c.ThroughputRatio != mean {
			t.Errorf("%s: median throughput ratio %v, want %v", c.Name, c.ThroughputRatio, mean)
		}
		if c.Target == nil {
			if c.ThroughputPass != nil {
				t.Errorf("%s: a verdict without a target", c.Name)
			}
			continue
		}
		if c.ThroughputPass == nil || c.CPUPass == nil || c.P99Pass == nil ||
			*c.ThroughputPass != (c.ThroughputRatio >= c.Target.MinThroughput) ||
			*c.CPUPass != (c.CPURatio <= c.Target.MaxCPU) || *c.P99Pass != (c.P99Ratio <= c.Target.MaxP99) {
			t.Errorf("%s: verdicts do not follow the ratios: %+v", c.Name, c)
		}
	}
	if d := m.Comparisons[0].Target; d == nil || d.MinThroughput != 0.8 || d.MaxCPU != 1.5 || d.MaxP99 != 1.5 {
		t.Errorf("durable floor target = %+v", d)
	}
	if n := m.Comparisons[1].Target; n == nil || n.MinThroughput != 0.5 || n.MaxCPU != 2.5 || n.MaxP99 != 2 {
		t.Errorf("in-memory floor target = %+v", n)
	}
	// Durable floor: the warm-ups and the two runs, every activity
	// (conversationUpdate, greeting, each message and its echo) journaled;
	// 3 conversations at once share fdatasyncs.
	if rep.JournalAppends < 2*3*(2+2*40) || rep.JournalSyncs < 1 || rep.JournalSyncs >= rep.JournalAppends {
		t.Errorf("durable floor journal: %d appends, %d fdatasyncs", rep.JournalAppends, rep.JournalSyncs)
	}
	if rep.TokensPerSecond <= 0 {
		t.Errorf("token rate = %v", rep.TokensPerSecond)
	}
}

// The text report names every server and prints a verdict per target.
func TestBenchTextReport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four servers")
	}
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "bench", "--clients", "2", "--messages", "20", "--idle", "0", "--token-time", "0").Output()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"machine: ", "load average", srvMemory, srvDurable, srvFull, srvNormal,
		"full vs durable floor", "normal vs in-memory floor", "full vs in-memory floor", "(>= 0.8)", "(<= 2.5)", "no target", "fdatasyncs", "commits/rt"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, " PASS") + strings.Count(s, " FAIL"); n != 6 {
		t.Errorf("%d verdicts, want 6 (3 ratios x 2 targets):\n%s", n, s)
	}
}
