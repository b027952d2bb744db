package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/parley-gw/parley/internal/config"
)

// botCall calls the Bot Connector API without a bearer token (as an
// insecure development bot does), from 127.0.0.1 with extra headers.
func (h *harness) botCall(method, path string, body any, headers hdr) resp {
	h.t.Helper()
	j, _ := json.Marshal(body)
	return h.doVia(http.DefaultClient, method, h.base+path, "", j, "application/json", headers)
}

// Insecure development bots (registered with --insecure-no-auth) are
// accepted without a token from loopback only. Behind a reverse proxy on
// the same host (nginx, ngrok) every request's TCP peer is loopback, so
// loopback must be judged by the client address: through a trusted proxy,
// the one its X-Forwarded-For names; from a loopback peer that is not a
// trusted proxy, a request carrying a forwarding header is a proxy
// forwarding someone else's request and is not loopback either.
func TestInsecureBotNotLoopbackThroughProxy(t *testing.T) {
	msg := map[string]any{"type": "message", "text": "spoofed"}
	refused := func(t *testing.T, name string, r resp) {
		t.Helper()
		if (r.status != 401 && r.status != 403) || r.errCode() == "" {
			t.Errorf("%s: %d %s; want 401/403 in the Bot Connector error shape", name, r.status, r.raw)
		}
	}
	t.Run("trusted proxy", func(t *testing.T) {
		h := newHarness(t, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} })
		_, conv, _ := h.started("dl_alice")
		path := convPath(conv) + "/activities"
		refused(t, "via a trusted loopback proxy from a public address", h.botCall("POST", path, msg, hdr{"X-Forwarded-For": "203.0.113.7"}))
		refused(t, "a spoofed loopback entry left of the public address", h.botCall("POST", path, msg, hdr{"X-Forwarded-For": "127.0.0.1, 203.0.113.7"}))
		refused(t, "IPv6 public address", h.botCall("POST", path, msg, hdr{"X-Forwarded-For": "2001:db8::1"}))
		if r := h.botCall("POST", path, map[string]any{"type": "message", "text": "local"}, hdr{"X-Forwarded-For": "127.0.0.1"}); r.status != 200 {
			t.Errorf("via the trusted proxy from loopback: %d %s; want 200", r.status, r.raw)
		}
		if r := h.botCall("POST", path, map[string]any{"type": "message", "text": "direct"}, nil); r.status != 200 {
			t.Errorf("direct loopback call: %d %s; want 200", r.status, r.raw)
		}
	})
	t.Run("untrusted local proxy", func(t *testing.T) {
		h := newHarness(t) // no trusted_proxies: forwarding headers are never believed
		_, conv, _ := h.started("dl_alice")
		path := convPath(conv) + "/activities"
		refused(t, "X-Forwarded-For", h.botCall("POST", path, msg, hdr{"X-Forwarded-For": "203.0.113.7"}))
		refused(t, "X-Forwarded-For claiming loopback", h.botCall("POST", path, msg, hdr{"X-Forwarded-For": "127.0.0.1"}))
		refused(t, "Forwarded", h.botCall("POST", path, msg, hdr{"Forwarded": "for=203.0.113.7;proto=https"}))
		refused(t, "X-Real-IP", h.botCall("POST", path, msg, hdr{"X-Real-IP": "203.0.113.7"}))
		refused(t, "members read", h.botCall("GET", convPath(conv)+"/members", nil, hdr{"X-Forwarded-For": "203.0.113.7"}))
		if r := h.botCall("POST", path, map[string]any{"type": "message", "text": "direct"}, nil); r.status != 200 {
			t.Errorf("direct loopback call: %d %s; want 200", r.status, r.raw)
		}
	})
}
