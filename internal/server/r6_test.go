package server_test

// Regression tests from the R6 security review of issue 9 (attacks on the
// seams between the five pieces).

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/store"
)

// A stream URL is single-use for as long as its credential is accepted.
// The verifier accepts a stream token up to identity.Leeway (30 s) past
// its exp, so the used-credential set must remember it that long too;
// otherwise a used stream URL opens any number of sockets in the 30 s
// after its expiry.
func TestR6StreamURLStaysSingleUseThroughLeeway(t *testing.T) {
	h := newHarness(t)
	_, _, start := h.started("dl_alice")
	u, err := url.Parse(start.str("streamUrl"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.issuer.Verify(u.Query().Get("t"), identity.ScopeStream)
	if err != nil {
		t.Fatal(err)
	}
	// The same stream credential, with a one-second lifetime (as the
	// gateway's would be 59 s after it was handed out).
	tok, _, err := h.issuer.Issue(c, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("t", tok)
	u.RawQuery = q.Encode()
	su := u.String()
	s, _, err := h.dial(su, trustedOrigin)
	if err != nil {
		t.Fatalf("first use: %v", err)
	}
	s.ws.CloseNow()
	time.Sleep(1500 * time.Millisecond) // past exp, within the leeway
	if _, err := h.issuer.Verify(tok, identity.ScopeStream); err != nil {
		t.Skipf("the credential is no longer accepted at all (%v): nothing to reuse", err)
	}
	if s2, res, err := h.dial(su, trustedOrigin); err == nil {
		s2.ws.CloseNow()
		t.Fatalf("a used stream URL opened a second socket after its exp (within the verifier's leeway)")
	} else if res == nil || res.StatusCode != 403 {
		t.Fatalf("second use: %v; want 403", err)
	}
}

// A handshake that the WebSocket library refuses after Parley's own checks
// (a Sec-WebSocket-Key of 24 characters that is not base64 of 16 bytes,
// or two keys) must be answered in the Direct Line error shape and must
// not use up the stream URL (README: "A handshake refused for another
// reason ... does not use the URL up"; finding 10).
func TestR6BadWebSocketKeyInProtocolShapeAndKeepsURL(t *testing.T) {
	h := newHarness(t)
	_, _, start := h.started("dl_alice")
	su := start.str("streamUrl")
	hd := upgradeHeaders()
	hd["Origin"] = trustedOrigin
	hd["Sec-WebSocket-Key"] = "!!!!!!!!!!!!!!!!!!!!!!!!" // 24 characters, not base64
	status, header, body, raw := rawUpgrade(t, su, hd)
	if _, _, ok := errorShape(body); status < 400 || status >= 500 || !ok || !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
		t.Errorf("invalid Sec-WebSocket-Key: %d %q %s; want a 4xx in the Direct Line error shape", status, header.Get("Content-Type"), raw)
	}
	if _, _, err := h.dial(su, trustedOrigin); err != nil {
		t.Fatalf("the stream URL after a refused handshake: %v", err)
	}
}

// Per-client caps must key IPv6 clients by their /64, like the rate
// limits (guard.AddrKey): one host owns its whole /64, so keying by the
// full address gives one client 2^64 caps. Here the client's addresses
// arrive through a trusted proxy's X-Forwarded-For.
func TestR6StreamCapKeysIPv6ByPrefix(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32"}
		c.DirectLine.MaxStreamsPerClient = 1
	})
	tok, conv, _ := h.started("dl_alice")
	fresh := func() string {
		rc := h.do("GET", "/conversations/"+conv+"?watermark=", tok, nil, nil)
		if rc.status != 200 {
			t.Fatalf("reconnect: %d %s", rc.status, rc.raw)
		}
		return rc.str("streamUrl")
	}
	open := func(xff string) int {
		hd := upgradeHeaders()
		hd["X-Forwarded-For"] = xff
		req, _ := http.NewRequest("GET", strings.Replace(fresh(), "ws://", "http://", 1), nil)
		for k, v := range hd {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		// Keep an upgraded connection open: it holds the client's stream.
		if res.StatusCode != http.StatusSwitchingProtocols {
			res.Body.Close()
		} else {
			t.Cleanup(func() { res.Body.Close() })
		}
		return res.StatusCode
	}
	if s := open("2001:db8:1:2::1"); s != http.StatusSwitchingProtocols {
		t.Fatalf("first stream: %d", s)
	}
	if s := open("2001:db8:1:2::2"); s != http.StatusTooManyRequests {
		t.Errorf("second stream from the same /64 = %d; want 429 (the per-client cap is per /64, like the rate limits)", s)
	}
	if s := open("2001:db8:1:3::1"); s != http.StatusSwitchingProtocols {
		t.Errorf("a stream from another /64 = %d; want 101", s)
	}
}

// One client address must not be able to take every connection the
// listener holds (issue 9: "one address being throttled never throttles
// anyone else"; finding 4: cap connections per client). Idle connections
// opened from 127.0.0.1 up to max_connections left another address
// (127.0.0.2) unable to get an answer. Now 127.0.0.1 gets at most
// max_connections_per_client of them and 127.0.0.2 is still served.
func TestR6OneAddressCannotTakeEveryConnection(t *testing.T) {
	const perClient = 4
	h := newHarness(t, func(c *config.Config) {
		c.MaxConnections = 16
		c.MaxConnectionsPerClient = perClient
		c.DirectLine.MaxStreamsPerClient = 16
	})
	http.DefaultClient.CloseIdleConnections() // the harness's own setup connections
	addr := strings.TrimPrefix(h.base, "http://")
	var served int
	for i := 0; i < 16; i++ {
		c := dialFrom(t, "127.0.0.1", addr)
		if line, err := healthzOn(c); err == nil && strings.Contains(line, "200") {
			served++ // stays open, idle
		}
	}
	if served != perClient {
		t.Errorf("one address held %d of 16 idle connections; want its cap, %d", served, perClient)
	}
	other := clientFrom("127.0.0.2")
	other.Timeout = 5 * time.Second
	res, err := other.Get(h.base + "/healthz")
	if err != nil {
		t.Fatalf("another address could not be served while one address holds idle connections: %v", err)
	}
	res.Body.Close()
	if n := connectionsRefused(t, h, "max_connections_per_client"); n != 16-perClient {
		t.Errorf("parley_connections_refused_total{limit=max_connections_per_client} = %v; want %d", n, 16-perClient)
	}
	if !strings.Contains(h.logs.String(), "per-client connection limit reached") {
		t.Errorf("the refusal was not logged:\n%s", h.logs.String())
	}
}

// A visitor holding a conversation token must not be able to spend the
// per-site budget of POST /conversations for everyone else: resuming its
// own conversation (200) again and again draws on the site's bucket, so a
// few addresses (or IPv6 /64s) of one visitor stop every new conversation
// of the site ("throttling one never throttles another"). With the
// defaults, five addresses at their per-address rate (20/s each) drain the
// site's 100/s. Shown here with a small site limit.
func TestR6VisitorCannotDrainSiteStartBudget(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.Limits.Start = config.SiteScoped{Address: config.Off, Site: "5/h burst 5"}
	})
	tok, _, _ := h.started("dl_mallory") // one start from the site's budget
	for i := 0; i < 10; i++ {
		h.do("POST", "/conversations", tok, `{}`, nil) // resumes of its own conversation
	}
	other, _ := h.generate("dl_alice")
	r := h.do("POST", "/conversations", other, `{"user":{}}`, nil)
	if r.status != 201 {
		t.Fatalf("another visitor's first start = %d %s; want 201 (one visitor's resumes spent the site's start budget)", r.status, r.raw)
	}
}

// Two client addresses must not be able to stop every other client's
// history reads and stream replays. Each holds max_history_reads_per_client
// never-reading replays of a large conversation; together they hold every
// gateway-wide slot (max_history_reads) until their write deadlines pass,
// and renew them as fast as they like. A third address's history read of
// its own small conversation then waits 5 s and gets 503 (and a new stream's
// replay, which needs a slot even with nothing to replay, is closed).
// With the defaults (64 slots, 4 per address, each slot holding at most a
// 512 KiB chunk), two addresses at their caps hold 8 slots: the rest of
// the gateway is served. (Enough addresses can fill any gateway-wide pool;
// that is a distributed attack, answered with 503s, never with memory.)
func TestR6TwoAddressesCannotStarveHistoryReads(t *testing.T) {
	h := newHarness(t)
	tok, conv, _ := h.started("dl_mallory")
	fillConversation(t, h, conv, 48, 250<<10)
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		for range 9 { // past the cap of its address (4 now, 8 before)
			rc := h.do("GET", "/conversations/"+conv+"?watermark=", tok, nil, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ws, _, err := websocket.Dial(ctx, rc.str("streamUrl"), &websocket.DialOptions{HTTPClient: clientFrom(ip)})
			cancel()
			if err != nil {
				t.Fatalf("dial from %s: %v", ip, err)
			}
			t.Cleanup(func() { ws.CloseNow() }) // never reads
		}
	}
	// A new stream on a conversation with nothing to replay opens and
	// gets its frames even while replays hold slots.
	ntok, nconv, _ := h.started("dl_newcomer")
	nrc := h.do("GET", "/conversations/"+nconv+"?watermark=", ntok, nil, nil)
	nctx, ncancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ncancel()
	nws, _, err := websocket.Dial(nctx, nrc.str("streamUrl"), &websocket.DialOptions{HTTPClient: clientFrom("127.0.0.4")})
	if err != nil {
		t.Fatalf("a newcomer's stream: %v", err)
	}
	defer nws.CloseNow()
	vtok, vconv, _ := h.started("dl_victim")
	h.post(vtok, vconv, map[string]any{"type": "message", "text": "hi", "from": map[string]string{"id": "dl_victim"}})
	victim := clientFrom("127.0.0.3")
	time.Sleep(time.Second) // let the replays fill their sockets
	req, _ := http.NewRequest("GET", h.dl+"/conversations/"+vconv+"/activities", nil)
	req.Header.Set("Authorization", "Bearer "+vtok)
	res, err := victim.Do(req)
	if err != nil {
		t.Fatalf("request from 127.0.0.3: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("an unrelated client's history read = %d; want 200 (two addresses hold every history-read slot)", res.StatusCode)
	}
}

// While a bot is failing (down for a redeploy, or answering 429/503), the
// delivery lanes keep every pending activity of a conversation, bodies
// included, in memory (Enqueue appends each committed item to its lane's
// queue, and a lane that resumes reads the whole pending outbox of its
// conversation). A client posting large activities to such a bot makes the
// gateway hold its whole backlog: issue 9's finding 4 ("one request can make
// the gateway allocate hundreds of megabytes") by another path. Here 48 MB
// of pending deliveries must not stay on the live heap.
func TestR6PendingDeliveriesNotHeldInMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 48 MB")
	}
	h := newHarness(t)
	_, conv, _ := h.started("dl_alice")
	h.botRec.waitFor(t, "the conversationUpdate", func(a map[string]any) bool { return a["type"] == "conversationUpdate" })
	h.botRec.mu.Lock()
	h.botRec.fail = func(map[string]any) int { return http.StatusServiceUnavailable }
	h.botRec.mu.Unlock()
	base := liveHeap()
	lg := conversation.NewLog(h.st, h.srv.Codec())
	text := strings.Repeat("x", 250<<10)
	for i := 0; i < 192; i += 8 {
		var items []conversation.Item
		for j := i; j < i+8; j++ {
			a := conversation.Activity{}
			a.Set("type", "message")
			a.Set("text", text)
			a.Set("from", conversation.Account{ID: "dl_alice", Role: "user"})
			items = append(items, conversation.Item{Activity: a, Visibility: store.VisibleAll, BotID: "bot-a",
				ToBot: func(s conversation.Activity) (conversation.Activity, error) { return s, nil }})
		}
		if _, err := lg.Append(context.Background(), conv, items); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond) // the lane tries, fails and backs off
	var held uint64
	if v := liveHeap(); v > base {
		held = v - base
	}
	t.Logf("live heap growth with 48 MB pending for a failing bot: %.1f MiB", float64(held)/(1<<20))
	if held > 16<<20 {
		t.Fatalf("the gateway holds %.1f MiB for one conversation's 48 MB of pending deliveries; want it bounded (read pending items from the store as they are sent)", float64(held)/(1<<20))
	}
}
