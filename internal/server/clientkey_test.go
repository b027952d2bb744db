package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The per-client caps (open streams, concurrent history reads) count an
// IPv6 client by its /64, as the rate limits do: one host is usually given
// a whole /64 and can pick any address in it, so keying the caps by the
// full address would let it open the cap again from every address.
func TestStreamsPerClientCapCountsAnIPv6SlashSixtyFourAsOneClient(t *testing.T) {
	h := newHarness(t, func(c *configT) {
		c.DirectLine.MaxStreamsPerClient = 2
		c.TrustedProxies = []string{"127.0.0.1/32"}
	})
	tok, conv, _ := h.started("dl_alice")
	open := func(xff string) int {
		rc := h.do("GET", "/conversations/"+conv+"?watermark=", tok, nil, nil)
		if rc.status != 200 {
			t.Fatalf("reconnect: %d %s", rc.status, rc.raw)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws, res, err := websocket.Dial(ctx, rc.str("streamUrl"), &websocket.DialOptions{HTTPHeader: http.Header{"X-Forwarded-For": {xff}}})
		if err != nil {
			if res == nil {
				t.Fatalf("dial from %s: %v", xff, err)
			}
			return res.StatusCode
		}
		t.Cleanup(func() { ws.CloseNow() }) // held open until the test ends
		return http.StatusSwitchingProtocols
	}
	for _, a := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2"} {
		if got := open(a); got != http.StatusSwitchingProtocols {
			t.Fatalf("stream from %s = %d; want 101", a, got)
		}
	}
	if got := open("2001:db8:1:2::3"); got != http.StatusTooManyRequests {
		t.Fatalf("third stream from the same /64 = %d; want 429", got)
	}
	if got := open("2001:db8:1:3::1"); got != http.StatusSwitchingProtocols {
		t.Fatalf("stream from another /64 = %d; want 101", got)
	}
}

// Finding 10 of issue 9: a handshake the WebSocket library would refuse is
// refused first, in the Direct Line error shape, without using up the
// stream URL: a Sec-WebSocket-Key that is 24 characters but not 16 bytes
// of base64, and a repeated Sec-WebSocket-Key.
func TestStreamHandshakeKeyErrorsInProtocolShape(t *testing.T) {
	h := newHarness(t)
	_, _, start := h.started("dl_alice")
	su := start.str("streamUrl")
	for name, keys := range map[string][]string{
		"key not base64":   {"!!!!!!!!!!!!!!!!!!!!!!!!"},
		"key not 16 bytes": {"dGhlIHNhbXBsZSBub25jZT0="},
		"two keys":         {"dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=="},
	} {
		req, err := http.NewRequest("GET", strings.Replace(su, "ws://", "http://", 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range upgradeHeaders() {
			req.Header.Set(k, v)
		}
		req.Header.Del("Sec-WebSocket-Key")
		for _, k := range keys {
			req.Header.Add("Sec-WebSocket-Key", k)
		}
		res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		if _, _, ok := errorShape(body); res.StatusCode != 400 || !ok {
			t.Errorf("%s: %d %s; want 400 {\"error\":{\"code\",\"message\"}}", name, res.StatusCode, raw)
		}
	}
	if _, _, err := h.dial(su, trustedOrigin); err != nil {
		t.Fatalf("the stream URL after refused handshakes: %v", err)
	}
}
