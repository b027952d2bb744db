package threat

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/store"
)

// MaxKeys bounds the distinct keys of a minute, not of a flush: an
// attacker rotating addresses cannot write MaxKeys new rows to the store at
// every flush (six times a minute by default).
func TestMaxKeysBoundsAMinuteAcrossFlushes(t *testing.T) {
	st := openStore(t)
	now := time.Date(2026, 12, 1, 10, 0, 5, 0, time.UTC)
	d := New(Config{MaxKeys: 100, Now: func() time.Time { return now }}, st, nil, nil, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	addr := 0
	observe := func(n int) {
		for range n {
			d.Observe(Event{Client: fmt.Sprintf("a_%016x", addr), UserAgent: UACurl, Status: 403, Reason: "invalid_credential", Surface: "directline"})
			addr++
		}
	}
	distinct := func(since time.Time) int {
		t.Helper()
		rows, err := st.AuthFailureTotals(ctx, since, []string{"client"}, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	for range 6 { // six flushes within the same minute
		observe(100)
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		now = now.Add(5 * time.Second)
	}
	if n := distinct(now.Add(-time.Hour)); n > 100+1 {
		t.Fatalf("one minute of 600 rotating addresses stored %d distinct clients; want at most 100 and the overflow row", n)
	}
	tot, err := st.AuthFailureTotals(ctx, now.Add(-time.Hour), nil, 1, 0)
	if err != nil || len(tot) != 1 || tot[0].Count != 600 {
		t.Fatalf("stored total = %+v, %v; want 600 (none lost)", tot, err)
	}
	// Keys admitted earlier in the minute stay attributed after a flush.
	now = now.Add(time.Minute)
	addr = 0
	observe(100)
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	addr = 0
	observe(100)
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := st.AuthFailureTotals(ctx, now.Truncate(time.Minute), []string{"client"}, 1, 0)
	if err != nil || len(rows) != 100 || rows[0].Count != 2 || rows[99].Count != 2 {
		t.Fatalf("100 clients seen twice in a minute, across a flush: %d rows (%v); want 100 rows of 2, none under %q", len(rows), err, OverflowClient)
	}
	// The next minute admits new keys again.
	now = now.Add(time.Minute)
	observe(50)
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := distinct(now.Truncate(time.Minute)); n != 50 {
		t.Fatalf("the next minute stored %d distinct clients, want 50", n)
	}
}

// The webhook URL is a secret (Slack-style paths, ?code= keys): a failed
// delivery's log names the receiver's host, never its path or query.
func TestWebhookFailureLogHidesTheURL(t *testing.T) {
	logs := &logBuf{}
	u := "https://10.0.0.1/services/T000/B000/PATHSECRET?code=QUERYSECRET"
	a := NewAlerter([]Rule{{Name: "r", Threshold: 1, Window: time.Minute, By: "client", WebhookURL: u, Secret: []byte("0123456789abcdef")}},
		AlerterConfig{Client: connector.NewBotClient(2*time.Second, nil), Backoff: time.Hour}, slog.New(slog.NewJSONHandler(logs, nil)))
	a.Start()
	alertOnce(t, a)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, failed := a.Delivered("r"); failed == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("webhook neither refused nor sent")
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.Close()
	out := logs.String()
	if !strings.Contains(out, "security alert webhook failed") || !strings.Contains(out, "10.0.0.1") {
		t.Fatalf("logs = %s; want the failure naming the receiver's host", out)
	}
	for _, s := range []string{"PATHSECRET", "QUERYSECRET", "T000"} {
		if strings.Contains(out, s) {
			t.Errorf("the log shows %q of the webhook URL: %s", s, out)
		}
	}
}

// Each alert carries an id, the same in every retry of its webhook, so
// a receiver can drop a replayed (or retried) request it already handled.
func TestAlertIDStableAcrossRetries(t *testing.T) {
	var mu sync.Mutex
	var ids []string
	var calls atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var al Alert
		if err := json.NewDecoder(r.Body).Decode(&al); err != nil {
			t.Error(err)
		}
		mu.Lock()
		ids = append(ids, al.ID)
		mu.Unlock()
		if calls.Add(1) == 1 {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	c := connector.NewBotClient(2*time.Second, nil)
	c.Transport.(*http.Transport).TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	a := NewAlerter([]Rule{{Name: "r", Threshold: 1, Window: time.Minute, By: "client", WebhookURL: srv.URL, Secret: []byte("0123456789abcdef")}},
		AlerterConfig{Client: c, Backoff: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
	a.Start()
	defer a.Close()
	st := openStore(t)
	now := time.Now()
	if err := st.AddAuthFailures(context.Background(), []store.AuthFailureCount{
		{Minute: now, Client: "a_1", Status: 403, Reason: "x", Count: 2, FirstSeen: now, LastSeen: now},
		{Minute: now, Client: "a_2", Status: 403, Reason: "x", Count: 1, FirstSeen: now, LastSeen: now}}); err != nil {
		t.Fatal(err)
	}
	a.Check(context.Background(), st, now)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if sent, _ := a.Delivered("r"); sent == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("two alerts not delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 3 || len(ids[0]) != 32 || ids[0] != ids[1] || ids[2] == ids[0] || ids[2] == "" {
		t.Fatalf("ids = %q; want the first alert's id twice (503, then its retry), then another", ids)
	}
}
