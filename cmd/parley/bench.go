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
		Short: "Load generator: simulated Web Chat clients through the full path, compared with an in-memory relay",
		Long: `Without --target, bench starts a gateway ('parley demo' on a temporary data directory, with
every security feature and durable storage on) and, as the floor, a minimal in-memory relay (no
auth, no persistence: a benchmark fixture, not a product mode), each as its own process, and
reports round trips per second, p50/p99 latency, server CPU per round trip, lost and duplicated
messages, idle memory per open conversation and token generation rate, with the gateway/floor
ratios. --runs N measures each level N times and adds the median ratios (figures on a shared
machine move between runs). With --target and --secret it loads an already running gateway instead.`,
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

	relay := &cobra.Command{
		Use:    "relay",
		Short:  "Run the in-memory relay floor (benchmark fixture; no auth, no persistence)",
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
			r := bench.NewRelay(base, "http://"+botLn.Addr().String()+"/api/messages")
			go func() {
				_ = (&http.Server{Handler: echobot.New(a.logger("warn"), nil), ReadHeaderTimeout: 10 * time.Second}).Serve(botLn)
			}()
			srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
			go func() { <-cmd.Context().Done(); _ = srv.Close() }()
			if err := json.NewEncoder(a.stdout).Encode(map[string]string{"directline": base + "/v3/directline"}); err != nil {
				return err
			}
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
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
	Levels []levelReport `json:"levels"`
	// Medians has, per level, the median ratios over the runs.
	Medians []medianReport `json:"medians"`
	// Idle memory per open conversation with its WebSocket, bytes.
	IdleBytesGateway int64   `json:"idleBytesPerConversationGateway"`
	IdleBytesFloor   int64   `json:"idleBytesPerConversationFloor"`
	TokensPerSecond  float64 `json:"tokensPerSecond"`
}

type medianReport struct {
	Clients         int     `json:"clients"`
	Runs            int     `json:"runs"`
	ThroughputRatio float64 `json:"throughputRatio"`
	CPURatio        float64 `json:"cpuPerRoundTripRatio"`
	P99Ratio        float64 `json:"p99Ratio"`
}

type levelReport struct {
	Run     int          `json:"run"`
	Gateway bench.Result `json:"gateway"`
	Floor   bench.Result `json:"floor"`
	// Ratios gateway/floor.
	ThroughputRatio float64 `json:"throughputRatio"`
	CPURatio        float64 `json:"cpuPerRoundTripRatio"`
	P99Ratio        float64 `json:"p99Ratio"`
}

func (a *app) benchCompare(ctx context.Context, levels []int, messages, runs, idle, tokenWorkers int, tokenTime, idleWait time.Duration, asJSON bool) error {
	dir, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	gw, err := spawn("demo", "--json", "--listen", "127.0.0.1:0", "--data", dir, "--webchat-url", "http://127.0.0.1:1/unused.js", "--no-rate-limits")
	if err != nil {
		return err
	}
	defer gw.stop()
	floor, err := spawn("bench", "relay")
	if err != nil {
		return err
	}
	defer floor.stop()
	gwT := bench.Target{DirectLine: gw.info["directline"], Secret: gw.info["secret"], Origin: gw.info["origin"]}
	flT := bench.Target{DirectLine: floor.info["directline"]}
	var rep benchReport
	// Idle memory first, on fresh processes, both servers at once.
	if idle > 0 {
		var wg sync.WaitGroup
		var ferr, gerr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			rep.IdleBytesFloor, ferr = bench.IdleMemory(ctx, flT, idle, floor.cmd.Process.Pid, idleWait)
		}()
		go func() {
			defer wg.Done()
			rep.IdleBytesGateway, gerr = bench.IdleMemory(ctx, gwT, idle, gw.cmd.Process.Pid, idleWait)
		}()
		wg.Wait()
		if err := errors.Join(ferr, gerr); err != nil {
			return fmt.Errorf("idle memory: %w", err)
		}
	}
	for _, n := range levels {
		// Warm both up, then measure the floor and the gateway in turn.
		if _, err := bench.Load(ctx, flT, min(n, 10), 3, 0); err != nil {
			return fmt.Errorf("floor warm-up: %w", err)
		}
		if _, err := bench.Load(ctx, gwT, min(n, 10), 3, 0); err != nil {
			return fmt.Errorf("gateway warm-up: %w", err)
		}
		var tp, cpu, p99 []float64
		for run := 1; run <= runs; run++ {
			fr, err := bench.Load(ctx, flT, n, messages, floor.cmd.Process.Pid)
			if err != nil {
				return fmt.Errorf("floor: %w", err)
			}
			gr, err := bench.Load(ctx, gwT, n, messages, gw.cmd.Process.Pid)
			if err != nil {
				return fmt.Errorf("gateway: %w", err)
			}
			l := levelReport{Run: run, Gateway: gr, Floor: fr,
				ThroughputRatio: ratio(gr.PerSecond, fr.PerSecond),
				CPURatio:        ratio(float64(gr.CPUPerRoundTr), float64(fr.CPUPerRoundTr)),
				P99Ratio:        ratio(float64(gr.P99), float64(fr.P99))}
			rep.Levels = append(rep.Levels, l)
			tp, cpu, p99 = append(tp, l.ThroughputRatio), append(cpu, l.CPURatio), append(p99, l.P99Ratio)
		}
		rep.Medians = append(rep.Medians, medianReport{Clients: n, Runs: runs, ThroughputRatio: median(tp), CPURatio: median(cpu), P99Ratio: median(p99)})
	}
	if tokenTime > 0 {
		if rep.TokensPerSecond, err = bench.TokenRate(ctx, gwT, tokenWorkers, tokenTime); err != nil {
			return fmt.Errorf("token rate: %w", err)
		}
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(a.stdout, "%-8s %-8s %10s %10s %10s %14s %6s %6s %6s\n", "clients", "server", "rt/s", "p50", "p99", "cpu/roundtrip", "lost", "dups", "errors")
	for _, l := range rep.Levels {
		for _, row := range []struct {
			name string
			r    bench.Result
		}{{"floor", l.Floor}, {"parley", l.Gateway}} {
			fmt.Fprintf(a.stdout, "%-8d %-8s %10.0f %10s %10s %14s %6d %6d %6d\n", row.r.Clients, row.name, row.r.PerSecond,
				row.r.P50.Round(10*time.Microsecond), row.r.P99.Round(10*time.Microsecond), row.r.CPUPerRoundTr.Round(time.Microsecond), row.r.Lost, row.r.Duplicated, row.r.Errors)
		}
		label := "ratios  "
		if runs > 1 {
			label = fmt.Sprintf("run %-4d", l.Run)
		}
		fmt.Fprintf(a.stdout, "%-8d %s throughput %.2fx (target >= 0.5), cpu/roundtrip %.2fx (<= 2.5), p99 %.2fx (<= 2)\n", l.Gateway.Clients, label, l.ThroughputRatio, l.CPURatio, l.P99Ratio)
	}
	if runs > 1 {
		for _, m := range rep.Medians {
			fmt.Fprintf(a.stdout, "%-8d median of %d runs: throughput %.2fx, cpu/roundtrip %.2fx, p99 %.2fx\n", m.Clients, m.Runs, m.ThroughputRatio, m.CPURatio, m.P99Ratio)
		}
	}
	if idle > 0 {
		fmt.Fprintf(a.stdout, "idle memory per open conversation + WebSocket: parley %.1f KB, floor %.1f KB (%d conversations)\n", float64(rep.IdleBytesGateway)/1024, float64(rep.IdleBytesFloor)/1024, idle)
	}
	if tokenTime > 0 {
		fmt.Fprintf(a.stdout, "token generation: %.0f tokens/s (%d concurrent callers)\n", rep.TokensPerSecond, tokenWorkers)
	}
	return nil
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
