package server_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// trickle sends head (a request line, headers and the start of a body),
// then one more body byte every 100 ms, and returns the answer's status
// line.
func trickle(t *testing.T, h *harness, head string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprint(conn, head); err != nil {
		t.Fatal(err)
	}
	answered := make(chan string, 1)
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, _ := bufio.NewReader(conn).ReadString('\n')
		answered <- strings.TrimSpace(line)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range 200 {
		select {
		case line := <-answered:
			return line
		case <-tick.C:
			if _, err := conn.Write([]byte("-")); err != nil {
				return <-answered
			}
		}
	}
	return "no answer"
}

// A body that trickles in past its deadline is answered 408 on every
// route that reads one: uploads (single file and multipart) and the Bot
// Connector API's activities and attachments (review: 413 "too large" or
// 400 "malformed", which sent people looking for the wrong problem).
func TestTrickledBodiesAre408(t *testing.T) {
	h := newHarness(t, func(c *configT) {
		c.Timeouts.Body = durationT(time.Second)
		c.Timeouts.MinClientRate = 64 << 20
	})
	tok, conv, _ := h.started("dl_alice")
	for name, head := range map[string]string{
		"single-file upload": fmt.Sprintf("POST /v3/directline/conversations/%s/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n", conv, tok),
		"multipart upload": fmt.Sprintf("POST /v3/directline/conversations/%s/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: 100000\r\n\r\n"+
			"--XX\r\nContent-Type: image/png\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n", conv, tok),
		"connector activity":   fmt.Sprintf("POST /v3/conversations/%s/activities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{\"type\":\"message\",\"text\":\"", conv),
		"connector attachment": fmt.Sprintf("POST /v3/conversations/%s/attachments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{\"type\":\"image/png\",\"originalBase64\":\"", conv),
	} {
		if got := trickle(t, h, head); !strings.HasPrefix(got, "HTTP/1.1 408") {
			t.Errorf("%s: %q, want 408", name, got)
		}
	}
}
