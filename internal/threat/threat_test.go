package threat

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// An attacker rotating addresses cannot grow the detector's memory: past
// MaxKeys keys, failures count under client "other", and none is lost.
func TestFloodOfAddressesStaysBounded(t *testing.T) {
	st := openStore(t)
	d := New(Config{MaxKeys: 1000}, st, nil, nil, slog.New(slog.DiscardHandler))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 50_000
	for i := range n {
		d.Observe(Event{Client: fmt.Sprintf("a_%016x", i), UserAgent: UACurl, Status: 403, Reason: "invalid_credential", Surface: "directline"})
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// At most MaxKeys keys, plus one overflow row per minute boundary crossed.
	if held := d.Held(); held > 1000+2 {
		t.Fatalf("%d distinct addresses left %d keys in memory; want at most about 1000", n, held)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 4<<20 {
		t.Fatalf("heap grew by %d bytes for %d addresses", grown, n)
	}
	if err := d.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	tot, err := st.AuthFailureTotals(context.Background(), time.Now().Add(-time.Hour), nil, 1, 0)
	if err != nil || len(tot) != 1 || tot[0].Count != n {
		t.Fatalf("stored total = %+v, %v; want %d", tot, err, n)
	}
	rep, err := BuildReport(context.Background(), st, time.Now(), time.Now().Add(-time.Hour), 1)
	if err != nil || len(rep.Offenders) != 1 || rep.Offenders[0].Client != OverflowClient || rep.Offenders[0].Failures < n-1000-2 {
		t.Fatalf("top offender = %+v, %v; want the overflow row %q with nearly all failures", rep.Offenders, err, OverflowClient)
	}
	if d.Held() != 0 {
		t.Fatalf("after a flush %d keys are held", d.Held())
	}
}

// A failed flush keeps the counts for the next one.
func TestFlushFailureKeepsCounts(t *testing.T) {
	st := openStore(t)
	d := New(Config{}, st, nil, nil, slog.New(slog.DiscardHandler))
	d.Observe(Event{Client: "a_1", UserAgent: UACurl, Status: 401, Reason: "missing_credential", Surface: "directline"})
	_ = st.Close()
	if err := d.Flush(context.Background()); err == nil {
		t.Fatal("flush to a closed store succeeded")
	}
	if d.Held() != 1 {
		t.Fatalf("after a failed flush %d keys are held, want 1", d.Held())
	}
}

func TestSignVerify(t *testing.T) {
	secret, body := []byte("0123456789abcdef"), []byte(`{"rule":"x"}`)
	now := time.Unix(1_800_000_000, 0)
	sig := Sign(secret, body, now)
	if !strings.HasPrefix(sig, "t=1800000000,v1=") || len(sig) != len("t=1800000000,v1=")+64 {
		t.Fatalf("Sign = %q", sig)
	}
	if err := Verify(secret, body, sig, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		secret, body []byte
		sig          string
		at           time.Time
	}{
		"other body":   {secret, []byte(`{"rule":"y"}`), sig, now},
		"other secret": {[]byte("fedcba9876543210"), body, sig, now},
		"replayed":     {secret, body, sig, now.Add(time.Hour)},
		"other time":   {secret, body, strings.Replace(sig, "t=1800000000", "t=1800000001", 1), now},
		"malformed":    {secret, body, "v1=abc", now},
		"empty":        {secret, body, "", now},
	} {
		if err := Verify(c.secret, c.body, c.sig, c.at, 5*time.Minute); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// alertOnce stores 5 failures of one client and checks a's rules.
func alertOnce(t *testing.T, a *Alerter) {
	t.Helper()
	st := openStore(t)
	now := time.Now()
	if err := st.AddAuthFailures(context.Background(), []store.AuthFailureCount{{Minute: now, Client: "a_1", UserAgent: UACurl, Status: 403, Reason: "x", Count: 5, FirstSeen: now, LastSeen: now}}); err != nil {
		t.Fatal(err)
	}
	a.Check(context.Background(), st, now)
}

// Webhooks to internal addresses are refused by the SSRF guard, at once
// and without retries; the rule's log event is still written.
func TestWebhookToInternalAddressRefused(t *testing.T) {
	for _, u := range []string{"https://169.254.169.254/latest/meta-data", "https://10.0.0.1/hook", "https://[fd00::1]/hook", "https://[::ffff:169.254.169.254]/x"} {
		logs := &logBuf{}
		a := NewAlerter([]Rule{{Name: "r", Threshold: 1, Window: time.Minute, By: "client", WebhookURL: u, Secret: []byte("0123456789abcdef")}},
			AlerterConfig{Client: connector.NewBotClient(2*time.Second, nil), Backoff: time.Hour}, slog.New(slog.NewJSONHandler(logs, nil)))
		a.Start()
		start := time.Now()
		alertOnce(t, a)
		for {
			if _, failed := a.Delivered("r"); failed == 1 {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s: webhook neither refused nor sent", u)
			}
			time.Sleep(10 * time.Millisecond)
		}
		a.Close()
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: refusal took %v (retried?)", u, d)
		}
		if !strings.Contains(logs.String(), "SSRF") || !strings.Contains(logs.String(), "security alert: authentication failures over the threshold") {
			t.Errorf("%s: logs = %s; want the alert event and an SSRF refusal", u, logs.String())
		}
	}
}

// A receiver that fails is retried with backoff; one that then answers
// gets the alert once.
func TestWebhookRetriesWithBackoff(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	c := connector.NewBotClient(2*time.Second, nil)
	c.Transport.(*http.Transport).TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	a := NewAlerter([]Rule{{Name: "r", Threshold: 1, Window: time.Minute, By: "total", WebhookURL: srv.URL, Secret: []byte("0123456789abcdef")}},
		AlerterConfig{Client: c, Backoff: 20 * time.Millisecond}, slog.New(slog.DiscardHandler))
	a.Start()
	defer a.Close()
	alertOnce(t, a)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if sent, _ := a.Delivered("r"); sent == 1 {
			if calls.Load() != 3 {
				t.Fatalf("%d calls, want 3 (two 503s, then 200)", calls.Load())
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not delivered after %d calls", calls.Load())
}

// The queue is bounded: alerts past it are logged, not queued.
func TestWebhookQueueBounded(t *testing.T) {
	logs := &logBuf{}
	a := NewAlerter([]Rule{{Name: "r", Threshold: 1, Window: time.Minute, By: "client", WebhookURL: "https://127.0.0.1:1/x", Secret: []byte("0123456789abcdef")}},
		AlerterConfig{Client: connector.NewBotClient(time.Second, nil), Queue: 2}, slog.New(slog.NewJSONHandler(logs, nil)))
	// Not started: nothing drains the queue.
	st := openStore(t)
	now := time.Now()
	var rows []store.AuthFailureCount
	for i := range 5 {
		rows = append(rows, store.AuthFailureCount{Minute: now, Client: fmt.Sprintf("a_%d", i), Status: 403, Count: 1, FirstSeen: now, LastSeen: now})
	}
	if err := st.AddAuthFailures(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	a.Check(context.Background(), st, now)
	if len(a.queue) != 2 || strings.Count(logs.String(), "queue is full") != 3 {
		t.Fatalf("queue holds %d, %d 'queue is full' logs; want 2 and 3", len(a.queue), strings.Count(logs.String(), "queue is full"))
	}
	a.Close()
}
