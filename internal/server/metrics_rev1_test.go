package server_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// One address cannot take every connection of the metrics listener: idle
// connections held from 127.0.0.2 (no token needed to hold one) leave
// room for the scraper at 127.0.0.1.
func TestMetricsListenerOneAddressCannotTakeEveryConnection(t *testing.T) {
	h := newHarness(t)
	addr := strings.TrimPrefix(h.metrics, "http://")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	for range 64 {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Skip("cannot dial from 127.0.0.2:", err)
		}
		held = append(held, c)
	}
	time.Sleep(200 * time.Millisecond) // let the listener accept (and close the ones past the cap)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Get(h.metrics + "/metrics")
	if err != nil {
		t.Fatalf("a scrape while one other address holds 64 connections: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("scrape = %d", res.StatusCode)
	}
}
