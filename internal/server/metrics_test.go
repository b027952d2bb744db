package server_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
)

// getMetrics reads /metrics from the metrics listener.
func (h *harness) getMetrics(t *testing.T) string {
	t.Helper()
	status, body := httpGet(t, h.metrics+"/metrics", "")
	if status != 200 {
		t.Fatalf("metrics listener /metrics = %d %s", status, body)
	}
	return body
}

func httpGet(t *testing.T, url, bearer string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// /metrics is served on the metrics listener only; the probes on both;
// routes added with HandleMetrics on the metrics listener only.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	h := newHarness(t)
	tok, _ := h.generate("dl_metrics")
	if r := h.do("POST", "/tokens/refresh", tok, nil, nil); r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.raw)
	}
	if status, body := httpGet(t, h.base+"/metrics", ""); status != http.StatusNotFound || strings.Contains(body, "parley_") {
		t.Fatalf("main listener /metrics = %d %.200s, want 404", status, body)
	}
	if body := h.get(t, "/metrics?format=prometheus"); strings.Contains(body, "go_goroutines") {
		t.Fatal("main listener serves metrics with a query")
	}
	for _, base := range []string{h.base, h.metrics} {
		for _, p := range []string{"/healthz", "/readyz"} {
			if status, _ := httpGet(t, base+p, ""); status != 200 {
				t.Errorf("%s%s = %d", base, p, status)
			}
		}
	}
	m := h.getMetrics(t)
	for _, want := range []string{
		`parley_tokens_issued_total{kind="directline_generate"} 1`,
		`parley_tokens_issued_total{kind="directline_refresh"} 1`,
		`parley_tokens_issued_total{kind="bot_access"} 0`,
		`parley_http_requests_total{route="POST /v3/directline/tokens/generate",status="200"} 1`,
		"go_goroutines ", "go_memstats_heap_alloc_bytes ", "process_cpu_seconds_total ", "process_open_fds ",
		"parley_metrics_unauthorized_total 0",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The security report is on the metrics listener, never the public one.
	if status, body := httpGet(t, h.metrics+"/security/report", ""); status != 200 || !strings.HasPrefix(body, "{") {
		t.Fatalf("security report on the metrics listener = %d %q", status, body)
	}
	if status, _ := httpGet(t, h.base+"/security/report", ""); status != http.StatusNotFound {
		t.Fatalf("security report on the main listener = %d, want 404", status)
	}
}

const metricsToken = "mt-9f3c1b7e5a2d4c6b8e0f1a3c5e7b9d2f4a6c8e0b"

func withMetricsToken(t *testing.T) harnessOpt {
	p := filepath.Join(t.TempDir(), "metrics.token")
	if err := os.WriteFile(p, []byte(metricsToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *config.Config) { c.Metrics.BearerTokenFile = p }
}

// With metrics.bearer_token_file, everything on the metrics listener needs
// the token; the token is never logged; refusals are counted.
func TestMetricsBearerToken(t *testing.T) {
	h := newHarness(t, withMetricsToken(t))
	for name, auth := range map[string]string{
		"none":               "",
		"wrong token":        "Bearer " + strings.Repeat("x", len(metricsToken)),
		"prefix of token":    "Bearer " + metricsToken[:len(metricsToken)-1],
		"token plus a char":  "Bearer " + metricsToken + "x",
		"basic scheme":       "Basic " + metricsToken,
		"no scheme":          metricsToken,
		"huge header":        "Bearer " + strings.Repeat("a", 8000),
		"token in the query": "",
	} {
		url := h.metrics + "/metrics"
		if name == "token in the query" {
			url += "?token=" + metricsToken
		}
		status, body := httpGet(t, url, auth)
		if status != http.StatusUnauthorized || strings.Contains(body, "parley_") {
			t.Errorf("%s: /metrics = %d %.100s, want 401", name, status, body)
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/security/report"} {
		if status, _ := httpGet(t, h.metrics+p, ""); status != http.StatusUnauthorized {
			t.Errorf("metrics listener %s without the token = %d, want 401", p, status)
		}
	}
	for _, auth := range []string{"Bearer " + metricsToken, "bearer " + metricsToken, "BEARER  " + metricsToken + " "} {
		status, body := httpGet(t, h.metrics+"/metrics", auth)
		if status != 200 || !strings.Contains(body, "parley_metrics_unauthorized_total 11") {
			t.Fatalf("%q: /metrics = %d, refusals: %s", auth, status, grepLines(body, "parley_metrics_unauthorized_total"))
		}
	}
	// The main listener's probes need no token (orchestrators).
	if status, _ := httpGet(t, h.base+"/healthz", ""); status != 200 {
		t.Fatalf("main /healthz = %d", status)
	}
	h.stop()
	if strings.Contains(h.logs.String(), metricsToken) || strings.Contains(h.logs.String(), metricsToken[:16]) {
		t.Fatal("the metrics bearer token is in the logs")
	}
	if !strings.Contains(h.logs.String(), "request without the bearer token refused") {
		t.Fatalf("refusals are not logged:\n%s", h.logs.String())
	}
}

// waitMetric polls the metrics listener until metric name's value
// satisfies ok.
func (h *harness) waitMetric(t *testing.T, name string, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := strconv.ParseFloat(h.metric(name), 64)
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q: condition not met", name, h.metric(name))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The delivery metrics show a bot that hangs, then fails, then recovers:
// the delivery in flight, queued, the age of the oldest, the retry, the
// delivery.
func TestDeliveryMetrics(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.DirectLine.BotWait = durationT(time.Second) })
	tok, conv, _ := h.started("dl_metrics")
	h.botRec.waitFor(t, "the conversationUpdate", func(a map[string]any) bool { return a["type"] == "conversationUpdate" })
	delivered := h.waitMetric(t, "parley_deliveries_delivered_total", func(v float64) bool { return v >= 1 })

	release := make(chan struct{})
	h.setBotFail(func(a map[string]any) int {
		if a["text"] == "held" {
			<-release
			return http.StatusServiceUnavailable
		}
		return 0
	})
	if r := h.do("POST", "/conversations/"+conv+"/activities", tok, `{"type":"message","text":"held"}`, nil); r.status != http.StatusBadGateway {
		t.Fatalf("post to a hanging bot: %d %s", r.status, r.raw)
	}
	// The first look at the outbox: taken now, cached for 10 s.
	if got := h.metric("parley_outbox_pending"); got != "1" {
		t.Errorf("parley_outbox_pending = %q, want 1", got)
	}
	if age, err := strconv.ParseFloat(h.metric("parley_outbox_oldest_age_seconds"), 64); err != nil || age < 0.9 || age > 30 {
		t.Errorf("parley_outbox_oldest_age_seconds = %v, %v; want about 1 (bot_wait)", age, err)
	}
	if got := h.metric("parley_deliveries_in_flight"); got != "1" {
		t.Errorf("parley_deliveries_in_flight = %q, want 1", got)
	}
	if got := h.metric("parley_deliveries_retried_total"); got != "0" {
		t.Errorf("parley_deliveries_retried_total = %q before any failure", got)
	}
	close(release)
	h.waitMetric(t, "parley_deliveries_retried_total", func(v float64) bool { return v >= 1 })
	h.setBotFail(nil)
	h.waitMetric(t, "parley_deliveries_delivered_total", func(v float64) bool { return v >= delivered+1 })
	h.waitMetric(t, "parley_deliveries_in_flight", func(v float64) bool { return v == 0 })
	if v := h.waitMetric(t, "parley_delivery_attempts_total", func(v float64) bool { return v >= delivered+2 }); v < 3 {
		t.Errorf("attempts = %v", v)
	}
	if got := h.metric("parley_outbox_dead_lettered_total"); got != "0" {
		t.Errorf("parley_outbox_dead_lettered_total = %q", got)
	}
}

// The bots' token service counts the access tokens it issues, not its
// refusals.
func TestBotAccessTokensCounted(t *testing.T) {
	h, b, _ := secureHarness(t)
	before, _ := strconv.ParseFloat(h.metric(`parley_tokens_issued_total{kind="bot_access"}`), 64)
	if _, st, raw := tokenRequest(t, h, url.Values{"client_id": {b.appID}, "client_secret": {b.secret}}, ""); st != 200 {
		t.Fatalf("token: %d %s", st, raw)
	}
	if _, st, _ := tokenRequest(t, h, url.Values{"client_id": {b.appID}, "client_secret": {"wrong-secret"}}, ""); st != 401 {
		t.Fatalf("a wrong secret got %d", st)
	}
	if got, _ := strconv.ParseFloat(h.metric(`parley_tokens_issued_total{kind="bot_access"}`), 64); got != before+1 {
		t.Fatalf("bot_access tokens = %v, want %v", got, before+1)
	}
}
