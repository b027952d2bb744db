package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// clientFrom is an HTTP client whose connections leave from local address
// ip (Linux routes all of 127/8 to the loopback interface).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
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
