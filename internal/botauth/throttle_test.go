package botauth

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/guard"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// Guessing is throttled per client address, never per app id: the
// guessing address gets 429 with Retry-After and is paced, the owner's
// correct secret always gets its token (from any address, the guessing
// one included), others are unaffected, and the throttle recovers.
func TestTokenServiceThrottlesGuessingPerAddress(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	kr, _ := keyring.New(make([]byte, 32))
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	var slept []time.Duration
	failures := guard.NewAuthFailures(nil, logger, guard.Proxies{})
	a, err := New(ctx, Config{PublicURL: "https://chat.example.com", Failures: failures, Guesses: guard.GuessConfig{
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			slept = append(slept, d)
			mu.Unlock()
			return nil
		},
	}}, st, kr, logger)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	const appID, secret = "11111111-2222-4333-8444-555555555555", "the-right-secret-value"
	if err := st.CreateBot(ctx, store.Bot{ID: appID, Name: "b", Endpoint: "https://bot.example.com/api", CreatedAt: time.Now(),
		SecretHashes: [2][]byte{HashClientSecret(secret), nil}}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Register(mux)
	ask := func(from, sec string) *httptest.ResponseRecorder {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {sec}, "scope": {"https://chat.example.com/.default"}}
		r := httptest.NewRequest("POST", STSTokenPath, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("User-Agent", "guesser/1.0")
		r.RemoteAddr = from + ":40000"
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	const attacker, owner, other = "198.51.100.1", "203.0.113.9", "192.0.2.44"
	for i := 0; i < 10; i++ {
		if w := ask(attacker, "guess-"+strconv.Itoa(i)); w.Code != 401 {
			t.Fatalf("guess %d within budget: %d %s", i, w.Code, w.Body)
		}
	}
	w := ask(attacker, "guess-10")
	ra, _ := strconv.Atoi(w.Header().Get("Retry-After"))
	if w.Code != 429 || ra < 1 || !strings.Contains(w.Body.String(), `"invalid_client"`) {
		t.Fatalf("guess over budget: %d Retry-After %q %s, want 429 invalid_client with Retry-After", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if w := ask(attacker, "guess-11"); w.Code != 429 || len(slept) != 1 || slept[0] != time.Second {
		t.Fatalf("the next guess: %d, waits %v; want 429 after waiting 1s for its turn", w.Code, slept)
	}
	// The owner, from its own address: at once.
	if w := ask(owner, secret); w.Code != 200 {
		t.Fatalf("owner's correct secret: %d %s", w.Code, w.Body)
	}
	// Even from the guessing address, the correct secret gets a token.
	if w := ask(attacker, secret); w.Code != 200 {
		t.Fatalf("correct secret from the throttled address: %d %s", w.Code, w.Body)
	}
	if w := ask(other, "some-guess"); w.Code != 401 {
		t.Fatalf("an unrelated address was throttled: %d", w.Code)
	}
	if len(slept) != 2 {
		t.Fatalf("waits %v: only the throttled address should wait", slept)
	}
	// Its turns are one a second and a request waits at most 5 s: with the
	// turns at 3, 4 and 5 s taken, the next is refused without a check,
	// counted but not logged (an attacker could flood the log).
	for i := 0; i < 3; i++ {
		if w := ask(attacker, "guess-queued"); w.Code != 429 {
			t.Fatalf("queued guess %d: %d", i, w.Code)
		}
	}
	w = ask(attacker, "guess-unchecked")
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || len(slept) != 5 {
		t.Fatalf("guess past the queue: %d, Retry-After %q, waits %v; want 429 at once", w.Code, w.Header().Get("Retry-After"), slept)
	}
	if failures.Count("token_service", "throttled") != 1 || strings.Contains(logs.String(), "throttled") {
		t.Fatal("the unchecked refusal is not counted, or is logged")
	}
	// Recovery: the failure budget refills over 15 minutes.
	mu.Lock()
	now = now.Add(15 * time.Minute)
	mu.Unlock()
	if w := ask(attacker, "guess-later"); w.Code != 401 {
		t.Fatalf("after 15 minutes: %d, want 401", w.Code)
	}
	if n := failures.Count("token_service", "wrong_secret"); n != 17 {
		t.Fatalf("counted %v wrong secrets, want 17", n)
	}
	l := logs.String()
	if strings.Contains(l, secret) || strings.Contains(l, "guess-") {
		t.Fatal("a secret reached the logs")
	}
	for _, want := range []string{appID, attacker, "guesser/1.0", `"reason":"wrong_secret"`, `"surface":"token_service"`} {
		if !strings.Contains(l, want) {
			t.Errorf("failure log lacks %s", want)
		}
	}
}
