package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-gw/parley/internal/config"
)

// fakeClock drives the server's rate limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// doVia sends a request through client c, without the harness's 5xx
// check: path is under the Direct Line base unless it is a whole URL.
func (h *harness) doVia(c *http.Client, method, path, auth string, body []byte, ct string, headers hdr) resp {
	h.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = h.dl + path
	}
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// subject is what a scoped limit counts: a site (its secret and a token
// for one of its conversations) or a conversation.
type subject struct{ secret, token, conv string }

type limitCase struct {
	route string
	// scoped: per site (true) or per conversation.
	site bool
	set  func(l *config.Limits, address, scoped config.Rate)
	call func(t *testing.T, h *harness, c *http.Client, s subject) resp
}

func limitCases() []limitCase {
	jsonBody := func(v any) []byte { b, _ := json.Marshal(v); return b }
	return []limitCase{
		{"generate", true, func(l *config.Limits, a, s config.Rate) { l.Generate = config.SiteScoped{Address: a, Site: s} },
			func(t *testing.T, h *harness, c *http.Client, s subject) resp {
				return h.doVia(c, "POST", "/tokens/generate", s.secret, jsonBody(map[string]any{"user": map[string]string{"id": "dl_u"}}), "application/json", nil)
			}},
		{"start", true, func(l *config.Limits, a, s config.Rate) { l.Start = config.SiteScoped{Address: a, Site: s} },
			func(t *testing.T, h *harness, c *http.Client, s subject) resp {
				return h.doVia(c, "POST", "/conversations", s.token, []byte(`{"user":{}}`), "application/json", nil)
			}},
		{"refresh", false, func(l *config.Limits, a, s config.Rate) {
			l.Refresh = config.ConversationScoped{Address: a, Conversation: s}
		},
			func(t *testing.T, h *harness, c *http.Client, s subject) resp {
				return h.doVia(c, "POST", "/tokens/refresh", s.token, nil, "", nil)
			}},
		{"post", false, func(l *config.Limits, a, s config.Rate) {
			l.Post = config.ConversationScoped{Address: a, Conversation: s}
		},
			func(t *testing.T, h *harness, c *http.Client, s subject) resp {
				return h.doVia(c, "POST", "/conversations/"+s.conv+"/activities", s.token, []byte(`{"type":"message","text":"hi"}`), "application/json", nil)
			}},
		{"upload", false, func(l *config.Limits, a, s config.Rate) {
			l.Upload = config.ConversationScoped{Address: a, Conversation: s}
		},
			func(t *testing.T, h *harness, c *http.Client, s subject) resp {
				body, ct := multipartBody(t, map[string]any{"type": "message", "attachments": []any{map[string]any{"contentType": "text/plain", "name": "a.txt"}}},
					[]filePart{{"a.txt", "text/plain", []byte("hello")}})
				return h.doVia(c, "POST", "/conversations/"+s.conv+"/upload", s.token, body, ct, nil)
			}},
		{"history", false, func(l *config.Limits, a, s config.Rate) {
			l.History = config.ConversationScoped{Address: a, Conversation: s}
		},
			func(t *testing.T, h *harness, c *http.Client, s subject) resp {
				return h.doVia(c, "GET", "/conversations/"+s.conv+"/activities", s.token, nil, "", nil)
			}},
		{"reconnect", false, func(l *config.Limits, a, s config.Rate) {
			l.Reconnect = config.ConversationScoped{Address: a, Conversation: s}
		},
			func(t *testing.T, h *harness, c *http.Client, s subject) resp {
				return h.doVia(c, "GET", "/conversations/"+s.conv+"?watermark=", s.token, nil, "", nil)
			}},
		{"stream", false, func(l *config.Limits, a, s config.Rate) {
			l.Stream = config.ConversationScoped{Address: a, Conversation: s}
		},
			func(t *testing.T, h *harness, c *http.Client, s subject) resp {
				// As DirectLineJS reconnects: a fresh stream URL, then the socket.
				rc := h.doVia(c, "GET", "/conversations/"+s.conv, s.token, nil, "", nil)
				if rc.status != 200 {
					t.Fatalf("reconnect GET: %d %s", rc.status, rc.raw)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				ws, res, err := websocket.Dial(ctx, rc.str("streamUrl"), &websocket.DialOptions{HTTPClient: c})
				if err == nil {
					ws.CloseNow()
					return resp{status: 200}
				}
				if res == nil {
					t.Fatalf("stream dial: %v", err)
				}
				return resp{status: res.StatusCode, header: res.Header}
			}},
	}
}

const tight config.Rate = "60/m burst 2" // one a second, two at once

// newLimitHarness starts a server whose limits are set by set, with a
// fake limiter clock, and two subjects (sites or conversations).
func newLimitHarness(t *testing.T, lc limitCase, address, scoped config.Rate, opts ...harnessOpt) (*harness, *fakeClock, [2]subject) {
	opts = append(opts, func(c *config.Config) { lc.set(&c.Limits, address, scoped) })
	h := newHarness(t, opts...)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	h.srv.Limiter().SetNow(clk.Now)
	var subs [2]subject
	if lc.site {
		_, secret2, _ := provision(t, h.st, "bot-b", h.botRec.url, true, []string{trustedOrigin})
		for i, sec := range []string{h.secret, secret2} {
			r := h.do("POST", "/tokens/generate", sec, map[string]any{"user": map[string]string{"id": "dl_u"}}, nil)
			if r.status != 200 {
				t.Fatalf("generate: %d %s", r.status, r.raw)
			}
			subs[i] = subject{secret: sec, token: r.str("token"), conv: r.str("conversationId")}
		}
	} else {
		for i := range subs {
			tok, conv, _ := h.started("dl_user" + strconv.Itoa(i))
			subs[i] = subject{secret: h.secret, token: tok, conv: conv}
		}
	}
	clk.Advance(time.Hour) // whatever the setup spent is back
	return h, clk, subs
}

// short keeps tokens out of failure messages.
func short(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

func expectThrottled(t *testing.T, what string, r resp) {
	t.Helper()
	if r.status != 429 {
		t.Fatalf("%s: %d %s, want 429", what, r.status, short(r.raw))
	}
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra != 1 {
		t.Fatalf("%s: Retry-After %q, want 1 (seconds)", what, r.header.Get("Retry-After"))
	}
	if ms, err := strconv.Atoi(r.header.Get("Retry-After-Ms")); err != nil || ms <= 0 || ms > 1000 {
		t.Fatalf("%s: Retry-After-Ms %q, want (0, 1000]", what, r.header.Get("Retry-After-Ms"))
	}
	if r.raw != nil && r.errCode() != "Throttled" {
		t.Fatalf("%s: body %s, want the Direct Line error shape with code Throttled", what, r.raw)
	}
}

func expectOK(t *testing.T, what string, r resp) {
	t.Helper()
	if r.status < 200 || r.status > 299 {
		t.Fatalf("%s: %d %s, want success", what, r.status, short(r.raw))
	}
}

// Each per-site and per-conversation limit triggers, leaves another site
// or conversation alone, and recovers.
func TestRateLimitPerSiteAndConversation(t *testing.T) {
	for _, lc := range limitCases() {
		t.Run(lc.route, func(t *testing.T) {
			h, clk, subs := newLimitHarness(t, lc, config.Off, tight)
			c := http.DefaultClient
			expectOK(t, "first", lc.call(t, h, c, subs[0]))
			expectOK(t, "second", lc.call(t, h, c, subs[0]))
			expectThrottled(t, "third at once", lc.call(t, h, c, subs[0]))
			expectOK(t, "another site or conversation", lc.call(t, h, c, subs[1]))
			clk.Advance(time.Second)
			expectOK(t, "after Retry-After", lc.call(t, h, c, subs[0]))
			expectThrottled(t, "again at once", lc.call(t, h, c, subs[0]))
		})
	}
}

// Each per-address limit triggers for one address only and recovers.
func TestRateLimitPerAddress(t *testing.T) {
	for _, lc := range limitCases() {
		t.Run(lc.route, func(t *testing.T) {
			h, clk, subs := newLimitHarness(t, lc, tight, config.Off)
			a, b := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
			expectOK(t, "first", lc.call(t, h, a, subs[0]))
			expectOK(t, "second", lc.call(t, h, a, subs[0]))
			expectThrottled(t, "third at once", lc.call(t, h, a, subs[0]))
			expectThrottled(t, "other subject, same address", lc.call(t, h, a, subs[1]))
			expectOK(t, "another address", lc.call(t, h, b, subs[0]))
			clk.Advance(time.Second)
			expectOK(t, "after Retry-After", lc.call(t, h, a, subs[0]))
		})
	}
}

// Behind a trusted proxy the client address comes from X-Forwarded-For,
// read from the right: clients behind one proxy get their own buckets, and
// a spoofed leftmost entry does not buy a fresh one. Without the proxy
// configured, the header is ignored.
func TestRateLimitBehindTrustedProxy(t *testing.T) {
	lc := limitCases()[5] // history
	if lc.route != "history" {
		t.Fatal("case order changed")
	}
	get := func(h *harness, s subject, xff string) resp {
		return h.doVia(http.DefaultClient, "GET", "/conversations/"+s.conv+"/activities", s.token, nil, "", hdr{"X-Forwarded-For": xff})
	}
	h, _, subs := newLimitHarness(t, lc, tight, config.Off, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} })
	expectOK(t, "client 1", get(h, subs[0], "203.0.113.5"))
	expectOK(t, "client 1 again", get(h, subs[0], "203.0.113.5"))
	expectThrottled(t, "client 1 over", get(h, subs[0], "203.0.113.5"))
	expectThrottled(t, "client 1 spoofing a leftmost entry", get(h, subs[0], "198.51.100.77, 203.0.113.5"))
	expectOK(t, "client 2 behind the same proxy", get(h, subs[0], "203.0.113.6"))

	h2, _, subs2 := newLimitHarness(t, lc, tight, config.Off)
	expectOK(t, "first", get(h2, subs2[0], "203.0.113.5"))
	expectOK(t, "second", get(h2, subs2[0], "203.0.113.6"))
	expectThrottled(t, "no trusted proxy: the header buys nothing", get(h2, subs2[0], "203.0.113.7"))
}

// The shipped defaults never meet normal Web Chat use: a reconnect storm
// after a gateway restart (every open page behind one NAT address does
// GET /conversations/{id}, opens its socket and refreshes its token at
// once), with several tabs on some conversations, then history reads and
// a few messages.
func TestRateLimitDefaultsAllowReconnectStorm(t *testing.T) {
	h := newHarness(t)
	const pages = 150
	type page struct{ tok, conv string }
	ps := make([]page, 0, pages)
	for i := 0; len(ps) < pages; i++ {
		tok, conv, _ := h.started("dl_storm" + strconv.Itoa(i))
		for tab := 0; tab < 1+i%3 && len(ps) < pages; tab++ { // 1 to 3 tabs per conversation
			ps = append(ps, page{tok, conv})
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, pages*4)
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc := h.doVia(http.DefaultClient, "GET", "/conversations/"+p.conv, p.tok, nil, "", nil)
			if rc.status != 200 {
				errs <- "reconnect " + strconv.Itoa(rc.status)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ws, res, err := websocket.Dial(ctx, rc.str("streamUrl"), nil)
			if err != nil {
				status := 0
				if res != nil {
					status = res.StatusCode
				}
				errs <- "stream " + strconv.Itoa(status) + " " + err.Error()
				return
			}
			defer ws.CloseNow()
			if r := h.doVia(http.DefaultClient, "POST", "/tokens/refresh", rc.str("token"), nil, "", nil); r.status != 200 {
				errs <- "refresh " + strconv.Itoa(r.status)
			}
			if r := h.doVia(http.DefaultClient, "GET", "/conversations/"+p.conv+"/activities", rc.str("token"), nil, "", nil); r.status != 200 {
				errs <- "history " + strconv.Itoa(r.status)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []string
	for e := range errs {
		all = append(all, e)
	}
	if len(all) > 0 {
		t.Fatalf("%d failures in the storm, e.g. %v", len(all), all[:min(5, len(all))])
	}
	if n := h.srv.Limiter().Refused("stream/conversation") + h.srv.Limiter().Refused("stream/address"); n != 0 {
		t.Fatalf("%v stream connects refused", n)
	}
}

// Direct Line authentication failures are logged and counted.
func TestDirectLineAuthFailuresCounted(t *testing.T) {
	h := newHarness(t)
	h.do("POST", "/conversations", "not-a-token-or-secret", `{}`, nil)
	h.do("POST", "/conversations", "", `{}`, nil)
	res, err := http.Get(h.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	for _, want := range []string{
		`parley_auth_failures_total{reason="invalid_credential",surface="directline"} 1`,
		`parley_auth_failures_total{reason="missing_credential",surface="directline"} 1`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(h.logs.String(), `"surface":"directline"`) {
		t.Error("Direct Line authentication failure not logged")
	}
}
