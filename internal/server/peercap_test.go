package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
)

// dialFrom opens a TCP connection to addr from the local address ip; it is
// closed when the test ends.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// healthzOn sends GET /healthz on c and reads the status line; the
// connection stays open (keep-alive). A connection the listener refused
// answers with an error (closed or reset).
func healthzOn(c net.Conn) (string, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "", err
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	res, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line), br)), nil)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	_ = c.SetDeadline(time.Time{})
	return line, nil
}

// connectionsRefused reads parley_connections_refused_total{limit} from
// /metrics (asked from an address of its own).
func connectionsRefused(t *testing.T, h *harness, limit string) float64 {
	t.Helper()
	c := clientFrom("127.0.0.9")
	res, err := c.Get(h.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	prefix := `parley_connections_refused_total{limit="` + limit + `"} `
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			var n float64
			_, _ = fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatalf("no %s in /metrics", prefix)
	return 0
}

// A trusted proxy's connections are not capped per address: behind a
// proxy every client connection comes from it (the per-client caps then
// apply at the HTTP level, to the X-Forwarded-For address). An untrusted
// address still is.
func TestTrustedProxyConnectionsNotCappedPerAddress(t *testing.T) {
	const perClient = 4
	h := newHarness(t, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32"}
		c.MaxConnections = 32
		c.MaxConnectionsPerClient = perClient
		c.DirectLine.MaxStreamsPerClient = 32
	})
	addr := strings.TrimPrefix(h.base, "http://")
	for i := 0; i < 3*perClient; i++ {
		if line, err := healthzOn(dialFrom(t, "127.0.0.1", addr)); err != nil || !strings.Contains(line, "200") {
			t.Fatalf("trusted proxy's connection %d (cap per address %d): %q %v", i+1, perClient, line, err)
		}
	}
	for i := 0; i < perClient; i++ {
		if line, err := healthzOn(dialFrom(t, "127.0.0.2", addr)); err != nil || !strings.Contains(line, "200") {
			t.Fatalf("untrusted address's connection %d within its cap: %q %v", i+1, line, err)
		}
	}
	if line, err := healthzOn(dialFrom(t, "127.0.0.2", addr)); err == nil {
		t.Fatalf("an untrusted address got a connection past max_connections_per_client: %q", line)
	}
	if n := connectionsRefused(t, h, "max_connections_per_client"); n != 1 {
		t.Errorf("refused per client = %v; want 1", n)
	}
}
