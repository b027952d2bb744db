package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawUpgrade sends a WebSocket upgrade request for u by hand (so that each
// header can be wrong) and returns the status and the decoded body.
func rawUpgrade(t *testing.T, u string, headers map[string]string) (int, http.Header, map[string]any, []byte) {
	t.Helper()
	u = strings.Replace(u, "ws://", "http://", 1)
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusSwitchingProtocols {
		return res.StatusCode, res.Header, nil, nil // upgraded: no body
	}
	raw, _ := io.ReadAll(res.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	return res.StatusCode, res.Header, body, raw
}

// upgradeHeaders are a correct WebSocket handshake's.
func upgradeHeaders() map[string]string {
	return map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
}

func errorShape(body map[string]any) (code, msg string, ok bool) {
	e, _ := body["error"].(map[string]any)
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	return code, msg, code != "" && msg != ""
}

// Finding 10 of issue 9: handshake errors are Direct Line errors, not the
// WebSocket library's plain text; a refused handshake does not use up the
// stream URL.
func TestStreamHandshakeErrorsInProtocolShape(t *testing.T) {
	h := newHarness(t)
	_, _, start := h.started("dl_alice")
	su := start.str("streamUrl")
	bad := func(mod func(map[string]string)) map[string]string {
		hd := upgradeHeaders()
		mod(hd)
		return hd
	}
	for name, hd := range map[string]map[string]string{
		"plain GET":        {},
		"no Upgrade":       bad(func(m map[string]string) { m["Upgrade"] = "" }),
		"wrong version":    bad(func(m map[string]string) { m["Sec-WebSocket-Version"] = "8" }),
		"no key":           bad(func(m map[string]string) { m["Sec-WebSocket-Key"] = "" }),
		"untrusted Origin": bad(func(m map[string]string) { m["Origin"] = "https://evil.example" }),
	} {
		status, header, body, raw := rawUpgrade(t, su, hd)
		code, _, ok := errorShape(body)
		if status < 400 || status >= 500 || !ok || !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %q %s; want a 4xx {\"error\":{\"code\",\"message\"}}", name, status, header.Get("Content-Type"), raw)
		}
		_ = code
	}
	// None of the refusals used up the credential.
	if _, _, err := h.dial(su, trustedOrigin); err != nil {
		t.Fatalf("the stream URL after refused handshakes: %v", err)
	}
}

// Finding 12 of issue 9: a stream URL opens one socket. The second use is
// refused before the upgrade, in the protocol's shape; a fresh URL from
// GET /conversations/{id} (how the official clients reconnect) works.
func TestStreamURLIsSingleUse(t *testing.T) {
	h := newHarness(t)
	tok, conv, start := h.started("dl_alice")
	su := start.str("streamUrl")
	if _, _, err := h.dial(su, trustedOrigin); err != nil {
		t.Fatalf("first use: %v", err)
	}
	hd := upgradeHeaders()
	hd["Origin"] = trustedOrigin
	status, _, body, raw := rawUpgrade(t, su, hd)
	if _, msg, ok := errorShape(body); status != 403 || !ok || !strings.Contains(msg, "already used") {
		t.Fatalf("second use of a stream URL = %d %s; want 403 in the error shape", status, raw)
	}
	if _, res, err := h.dial(su, trustedOrigin); err == nil || res == nil || res.StatusCode != 403 {
		t.Fatalf("second use through a WebSocket client: err=%v", err)
	}
	// Reconnect as DirectLineJS does: a fresh URL each time, each works once.
	for i := 0; i < 3; i++ {
		rc := h.do("GET", "/conversations/"+conv+"?watermark=", tok, nil, nil)
		if rc.status != 200 {
			t.Fatalf("reconnect: %d %s", rc.status, rc.raw)
		}
		s, _, err := h.dial(rc.str("streamUrl"), trustedOrigin)
		if err != nil {
			t.Fatalf("fresh stream URL %d: %v", i, err)
		}
		s.ws.CloseNow()
		if _, res, err := h.dial(rc.str("streamUrl"), trustedOrigin); err == nil || res == nil || res.StatusCode != 403 {
			t.Fatalf("fresh stream URL %d reused: err=%v", i, err)
		}
	}
	// POST /conversations again (resume) hands out a fresh one too.
	again := h.do("POST", "/conversations", tok, `{}`, nil)
	if again.status != 200 {
		t.Fatalf("resume start: %d %s", again.status, again.raw)
	}
	if _, _, err := h.dial(again.str("streamUrl"), trustedOrigin); err != nil {
		t.Fatalf("stream URL from a resumed start: %v", err)
	}
}

// clientFrom is an HTTP client whose connections come from a given
// loopback address (127.0.0.2 is another client to the gateway).
// Finding 4 of issue 9: open streams per client address are capped
// (429 with Retry-After before the upgrade, in the protocol's shape); the
// cap frees when a stream closes, and another address is not affected.
func TestStreamsPerClientCapped(t *testing.T) {
	h := newHarness(t, func(c *configT) { c.DirectLine.MaxStreamsPerClient = 2 })
	tok, conv, _ := h.started("dl_alice")
	fresh := func() string {
		rc := h.do("GET", "/conversations/"+conv+"?watermark=", tok, nil, nil)
		if rc.status != 200 {
			t.Fatalf("reconnect: %d %s", rc.status, rc.raw)
		}
		return rc.str("streamUrl")
	}
	s1, _, err := h.dial(fresh(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.dial(fresh(), ""); err != nil {
		t.Fatal(err)
	}
	status, header, body, raw := rawUpgrade(t, fresh(), upgradeHeaders())
	if _, _, ok := errorShape(body); status != 429 || !ok || header.Get("Retry-After") == "" {
		t.Fatalf("third stream from one address = %d %s (Retry-After %q); want 429", status, raw, header.Get("Retry-After"))
	}
	// Another address still gets its streams.
	other := fresh()
	req, _ := http.NewRequest("GET", strings.Replace(other, "ws://", "http://", 1), nil)
	for k, v := range upgradeHeaders() {
		req.Header.Set(k, v)
	}
	res, err := clientFrom("127.0.0.2").Do(req)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("a stream from another address = %d; want 101", res.StatusCode)
	}
	// Closing a stream frees its place.
	s1.ws.CloseNow()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, err := h.dial(fresh(), "")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cap did not free after a stream closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Finding 4 of issue 9: history reads per client address are capped. A
// never-reading socket replaying a large conversation holds its client's
// one read; that client's history read gets 429 in the protocol's shape,
// another address reads normally, and the client reads again once its
// socket is gone.
func TestHistoryReadsPerClientCapped(t *testing.T) {
	h := newHarness(t, func(c *configT) { c.DirectLine.MaxHistoryReadsPerClient = 1 })
	tok, conv, _ := h.started("dl_alice")
	fillConversation(t, h, conv, 48, 250<<10)
	rc := h.do("GET", "/conversations/"+conv+"?watermark=", tok, nil, nil)
	s, _, err := h.dial(rc.str("streamUrl"), "") // never reads
	if err != nil {
		t.Fatal(err)
	}
	get := func(c *http.Client) (int, http.Header, []byte) {
		req, _ := http.NewRequest("GET", h.dl+"/conversations/"+conv+"/activities?watermark=40", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, raw
	}
	// The replay blocks on the full socket, holding the read.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, header, raw := get(http.DefaultClient)
		if status == 429 {
			var body map[string]any
			_ = json.Unmarshal(raw, &body)
			if _, _, ok := errorShape(body); !ok || header.Get("Retry-After") == "" || header.Get("Cache-Control") != "no-store" {
				t.Fatalf("429 = %s %v", raw, header)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history read beside a blocked replay = %d; want 429", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, _, raw := get(clientFrom("127.0.0.2")); status != 200 {
		t.Fatalf("another address's history read = %d %s", status, raw)
	}
	s.ws.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if status, _, _ := get(http.DefaultClient); status == 200 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("history reads did not recover after the socket closed")
}
