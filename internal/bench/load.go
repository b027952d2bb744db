package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Target is a Direct Line endpoint to load. Secret is empty for the relay,
// which needs no credentials.
type Target struct {
	DirectLine string // …/v3/directline
	Secret     string
	Origin     string // sent as Origin, as a browser would
}

// Result is one load run.
type Result struct {
	Clients    int           `json:"clients"`
	RoundTrips int           `json:"roundTrips"`
	Elapsed    time.Duration `json:"elapsedNs"`
	PerSecond  float64       `json:"roundTripsPerSecond"`
	P50        time.Duration `json:"p50Ns"`
	P99        time.Duration `json:"p99Ns"`
	Lost       int           `json:"lost"`
	Duplicated int           `json:"duplicated"`
	Errors     int           `json:"errors"`
	// ErrorSamples are the first errors' messages (which request failed
	// and how), so that an error in a benchmark can be investigated.
	ErrorSamples  []string      `json:"errorSamples,omitempty"`
	ServerCPU     time.Duration `json:"serverCpuNs"`
	CPUPerRoundTr time.Duration `json:"serverCpuPerRoundTripNs"`
}

// Client is a simulated Web Chat: token, start, WebSocket, then post and
// wait for the bot's echo on the stream.
type client struct {
	t      Target
	http   *http.Client
	token  string
	conv   string
	user   string
	ws     *websocket.Conn
	cancel context.CancelFunc

	mu      sync.Mutex
	cond    *sync.Cond
	replies map[string]time.Time // replyToId -> arrival
	seen    map[string]bool
	dups    int
	closed  bool
}

func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 1024
	tr.MaxConnsPerHost = 0
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (c *client) do(ctx context.Context, method, url, auth string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if c.t.Origin != "" {
		req.Header.Set("Origin", c.t.Origin)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func randomUser() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "dl_bench_" + hex.EncodeToString(b)
}

// connect runs token, start and WebSocket open.
func connect(ctx context.Context, t Target, hc *http.Client) (*client, error) {
	c := &client{t: t, http: hc, user: randomUser(), replies: map[string]time.Time{}, seen: map[string]bool{}}
	c.cond = sync.NewCond(&c.mu)
	auth := ""
	if t.Secret != "" {
		var tok struct{ Token string }
		if err := c.do(ctx, "POST", t.DirectLine+"/tokens/generate", t.Secret, map[string]any{"user": map[string]string{"id": c.user}}, &tok); err != nil {
			return nil, err
		}
		auth = tok.Token
	}
	var start struct {
		ConversationID string `json:"conversationId"`
		Token          string `json:"token"`
		StreamURL      string `json:"streamUrl"`
	}
	if err := c.do(ctx, "POST", t.DirectLine+"/conversations", auth, map[string]any{"user": map[string]any{}}, &start); err != nil {
		return nil, err
	}
	c.conv, c.token = start.ConversationID, start.Token
	if t.Secret == "" {
		c.token = ""
	}
	opts := &websocket.DialOptions{HTTPClient: hc, HTTPHeader: http.Header{}, CompressionMode: websocket.CompressionDisabled}
	if t.Origin != "" {
		opts.HTTPHeader.Set("Origin", t.Origin)
	}
	ws, _, err := websocket.Dial(ctx, start.StreamURL, opts)
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	ws.SetReadLimit(1 << 20)
	c.ws = ws
	rctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.read(rctx)
	return c, nil
}

func (c *client) read(ctx context.Context) {
	defer func() {
		c.mu.Lock()
		c.closed = true
		c.cond.Broadcast()
		c.mu.Unlock()
	}()
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		if len(data) == 0 {
			continue
		}
		var set struct {
			Activities []struct {
				ID        string `json:"id"`
				ReplyToID string `json:"replyToId"`
			} `json:"activities"`
		}
		if json.Unmarshal(data, &set) != nil {
			continue
		}
		now := time.Now()
		c.mu.Lock()
		for _, a := range set.Activities {
			if c.seen[a.ID] {
				c.dups++
			}
			c.seen[a.ID] = true
			if a.ReplyToID != "" {
				c.replies[a.ReplyToID] = now
			}
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// roundTrip posts one message and waits for the bot's reply to it.
func (c *client) roundTrip(ctx context.Context, i int, timeout time.Duration) (time.Duration, error) {
	began := time.Now()
	var out struct{ ID string }
	act := map[string]any{"type": "message", "text": "bench message " + strconv.Itoa(i), "from": map[string]string{"id": c.user},
		"channelData": map[string]string{"clientActivityID": c.user + strconv.Itoa(i)}}
	if err := c.do(ctx, "POST", c.t.DirectLine+"/conversations/"+c.conv+"/activities", c.token, act, &out); err != nil {
		return 0, err
	}
	deadline := began.Add(timeout)
	timer := time.AfterFunc(timeout, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if at, ok := c.replies[out.ID]; ok {
			return at.Sub(began), nil
		}
		if c.closed || time.Now().After(deadline) {
			return 0, errLost
		}
		c.cond.Wait()
	}
}

var errLost = errors.New("reply not received")

// maxErrorSamples bounds Result.ErrorSamples.
const maxErrorSamples = 10

func (c *client) close() {
	if c.ws != nil {
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
	}
	if c.cancel != nil {
		c.cancel()
	}
}

// Load runs clients concurrent conversations, each doing messages round
// trips, and measures the server process's CPU (pid 0: not measured).
func Load(ctx context.Context, t Target, clients, messages int, pid int) (Result, error) {
	hc := newHTTPClient()
	cs := make([]*client, clients)
	var wg sync.WaitGroup
	var connErr atomic.Value
	for i := range cs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := connect(ctx, t, hc)
			if err != nil {
				connErr.Store(err)
				return
			}
			cs[i] = c
		}(i)
	}
	wg.Wait()
	defer func() {
		for _, c := range cs {
			if c != nil {
				c.close()
			}
		}
	}()
	if err, _ := connErr.Load().(error); err != nil {
		return Result{}, fmt.Errorf("connect: %w", err)
	}
	cpu0, _ := ProcessCPU(pid)
	var mu sync.Mutex
	var lat []time.Duration
	res := Result{Clients: clients}
	began := time.Now()
	for _, c := range cs {
		wg.Add(1)
		go func(c *client) {
			defer wg.Done()
			for i := 0; i < messages; i++ {
				d, err := c.roundTrip(ctx, i, 10*time.Second)
				mu.Lock()
				switch {
				case errors.Is(err, errLost):
					res.Lost++
				case err != nil:
					res.Errors++
					if len(res.ErrorSamples) < maxErrorSamples {
						res.ErrorSamples = append(res.ErrorSamples, fmt.Sprintf("%s round trip %d: %v", time.Now().UTC().Format(time.RFC3339Nano), i, err))
					}
				default:
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	res.Elapsed = time.Since(began)
	cpu1, _ := ProcessCPU(pid)
	time.Sleep(200 * time.Millisecond) // let trailing frames arrive before counting duplicates
	for _, c := range cs {
		c.mu.Lock()
		res.Duplicated += c.dups
		c.mu.Unlock()
	}
	res.RoundTrips = len(lat)
	res.PerSecond = float64(len(lat)) / res.Elapsed.Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		res.P50 = lat[len(lat)*50/100]
		res.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
		res.ServerCPU = cpu1 - cpu0
		res.CPUPerRoundTr = res.ServerCPU / time.Duration(len(lat))
	}
	return res, nil
}

// IdleMemory opens n conversations with their WebSockets, leaves them idle
// for wait, and returns the server's resident memory growth per
// conversation. Go collects garbage on an idle process only every two
// minutes, so a wait past that measures what idle conversations hold rather
// than the garbage their setup left.
func IdleMemory(ctx context.Context, t Target, n, pid int, wait time.Duration) (int64, error) {
	before, err := ProcessRSS(pid)
	if err != nil {
		return 0, err
	}
	hc := newHTTPClient()
	cs := make([]*client, 0, n)
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := connect(ctx, t, hc)
		if err != nil {
			return 0, err
		}
		cs = append(cs, c)
	}
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	after, err := ProcessRSS(pid)
	if err != nil {
		return 0, err
	}
	return (after - before) / int64(n), nil
}

// TokenRate measures tokens/generate calls per second with workers
// concurrent callers.
func TokenRate(ctx context.Context, t Target, workers int, d time.Duration) (float64, error) {
	hc := newHTTPClient()
	c := &client{t: t, http: hc}
	var n atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	began := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				var tok struct{ Token string }
				err := c.do(ctx, "POST", t.DirectLine+"/tokens/generate", t.Secret, map[string]any{"user": map[string]string{"id": randomUser()}}, &tok)
				if err == nil && tok.Token != "" {
					n.Add(1)
				} else if ctx.Err() == nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(n.Load()) / time.Since(began).Seconds(), nil
}

// ProcessCPU is a process's user+system CPU time from /proc.
func ProcessCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are 14 and 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc stat format")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// ProcessRSS is a process's anonymous resident memory in bytes: its heap,
// stacks and other private memory. File-backed pages (the binary's code,
// faulted in as code paths first run, shared and reclaimable) are left out,
// so a one-time cost is not counted as per-conversation memory.
func ProcessRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "RssAnon:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no RssAnon for %d", pid)
}
