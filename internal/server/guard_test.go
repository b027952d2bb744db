package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
)

// clientFrom is an HTTP client whose connections leave from local address
// ip (Linux routes all of 127/8 to the loopback interface).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// tokenFrom asks the token service for a bot token from client c.
func tokenFrom(t *testing.T, h *harness, c *http.Client, appID, secret string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {secret}, "scope": {h.base + "/.default"}}
	req, _ := http.NewRequestWithContext(context.Background(), "POST", h.base+"/botframework/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res, string(raw)
}

// Issue 9 finding 2: wrong secrets sent for a bot's (public) app id from
// another address must not lock the bot out of its token.
func TestTokenServiceLockoutFromAnotherAddress(t *testing.T) {
	h, b, _ := secureHarness(t)
	attacker, owner := clientFrom("127.0.0.2"), clientFrom("127.0.0.1")
	for i := 0; i < 6; i++ {
		if res, raw := tokenFrom(t, h, attacker, b.appID, "wrong-secret", nil); res.StatusCode != 401 && res.StatusCode != 429 {
			t.Fatalf("wrong secret %d: %d %s", i, res.StatusCode, raw)
		}
	}
	if res, raw := tokenFrom(t, h, owner, b.appID, b.secret, nil); res.StatusCode != 200 {
		t.Fatalf("after another address sent wrong secrets, the owner's correct secret got %d %s, want 200", res.StatusCode, raw)
	}
}

// Behind a trusted proxy, guessing is throttled per forwarded client:
// the guessing client gets 429 with Retry-After (a spoofed leftmost
// X-Forwarded-For entry does not help it), while the owner behind the same
// proxy gets its token at once.
func TestTokenServiceThrottlesPerForwardedClient(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} })
	b := newAuthBot(t, h)
	c := http.DefaultClient
	attacker := map[string]string{"X-Forwarded-For": "203.0.113.5", "User-Agent": "guesser"}
	for i := 0; i < 10; i++ {
		if res, raw := tokenFrom(t, h, c, b.appID, "wrong-secret", attacker); res.StatusCode != 401 {
			t.Fatalf("guess %d within the budget: %d %s", i, res.StatusCode, raw)
		}
	}
	res, raw := tokenFrom(t, h, c, b.appID, "wrong-secret", attacker)
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("guess over the budget: %d Retry-After %q %s, want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"), raw)
	}
	spoof := map[string]string{"X-Forwarded-For": "203.0.113.9, 203.0.113.5"}
	if res, raw := tokenFrom(t, h, c, b.appID, "wrong-secret", spoof); res.StatusCode != 429 {
		t.Fatalf("guess with a spoofed leftmost entry: %d %s, want 429", res.StatusCode, raw)
	}
	if res, raw := tokenFrom(t, h, c, b.appID, b.secret, map[string]string{"X-Forwarded-For": "203.0.113.9"}); res.StatusCode != 200 {
		t.Fatalf("the owner behind the same proxy: %d %s", res.StatusCode, raw)
	}
	if res, raw := tokenFrom(t, h, c, b.appID, b.secret, attacker); res.StatusCode != 200 {
		t.Fatalf("the correct secret from the throttled client: %d %s", res.StatusCode, raw)
	}
	if !strings.Contains(h.logs.String(), `"client_addr":"`+h.pseudonymizer(t).Addr("203.0.113.5")+`"`) || strings.Contains(h.logs.String(), "203.0.113.5") {
		t.Error("the failure log does not name the forwarded client address by its pseudonym (or names it in the clear)")
	}
	metrics, err := http.Get(h.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer metrics.Body.Close()
	m, _ := io.ReadAll(metrics.Body)
	if !strings.Contains(string(m), `parley_auth_failures_total{reason="wrong_secret",surface="token_service"} 12`) {
		t.Errorf("metrics do not count the 12 wrong secrets:\n%s", grepLines(string(m), "parley_auth_failures_total"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
