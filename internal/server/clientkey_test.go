package server_test

import (
	"context"
	"net/http"
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
