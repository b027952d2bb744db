package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-gw/parley/internal/bench"
	"github.com/parley-gw/parley/internal/echobot"
)

func (a *app) benchCmd() *cobra.Command {
	var clientsFlag, target, secret, origin string
	var messages, idle, tokenWorkers, pid, runs int
	var tokenTime, idleWait time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load generator: simulated Web Chat clients through the full path, compared with two relay floors",
		Long: `Without --target, bench starts, each as its own process, two gateways ('parley demo' on
temporary data directories, every security feature on), one with store.durability full and one
with normal, and two floors: a minimal relay (no auth, no security: a benchmark fixture, not a
product mode) in memory, and the same relay made durable (every activity it accepts appended to a
file and fdatasync'd, with group commit, before it is acknowledged or passed on). It reports round
trips per second, p50/p99 latency, server CPU per round trip, lost and duplicated messages for all
four, the ratios Parley/floor with a PASS/FAIL per target (full against the durable floor, normal
against the in-memory floor), idle memory per open conversation and the token generation rate.
--runs N measures each level N times and judges the median ratios (figures on a shared machine
move between runs). With --target and --secret it loads an already running gateway instead.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var levels []int
			for _, s := range strings.Split(clientsFlag, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil || n < 1 || n > 5000 {
					return fmt.Errorf("--clients: %q is not a number of clients (1-5000)", s)
				}
				levels = append(levels, n)
			}
			if messages < 1 || idle < 0 || runs < 1 || runs > 100 {
				return errors.New("--messages and --runs (at most 100) must be at least 1, --idle not negative")
			}
			ctx := cmd.Context()
			if target != "" {
				return a.benchTarget(ctx, bench.Target{DirectLine: strings.TrimRight(target, "/"), Secret: secret, Origin: origin}, levels, messages, pid, asJSON)
			}
			return a.benchCompare(ctx, levels, messages, runs, idle, tokenWorkers, tokenTime, idleWait, asJSON)
		},
	}
	cmd.Flags().StringVar(&clientsFlag, "clients", "10,100", "concurrent conversations, comma-separated levels")
	cmd.Flags().IntVar(&messages, "messages", 200, "round trips per conversation (the first ones warm a conversation up: fewer make noisy figures)")
	cmd.Flags().IntVar(&runs, "runs", 1, "measure each level this many times (floor and gateway alternating) and report the median ratios too")
	cmd.Flags().IntVar(&idle, "idle", 1000, "open idle conversations for the memory measurement (0: skip)")
	cmd.Flags().DurationVar(&idleWait, "idle-wait", 130*time.Second, "how long the idle conversations stay open before memory is read (Go's forced GC runs every 2 minutes)")
	cmd.Flags().IntVar(&tokenWorkers, "token-workers", 32, "concurrent callers for the token generation rate")
	cmd.Flags().DurationVar(&tokenTime, "token-time", 3*time.Second, "how long to measure token generation")
	cmd.Flags().StringVar(&target, "target", "", "Direct Line base URL of a running gateway (…/v3/directline)")
	cmd.Flags().StringVar(&secret, "secret", "", "site secret for --target")
	cmd.Flags().StringVar(&origin, "origin", "", "Origin header to send (a trusted origin of the site)")
	cmd.Flags().IntVar(&pid, "pid", 0, "with --target: the gateway's process id, to measure its CPU")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print results as JSON")

	var journal string
	var prealloc int64
	relay := &cobra.Command{
		Use:    "relay",
		Short:  "Run a relay floor (benchmark fixture; no auth; in memory, or durable with --journal)",
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stopPprof, err := a.startPprof(a.logger("warn"))
			if err != nil {
				return err
			}
			defer stopPprof()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			botLn, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			base := "http://" + ln.Addr().String()
			botURL := "http://" + botLn.Addr().String() + "/api/messages"
			r := bench.NewRelay(base, botURL)
			mux := http.NewServeMux()
			if prealloc < 0 {
				return errors.New("--journal-prealloc: a number of bytes, 0 or more")
			}
			if journal != "" {
				j, err := bench.OpenJournal(journal, prealloc)
				if err != nil {
					return err
				}
				defer j.Close()
				r = bench.NewDurableRelay(base, botURL, j)
				mux.HandleFunc("GET /bench/journal", func(w http.ResponseWriter, _ *http.Request) {
					appends, syncs := j.Stats()
					_ = json.NewEncoder(w).Encode(map[string]int64{"appends": appends, "syncs": syncs})
				})
			}
			mux.Handle("/", r.Handler())
			go func() {
				_ = (&http.Server{Handler: echobot.New(a.logger("warn"), nil), ReadHeaderTimeout: 10 * time.Second}).Serve(botLn)
			}()
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			go func() { <-cmd.Context().Done(); _ = srv.Close() }()
			info := map[string]string{"directline": base + "/v3/directline"}
			if journal != "" {
				info["stats"] = base + "/bench/journal"
			}
			if err := json.NewEncoder(a.stdout).Encode(info); err != nil {
				return err
			}
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	relay.Flags().StringVar(&journal, "journal", "", "durable floor: append every accepted activity to this file and fdatasync it (group commit) before acknowledging or passing it on")
	relay.Flags().Int64Var(&prealloc, "journal-prealloc", 64<<20, "extend the journal with zeros in steps of this many bytes and write records over them (an fdatasync then flushes data only, as SQLite's reused WAL does); 0: plain appends that grow the file")
	cmd.AddCommand(relay)
	return cmd
}

type proc struct {
	cmd  *exec.Cmd
	info map[string]string
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// spawn runs this binary with args and reads the JSON line it prints.
func spawn(args ...string) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "PARLEY_LOG_LEVEL=error")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("%s did not start: %w", args[0], err)
	}
	if err := json.Unmarshal([]byte(line), &p.info); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s printed %q", args[0], line)
	}
	return p, nil
}

type benchReport struct {
	// The machine: load averages (1, 5, 15 min) before and after the run,
	// and processor count; the figures mean little on a busy machine.
	LoadBefore string        `json:"loadBefore"`
	LoadAfter  string        `json:"loadAfter"`
	CPUs       int           `json:"cpus"`
	Levels     []levelReport `json:"levels"`
	// Medians has, per level, the median ratios over the runs and the
	// verdict against each target.
	Medians []medianReport `json:"medians"`
	// Idle memory per open conversation with its WebSocket, bytes
	// (Parley with durability full against the in-memory floor).
	IdleBytesGateway int64   `json:"idleBytesPerConversationGateway"`
	IdleBytesFloor   int64   `json:"idleBytesPerConversationFloor"`
	TokensPerSecond  float64 `json:"tokensPerSecond"`
	// The durable floor's journal over the whole run: records appended and
	// the fdatasyncs that made them durable (group commit).
	JournalAppends int64 `json:"durableFloorAppends"`
	JournalSyncs   int64 `json:"durableFloorSyncs"`
}

// The four servers of a comparison run.
const (
	srvMemory  = "floor-memory"
	srvDurable = "floor-durable"
	srvFull    = "parley-full"
	srvNormal  = "parley-normal"
)

var benchServers = []string{srvMemory, srvDurable, srvFull, srvNormal}

// target is what a ratio Parley/floor must reach.
type target struct {
	MinThroughput float64 `json:"minThroughputRatio"`
	MaxCPU        float64 `json:"maxCpuPerRoundTripRatio"`
	MaxP99        float64 `json:"maxP99Ratio"`
}

// comparisonSpec pairs a Parley server with a floor and the target set by
// issue 11 item 12 (nil: reported without a target).
type comparisonSpec struct {
	name, parley, floor string
	target              *target
}

var comparisons = []comparisonSpec{
	// Parley keeping its promise against a relay keeping the same promise.
	{"full vs durable floor", srvFull, srvDurable, &target{MinThroughput: 0.8, MaxCPU: 1.5, MaxP99: 1.5}},
	// Without fsync per commit, against the relay without any: the core
	// issue's original ratios.
	{"normal vs in-memory floor", srvNormal, srvMemory, &target{MinThroughput: 0.5, MaxCPU: 2.5, MaxP99: 2}},
	// For reference: what synchronous commits cost against no persistence.
	{"full vs in-memory floor", srvFull, srvMemory, nil},
}

type comparison struct {
	Name            string  `json:"name"`
	Parley          string  `json:"parley"`
	Floor           string  `json:"floor"`
	ThroughputRatio float64 `json:"throughputRatio"`
	CPURatio        float64 `json:"cpuPerRoundTripRatio"`
	P99Ratio        float64 `json:"p99Ratio"`
	Target          *target `json:"target,omitempty"`
	// Verdicts, with a target only.
	ThroughputPass *bool `json:"throughputPass,omitempty"`
	CPUPass        *bool `json:"cpuPerRoundTripPass,omitempty"`
	P99Pass        *bool `json:"p99Pass,omitempty"`
}

func (c *comparison) judge() {
	if c.Target == nil {
		return
	}
	tp, cpu, p99 := c.ThroughputRatio >= c.Target.MinThroughput, c.CPURatio <= c.Target.MaxCPU, c.P99Ratio <= c.Target.MaxP99
	c.ThroughputPass, c.CPUPass, c.P99Pass = &tp, &cpu, &p99
}

type medianReport struct {
	Clients     int          `json:"clients"`
	Runs        int          `json:"runs"`
	Comparisons []comparison `json:"comparisons"`
}

type levelReport struct {
	Run     int                     `json:"run"`
	Clients int                     `json:"clients"`
	Results map[string]bench.Result `json:"results"` // by server name
	// Commits per round trip (Parley: store transactions, fsynced with
	// full; durable floor: fdatasyncs) and the writes each carried (group
	// commit), by server name, where the server counts them.
	CommitsPerRoundTrip map[string]float64 `json:"commitsPerRoundTrip"`
	WritesPerCommit     map[string]float64 `json:"writesPerCommit"`
	// Ratios Parley/floor, without verdicts (those are on the medians).
	Comparisons []comparison `json:"comparisons"`
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func (a *app) benchCompare(ctx context.Context, levels []int, messages, runs, idle, tokenWorkers int, tokenTime, idleWait time.Duration, asJSON bool) error {
	dir, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rep := benchReport{LoadBefore: loadAvg(), CPUs: runtime.NumCPU()}
	procs := map[string]*proc{}
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	// Both gateways and the durable floor's journal live in the same
	// temporary directory: the same disk.
	for name, args := range map[string][]string{
		srvFull:    {"demo", "--json", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "full"), "--durability", "full", "--webchat-url", "http://127.0.0.1:1/unused.js", "--no-rate-limits"},
		srvNormal:  {"demo", "--json", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "normal"), "--durability", "normal", "--webchat-url", "http://127.0.0.1:1/unused.js", "--no-rate-limits"},
		srvMemory:  {"bench", "relay"},
		srvDurable: {"bench", "relay", "--journal", filepath.Join(dir, "journal")},
	} {
		p, err := spawn(args...)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		procs[name] = p
	}
	targets := map[string]bench.Target{}
	for name, p := range procs {
		targets[name] = bench.Target{DirectLine: p.info["directline"], Secret: p.info["secret"], Origin: p.info["origin"]}
	}
	// Idle memory first, on fresh processes, both servers at once.
	if idle > 0 {
		var wg sync.WaitGroup
		var ferr, gerr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			rep.IdleBytesFloor, ferr = bench.IdleMemory(ctx, targets[srvMemory], idle, procs[srvMemory].cmd.Process.Pid, idleWait)
		}()
		go func() {
			defer wg.Done()
			rep.IdleBytesGateway, gerr = bench.IdleMemory(ctx, targets[srvFull], idle, procs[srvFull].cmd.Process.Pid, idleWait)
		}()
		wg.Wait()
		if err := errors.Join(ferr, gerr); err != nil {
			return fmt.Errorf("idle memory: %w", err)
		}
	}
	for _, n := range levels {
		// Warm all four up, then measure them in turn, run after run.
		for _, name := range benchServers {
			if _, err := bench.Load(ctx, targets[name], min(n, 10), 3, 0); err != nil {
				return fmt.Errorf("%s warm-up: %w", name, err)
			}
		}
		ratios := make([][3][]float64, len(comparisons))
		for run := 1; run <= runs; run++ {
			l := levelReport{Run: run, Clients: n, Results: map[string]bench.Result{}, CommitsPerRoundTrip: map[string]float64{}, WritesPerCommit: map[string]float64{}}
			// Each run starts with the next server, so that none is always
			// measured first or last as the machine's load drifts.
			for k := range benchServers {
				name := benchServers[(k+run-1)%len(benchServers)]
				c0, w0, counted := commitCounts(ctx, procs[name])
				r, err := bench.Load(ctx, targets[name], n, messages, procs[name].cmd.Process.Pid)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				l.Results[name] = r
				if c1, w1, ok := commitCounts(ctx, procs[name]); counted && ok && r.RoundTrips > 0 && c1 > c0 {
					l.CommitsPerRoundTrip[name] = (c1 - c0) / float64(r.RoundTrips)
					l.WritesPerCommit[name] = (w1 - w0) / (c1 - c0)
				}
			}
			for i, c := range comparisons {
				g, f := l.Results[c.parley], l.Results[c.floor]
				cmp := comparison{Name: c.name, Parley: c.parley, Floor: c.floor,
					ThroughputRatio: ratio(g.PerSecond, f.PerSecond),
					CPURatio:        ratio(float64(g.CPUPerRoundTr), float64(f.CPUPerRoundTr)),
					P99Ratio:        ratio(float64(g.P99), float64(f.P99))}
				l.Comparisons = append(l.Comparisons, cmp)
				ratios[i][0] = append(ratios[i][0], cmp.ThroughputRatio)
				ratios[i][1] = append(ratios[i][1], cmp.CPURatio)
				ratios[i][2] = append(ratios[i][2], cmp.P99Ratio)
			}
			rep.Levels = append(rep.Levels, l)
		}
		m := medianReport{Clients: n, Runs: runs}
		for i, c := range comparisons {
			cmp := comparison{Name: c.name, Parley: c.parley, Floor: c.floor, Target: c.target,
				ThroughputRatio: median(ratios[i][0]), CPURatio: median(ratios[i][1]), P99Ratio: median(ratios[i][2])}
			cmp.judge()
			m.Comparisons = append(m.Comparisons, cmp)
		}
		rep.Medians = append(rep.Medians, m)
	}
	if tokenTime > 0 {
		if rep.TokensPerSecond, err = bench.TokenRate(ctx, targets[srvFull], tokenWorkers, tokenTime); err != nil {
			return fmt.Errorf("token rate: %w", err)
		}
	}
	if st, err := journalStats(ctx, procs[srvDurable].info["stats"]); err == nil {
		rep.JournalAppends, rep.JournalSyncs = st.Appends, st.Syncs
	}
	rep.LoadAfter = loadAvg()
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	a.printBench(rep, runs, idle, tokenTime, tokenWorkers)
	return nil
}

// commitCounts reads a server's durable commits and the writes they
// carried: the durable floor's journal statistics, or Parley's
// parley_store_commits_total and parley_store_committed_writes_total.
func commitCounts(ctx context.Context, p *proc) (commits, writes float64, ok bool) {
	if u := p.info["stats"]; u != "" {
		st, err := journalStats(ctx, u)
		return float64(st.Syncs), float64(st.Appends), err == nil
	}
	// The demo's metrics listener (parley demo --json: "metrics").
	metricsURL := p.info["metrics"]
	if metricsURL == "" {
		return 0, 0, false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, 0, false
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, false
	}
	defer res.Body.Close()
	found := 0
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "parley_store_commits_total":
			commits, found = v, found+1
		case "parley_store_committed_writes_total":
			writes, found = v, found+1
		}
	}
	return commits, writes, found == 2 && sc.Err() == nil
}

func journalStats(ctx context.Context, url string) (st struct{ Appends, Syncs int64 }, err error) {
	if url == "" {
		return st, errors.New("no stats address")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return st, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer res.Body.Close()
	return st, json.NewDecoder(res.Body).Decode(&st)
}

func verdict(ok *bool) string {
	if ok == nil {
		return ""
	}
	if *ok {
		return " PASS"
	}
	return " FAIL"
}

func (a *app) printBench(rep benchReport, runs, idle int, tokenTime time.Duration, tokenWorkers int) {
	w := a.stdout
	fmt.Fprintf(w, "machine: %d CPUs, load average %s before, %s after\n", rep.CPUs, rep.LoadBefore, rep.LoadAfter)
	fmt.Fprintf(w, "%-8s %-14s %10s %10s %10s %14s %6s %6s %6s %16s\n", "clients", "server", "rt/s", "p50", "p99", "cpu/roundtrip", "lost", "dups", "errors", "commits/rt (w/c)")
	for _, l := range rep.Levels {
		for _, name := range benchServers {
			r := l.Results[name]
			commits := "-"
			if c, ok := l.CommitsPerRoundTrip[name]; ok {
				commits = fmt.Sprintf("%.2f (%.1f)", c, l.WritesPerCommit[name])
			}
			fmt.Fprintf(w, "%-8d %-14s %10.0f %10s %10s %14s %6d %6d %6d %16s\n", l.Clients, name, r.PerSecond,
				r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.CPUPerRoundTr.Round(time.Microsecond), r.Lost, r.Duplicated, r.Errors, commits)
			for _, e := range r.ErrorSamples {
				fmt.Fprintf(w, "         %s error: %s\n", name, e)
			}
		}
		label := ""
		if runs > 1 {
			label = fmt.Sprintf(" (run %d)", l.Run)
		}
		for _, c := range l.Comparisons {
			fmt.Fprintf(w, "%-8d %-26s throughput %.2fx, cpu/roundtrip %.2fx, p99 %.2fx%s\n", l.Clients, c.Name, c.ThroughputRatio, c.CPURatio, c.P99Ratio, label)
		}
	}
	which := "one run"
	if runs > 1 {
		which = fmt.Sprintf("median of %d runs", runs)
	}
	fmt.Fprintf(w, "\ntargets (issue 11 item 12; %s):\n", which)
	for _, m := range rep.Medians {
		for _, c := range m.Comparisons {
			if c.Target == nil {
				fmt.Fprintf(w, "%-8d %-26s throughput %.2fx, cpu/roundtrip %.2fx, p99 %.2fx (no target: reference only)\n", m.Clients, c.Name, c.ThroughputRatio, c.CPURatio, c.P99Ratio)
				continue
			}
			fmt.Fprintf(w, "%-8d %-26s throughput %.2fx (>= %.1f)%s, cpu/roundtrip %.2fx (<= %.1f)%s, p99 %.2fx (<= %.1f)%s\n", m.Clients, c.Name,
				c.ThroughputRatio, c.Target.MinThroughput, verdict(c.ThroughputPass),
				c.CPURatio, c.Target.MaxCPU, verdict(c.CPUPass),
				c.P99Ratio, c.Target.MaxP99, verdict(c.P99Pass))
		}
	}
	if rep.JournalSyncs > 0 {
		fmt.Fprintf(w, "durable floor: %d activities journaled with %d fdatasyncs (%.1f per sync)\n", rep.JournalAppends, rep.JournalSyncs, float64(rep.JournalAppends)/float64(rep.JournalSyncs))
	}
	if idle > 0 {
		fmt.Fprintf(w, "idle memory per open conversation + WebSocket: parley %.1f KB, in-memory floor %.1f KB (%d conversations)\n", float64(rep.IdleBytesGateway)/1024, float64(rep.IdleBytesFloor)/1024, idle)
	}
	if tokenTime > 0 {
		fmt.Fprintf(w, "token generation: %.0f tokens/s (%d concurrent callers)\n", rep.TokensPerSecond, tokenWorkers)
	}
}

// median of a non-empty slice (sorts it).
func median(v []float64) float64 {
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (a *app) benchTarget(ctx context.Context, t bench.Target, levels []int, messages, pid int, asJSON bool) error {
	if t.Secret == "" {
		return errors.New("--target needs --secret")
	}
	var out []bench.Result
	for _, n := range levels {
		r, err := bench.Load(ctx, t, n, messages, pid)
		if err != nil {
			return err
		}
		out = append(out, r)
	}
	if asJSON {
		return json.NewEncoder(a.stdout).Encode(out)
	}
	for _, r := range out {
		fmt.Fprintf(a.stdout, "clients %d: %.0f round trips/s, p50 %s, p99 %s, cpu/roundtrip %s, lost %d, duplicated %d, errors %d\n",
			r.Clients, r.PerSecond, r.P50, r.P99, r.CPUPerRoundTr, r.Lost, r.Duplicated, r.Errors)
	}
	return nil
}
