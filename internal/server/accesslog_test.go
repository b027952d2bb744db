package server_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

type accessLine struct {
	Level    string `json:"level"`
	Msg      string `json:"msg"`
	Method   string `json:"method"`
	Route    string `json:"route"`
	Status   int    `json:"status"`
	Duration string `json:"duration"`
	Client   string `json:"client_addr"`
	Site     string `json:"site"`
}

// accessLines are the access log's lines in logs.
func accessLines(t *testing.T, logs string) []accessLine {
	t.Helper()
	var out []accessLine
	for _, l := range strings.Split(logs, "\n") {
		var a accessLine
		if json.Unmarshal([]byte(l), &a) != nil || (a.Msg != "request" && a.Msg != "stream ended") {
			continue
		}
		var raw map[string]any
		_ = json.Unmarshal([]byte(l), &raw)
		for k := range raw {
			switch k {
			case "time", "level", "msg", "method", "route", "status", "duration", "client_addr", "site":
			default:
				t.Errorf("access log line has an unexpected attribute %q: %s", k, l)
			}
		}
		out = append(out, a)
	}
	return out
}

func findAccess(lines []accessLine, route string, status int) (accessLine, bool) {
	for _, a := range lines {
		if a.Route == route && a.Status == status {
			return a, true
		}
	}
	return accessLine{}, false
}

// One access log line per request, at info: method, route pattern,
// status, human duration, pseudonymized client address, site. A stream's
// line comes when it ends, with its whole duration. Never the path's ids,
// the query, a secret, a token or message text.
func TestAccessLog(t *testing.T) {
	h := newHarness(t)
	const text = "ACCESSLOG-CANARY-TEXT-51f0"
	tok, conv, start := h.started("dl_accesslog")
	h.post(tok, conv, map[string]any{"type": "message", "text": text})
	// Credentials in the query (as stream URLs carry them), in the path.
	q := "?watermark=0&t=" + url.QueryEscape(tok) + "&secret=" + url.QueryEscape(h.secret)
	if r := h.do("GET", "/conversations/"+conv+"/activities"+q, tok, nil, nil); r.status != 200 {
		t.Fatalf("history: %d %s", r.status, r.raw)
	}
	h.do("GET", "/conversations/"+url.PathEscape(h.secret2)+"/nothing", tok, nil, nil)
	if r := h.do("POST", "/tokens/generate", "wrong"+h.secret[5:], `{}`, nil); r.status != 403 {
		t.Fatalf("a wrong secret: %d", r.status)
	}
	streamURL := start.str("streamUrl")
	s, _, err := h.dial(streamURL, trustedOrigin)
	if err != nil {
		t.Fatal(err)
	}
	h.waitMetric(t, `parley_open_streams_by_site{site="`+h.site.ID+`"}`, func(v float64) bool { return v == 1 })
	if _, ok := findAccess(accessLines(t, h.logs.String()), "GET /v3/directline/conversations/{id}/stream", 101); ok {
		t.Fatal("the stream's line was written before it ended")
	}
	time.Sleep(300 * time.Millisecond)
	_ = s.ws.Close(websocket.StatusNormalClosure, "")
	h.waitMetric(t, `parley_open_streams_by_site{site="`+h.site.ID+`"}`, func(v float64) bool { return v == 0 })
	ps := h.pseudonymizer(t)
	h.stop()

	logs := h.logs.String()
	lines := accessLines(t, logs)
	wantClient := ps.Addr("127.0.0.1")
	for _, a := range lines {
		d, err := time.ParseDuration(a.Duration)
		if a.Method == "" || !(strings.Contains(a.Route, " /") || strings.HasPrefix(a.Route, "/")) || a.Status == 0 || err != nil || d < 0 || a.Client != wantClient {
			t.Errorf("access line %+v: want method, route pattern, status, a Go duration, client %s", a, wantClient)
		}
		if a.Level != "INFO" && !strings.HasSuffix(a.Route, "z") {
			t.Errorf("access line at %s: %+v", a.Level, a)
		}
	}
	for _, c := range []struct {
		route  string
		status int
		site   string
	}{
		{"POST /v3/directline/tokens/generate", 200, h.site.ID},
		{"POST /v3/directline/conversations", 201, h.site.ID},
		{"POST /v3/directline/conversations/{id}/activities", 200, h.site.ID},
		{"GET /v3/directline/conversations/{id}/activities", 200, h.site.ID},
		{"POST /v3/directline/tokens/generate", 403, ""},
		{"/v3/directline/", 404, ""}, // not authenticated: no site
	} {
		a, ok := findAccess(lines, c.route, c.status)
		if !ok || a.Site != c.site {
			t.Errorf("no access line for %s %d with site %q: %+v", c.route, c.status, c.site, a)
		}
	}
	st, ok := findAccess(lines, "GET /v3/directline/conversations/{id}/stream", 101)
	if d, _ := time.ParseDuration(st.Duration); !ok || st.Msg != "stream ended" || st.Site != h.site.ID || d < 250*time.Millisecond {
		t.Errorf("stream line = %+v, want one when it ended, with its duration (>= 300ms)", st)
	}
	streamTok, _ := url.Parse(streamURL)
	for name, needle := range map[string]string{
		"message text": text, "site secret": h.secret, "second secret": h.secret2, "token": tok,
		"stream token": streamTok.Query().Get("t"), "query": "watermark=", "conversation id": conv,
	} {
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, needle) && (strings.Contains(l, `"msg":"request"`) || strings.Contains(l, `"msg":"stream ended"`)) {
				t.Errorf("the access log shows the %s: %s", name, l)
			}
		}
		if name != "conversation id" && strings.Contains(logs, needle) {
			t.Errorf("the logs show the %s", name)
		}
	}
}

// access_log: false moves the lines to debug.
func TestAccessLogOff(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.AccessLog = false })
	h.generate("dl_quiet")
	h.stop()
	lines := accessLines(t, h.logs.String())
	a, ok := findAccess(lines, "POST /v3/directline/tokens/generate", 200)
	if !ok || a.Level != "DEBUG" {
		t.Fatalf("with access_log false: %+v, want the line at debug", a)
	}
}

// Durations are written as Go durations, not nanosecond integers,
// wherever they are in a record.
func TestHumanDurations(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(server.HumanDurations(slog.NewJSONHandler(&buf, nil)))
	l = l.With("retry_for", 24*time.Hour)
	l.WithGroup("g").Info("m", "retry_in", 1502345678*time.Nanosecond, slog.Group("inner", "wait", 120345*time.Microsecond), "n", 42,
		"tiny", 350*time.Microsecond, "long", 2*time.Minute+3*time.Second+140*time.Millisecond, "neg", -1500*time.Millisecond)
	out := buf.String()
	for _, want := range []string{`"retry_for":"24h0m0s"`, `"retry_in":"1.502s"`, `"inner":{"wait":"120.35ms"}`, `"n":42`, `"tiny":"350µs"`, `"long":"2m3.1s"`, `"neg":"-1.5s"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	buf.Reset()
	l.Info("none", "n", 1) // no duration in the record: passed through
	if !strings.Contains(buf.String(), `"n":1`) {
		t.Fatal(buf.String())
	}
}
