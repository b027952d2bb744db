package server_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/store/sqlite"
	"github.com/parley-gw/parley/internal/threat"
)

// webhookReceiver is an HTTPS alert receiver on loopback.
type webhookReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	got   []receivedAlert
	block chan struct{} // when set, the handler waits on it (a receiver that hangs)
}

type receivedAlert struct {
	body []byte
	sig  string
	at   time.Time
}

func newWebhookReceiver(t *testing.T, hang bool) *webhookReceiver {
	rc := &webhookReceiver{}
	if hang {
		rc.block = make(chan struct{})
	}
	rc.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rc.block != nil {
			select {
			case <-rc.block:
			case <-r.Context().Done():
			}
			return
		}
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, receivedAlert{body: b, sig: r.Header.Get(threat.SignatureHeader), at: time.Now()})
		rc.mu.Unlock()
	}))
	t.Cleanup(func() {
		if rc.block != nil {
			close(rc.block)
		}
		rc.srv.Close()
	})
	return rc
}

func (rc *webhookReceiver) alerts() []receivedAlert {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]receivedAlert(nil), rc.got...)
}

func (rc *webhookReceiver) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(rc.srv.Certificate())
	return p
}

func writeSecret(t *testing.T) (string, []byte) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	p := filepath.Join(t.TempDir(), "webhook.key")
	if err := os.WriteFile(p, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, secret
}

// alertingHarness is a server behind a trusted proxy (loopback, so the
// tests choose client addresses with X-Forwarded-For) with one alert rule.
func alertingHarness(t *testing.T, rule config.SecurityAlert) *harness {
	return newHarness(t, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32"}
		c.Security.FlushEvery = config.Duration(time.Minute) // the tests tick themselves
		c.Security.Alerts = []config.SecurityAlert{rule}
	})
}

// stuff sends n wrong credentials from addr with user agent ua: wrong
// Direct Line secrets, and every fifth a wrong token service secret.
func stuff(h *harness, addr, ua string, n int) {
	h.t.Helper()
	for i := range n {
		if i%5 == 4 {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"app-that-does-not-exist"}, "client_secret": {fmt.Sprintf("guess-%d", i)},
				"scope": {h.base + "/.default"}}
			req, _ := http.NewRequest("POST", h.base+botauth.STSTokenPath, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-For", addr)
			req.Header.Set("User-Agent", ua)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				h.t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 401 && res.StatusCode != 429 {
				h.t.Fatalf("token service with a wrong secret answered %d", res.StatusCode)
			}
			continue
		}
		r := h.do("POST", "/tokens/generate", fmt.Sprintf("wrong-secret-%d-%s", i, strings.Repeat("x", 40)), nil,
			hdr{"X-Forwarded-For": addr, "User-Agent": ua})
		if r.status != 403 {
			h.t.Fatalf("a wrong secret answered %d %s", r.status, r.raw)
		}
	}
}

func getReport(t *testing.T, h *harness, query string) (threat.Report, []byte) {
	t.Helper()
	r := h.do("GET", h.metrics+"/security/report?"+query, "", nil, nil)
	if r.status != 200 {
		t.Fatalf("GET /security/report?%s = %d %s", query, r.status, r.raw)
	}
	var rep threat.Report
	if err := json.Unmarshal(r.raw, &rep); err != nil {
		t.Fatalf("report: %v: %s", err, r.raw)
	}
	return rep, r.raw
}

var pseudonymRE = regexp.MustCompile(`^a_[0-9a-f]{16}$`)

// A credential-stuffing run from several addresses with curl and
// python-requests is reported top first, pseudonymized everywhere, and
// alerted once, to an HTTPS webhook with a valid signature; a second run
// in the same window does not alert again.
func TestCredentialStuffingReportedAndAlerted(t *testing.T) {
	rc := newWebhookReceiver(t, false)
	secretFile, secret := writeSecret(t)
	h := alertingHarness(t, config.SecurityAlert{Name: "stuffing", Threshold: 30, Window: config.Duration(10 * time.Minute), By: "client",
		WebhookURL: rc.srv.URL + "/parley", WebhookSecretFile: secretFile})
	h.srv.TrustWebhookRoots(rc.roots())
	const curl, python = "curl/8.5.0", "python-requests/2.31.0"
	raw := []string{"203.0.113.10", "203.0.113.11", "203.0.113.12", "198.51.100.7"}
	stuff(h, raw[0], curl, 40) // the top offender: over the threshold
	stuff(h, raw[1], curl, 20)
	stuff(h, raw[2], curl, 10)
	stuff(h, raw[3], python, 25)
	// And a missing credential (401) from the python client.
	if r := h.do("POST", "/tokens/generate", "", nil, hdr{"X-Forwarded-For": raw[3], "User-Agent": python}); r.status != 401 {
		t.Fatalf("no credential answered %d", r.status)
	}

	ctx := context.Background()
	h.srv.ThreatTick(ctx)
	rep, rawRep := getReport(t, h, "since=1h&top=10")
	if rep.Failures != 96 || len(rep.Offenders) != 4 {
		t.Fatalf("report: %d failures, %d offenders; want 96 and 4: %s", rep.Failures, len(rep.Offenders), rawRep)
	}
	want := []struct {
		n  int64
		ua string
	}{{40, "curl"}, {26, "python-requests"}, {20, "curl"}, {10, "curl"}}
	seen := map[string]bool{}
	for i, o := range rep.Offenders {
		if o.Failures != want[i].n || o.UserAgent != want[i].ua || o.Site != "" {
			t.Errorf("offender %d = %+v; want %d failures from %s, site unknown", i, o, want[i].n, want[i].ua)
		}
		if !pseudonymRE.MatchString(o.Client) || seen[o.Client] {
			t.Errorf("offender %d client = %q; want a distinct pseudonym a_<16 hex>", i, o.Client)
		}
		seen[o.Client] = true
	}
	top := rep.Offenders[0]
	if top.ByStatus["403"] != 32 || top.ByStatus["401"] != 8 || top.ByReason["invalid_credential"] != 32 || top.ByReason["unknown_client"] != 8 {
		t.Errorf("top offender by status %v, by reason %v; want 32 wrong Direct Line secrets (403) and 8 token service guesses (401)", top.ByStatus, top.ByReason)
	}
	if rep.Offenders[1].ByReason["missing_credential"] != 1 {
		t.Errorf("python offender reasons %v; want one missing_credential", rep.Offenders[1].ByReason)
	}
	// Each offender's failures over time (the console's chart): buckets
	// that add up to its total, in order, within the report's span.
	for _, o := range rep.Offenders {
		var sum int64
		for i, p := range o.Series {
			sum += p.Count
			if p.Minute.Before(rep.Since) || (i > 0 && !p.Minute.After(o.Series[i-1].Minute)) {
				t.Errorf("offender %s series %+v: out of order or before the report's start", o.Client, o.Series)
			}
		}
		if sum != o.Failures || len(o.Series) == 0 {
			t.Errorf("offender %s: series %+v adds up to %d; want its %d failures", o.Client, o.Series, sum, o.Failures)
		}
	}

	// The alert: once, for the top offender, signed.
	deadline := time.Now().Add(10 * time.Second)
	for len(rc.alerts()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := rc.alerts()
	if len(got) != 1 {
		t.Fatalf("webhook received %d alerts, want 1", len(got))
	}
	if err := threat.Verify(secret, got[0].body, got[0].sig, time.Now(), 5*time.Minute); err != nil {
		t.Fatalf("alert signature %q: %v", got[0].sig, err)
	}
	if err := threat.Verify([]byte("another secret of 32 bytes......"), got[0].body, got[0].sig, time.Now(), 5*time.Minute); err == nil {
		t.Fatal("the signature verifies under another secret")
	}
	var al threat.Alert
	if err := json.Unmarshal(got[0].body, &al); err != nil || al.Rule != "stuffing" || al.By != "client" || al.Client != top.Client || al.Count != 40 || al.Threshold != 30 {
		t.Fatalf("alert = %+v, %v; want rule stuffing for %s with 40 failures", al, err, top.Client)
	}
	if !strings.Contains(h.logs.String(), `"msg":"security alert: authentication failures over the threshold"`) ||
		!strings.Contains(h.logs.String(), `"client_pseudonym":"`+top.Client+`"`) {
		t.Fatalf("no pseudonymized alert log event")
	}

	// A second run in the same window: counted, not alerted again.
	stuff(h, raw[0], curl, 40)
	h.srv.ThreatTick(ctx)
	time.Sleep(300 * time.Millisecond)
	if n := len(rc.alerts()); n != 1 {
		t.Fatalf("after a second run in the same window the webhook received %d alerts, want still 1", n)
	}
	if rep, _ := getReport(t, h, "since=1h&top=1"); len(rep.Offenders) != 1 || rep.Offenders[0].Failures != 80 || rep.Offenders[0].Client != top.Client {
		t.Fatalf("after the second run the top offender is %+v; want %s with 80", rep.Offenders, top.Client)
	}
	if n := strings.Count(h.logs.String(), `"msg":"security alert:`); n != 1 {
		t.Fatalf("%d alert log events, want 1", n)
	}

	// Metrics: failures by reason, rate-limit refusals by surface.
	m := h.do("GET", h.metrics+"/metrics", "", nil, nil)
	for _, s := range []string{`parley_auth_failures_total{reason="invalid_credential",surface="directline"}`, `parley_auth_failures_total{reason="unknown_client",surface="token_service"}`,
		`parley_rate_limit_refusals_total{surface="directline"}`} {
		if !strings.Contains(string(m.raw), s) {
			t.Errorf("/metrics lacks %s", s)
		}
	}

	// Failures after the last flush are flushed at shutdown.
	stuff(h, raw[2], curl, 3)
	// A bot with a bad bearer token on the Bot Connector API counts too.
	if r := h.do("POST", h.base+"/v3/conversations/some-conv/activities", "not-a-jwt", map[string]any{"type": "message"}, hdr{"X-Forwarded-For": raw[2], "User-Agent": curl}); r.status != 401 {
		t.Fatalf("Bot Connector API with a bad token answered %d", r.status)
	}

	// The raw addresses appear nowhere: report, logs, the store's files.
	h.stop()
	st, err := sqlite.Open(ctx, filepath.Join(h.cfg.DataDir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	tot, err := st.AuthFailureTotals(ctx, time.Now().Add(-time.Hour), nil, 1, 0)
	byReason, _ := st.TopAuthFailures(ctx, time.Now().Add(-time.Hour), 10)
	_ = st.Close()
	if err != nil || len(tot) != 1 || tot[0].Count != 96+40+4 {
		t.Fatalf("stored after shutdown: %+v, %v; want %d failures (the last ones flushed at shutdown)", tot, err, 96+40+4)
	}
	connectorFailures := 0
	for _, c := range byReason {
		if c.Reason == "invalid_bot_token" && c.Status == 401 {
			connectorFailures += int(c.Count)
		}
	}
	if connectorFailures != 1 {
		t.Fatalf("stored rows %+v; want one invalid_bot_token 401", byReason)
	}
	files, _ := filepath.Glob(filepath.Join(h.cfg.DataDir, "parley.db*"))
	if len(files) == 0 {
		t.Fatal("no store files")
	}
	for _, a := range raw {
		if strings.Contains(string(rawRep), a) || strings.Contains(h.logs.String(), a) {
			t.Errorf("address %s appears in the report or the logs", a)
		}
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if strings.Contains(string(b), a) {
				t.Errorf("address %s appears in %s", a, f)
			}
		}
	}
}

// A webhook receiver that hangs does not slow requests down: alerts are
// sent from their own goroutine with a bounded queue.
func TestAlertWebhookDownDoesNotSlowRequests(t *testing.T) {
	rc := newWebhookReceiver(t, true)
	secretFile, _ := writeSecret(t)
	h := alertingHarness(t, config.SecurityAlert{Name: "any", Threshold: 1, Window: config.Duration(time.Minute), By: "client",
		WebhookURL: rc.srv.URL, WebhookSecretFile: secretFile})
	h.srv.TrustWebhookRoots(rc.roots())
	ctx := context.Background()
	for i := range 20 {
		stuff(h, fmt.Sprintf("203.0.113.%d", i+1), "curl/8", 1)
	}
	start := time.Now()
	h.srv.ThreatTick(ctx) // 20 alerts queued behind a receiver that never answers
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("checking the rules took %v with the receiver hanging", d)
	}
	start = time.Now()
	stuff(h, "203.0.113.99", "curl/8", 50)
	h.srv.ThreatTick(ctx)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("50 requests and a rule check took %v while the webhook hangs", d)
	}
}

// A webhook on a private or metadata address is refused at start unless
// it is https; when https, it is refused when dialed (SSRF guard).
func TestAlertWebhookConfigRefusesPlainHTTPOffLoopback(t *testing.T) {
	c := config.Default()
	c.PublicURL, c.InsecureHTTP, c.DataDir = "http://127.0.0.1:8080", true, t.TempDir()
	c.Security.Alerts = []config.SecurityAlert{{Name: "x", Threshold: 1, Window: config.Duration(time.Minute), By: "client",
		WebhookURL: "http://169.254.169.254/latest", WebhookSecretFile: "/dev/null"}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "security.alerts[0].webhook_url") {
		t.Fatalf("Validate = %v; want security.alerts[0].webhook_url refused", err)
	}
}

// Rate-limit refusals (429) are counted by surface, and in the report
// with reason rate_limited, next to the failures that caused them.
func TestRateLimitRefusalsCounted(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32"}
		c.Limits.Generate = config.SiteScoped{Address: "3/m burst 3", Site: config.Off}
	})
	for range 8 {
		h.do("POST", "/tokens/generate", "wrong-"+strings.Repeat("y", 40), nil, hdr{"X-Forwarded-For": "192.0.2.77", "User-Agent": "Go-http-client/1.1"})
	}
	h.srv.ThreatTick(context.Background())
	rep, raw := getReport(t, h, "since=15m")
	if len(rep.Offenders) != 1 {
		t.Fatalf("report: %s", raw)
	}
	o := rep.Offenders[0]
	if o.Failures != 8 || o.ByStatus["403"] != 3 || o.ByStatus["429"] != 5 || o.ByReason["rate_limited"] != 5 || o.UserAgent != threat.UAGo {
		t.Fatalf("offender = %+v; want 3 wrong secrets (403) then 5 refusals (429) from go-http-client", o)
	}
	m := h.do("GET", h.metrics+"/metrics", "", nil, nil)
	if !strings.Contains(string(m.raw), `parley_http_requests_total{route="POST /v3/directline/tokens/generate",status="429"} 5`) {
		t.Fatalf("/metrics lacks the route of the requests watched:\n%s", m.raw)
	}
	if !strings.Contains(string(m.raw), `parley_rate_limit_refusals_total{surface="directline"} 5`) {
		t.Fatalf("/metrics lacks 5 directline rate-limit refusals:\n%s", m.raw)
	}
	if strings.Contains(h.logs.String(), "192.0.2.77") || strings.Contains(string(raw), "192.0.2.77") {
		t.Fatal("the raw address appears in the logs or the report")
	}
	for _, q := range []string{"since=5s", "since=forever", "top=0", "top=100000"} {
		if r := h.do("GET", h.metrics+"/security/report?"+q, "", nil, nil); r.status != 400 || !strings.Contains(string(r.raw), "BadArgument") {
			t.Errorf("GET /security/report?%s = %d %s; want 400 BadArgument", q, r.status, r.raw)
		}
	}
}

// Without trusted proxies a client cannot choose its address with
// X-Forwarded-For: rotating the header does not split (or hide) its
// failures, which all count under its real address.
func TestForwardedForIgnoredWithoutTrustedProxies(t *testing.T) {
	h := newHarness(t)
	for i := range 12 {
		h.do("POST", "/tokens/generate", "wrong-"+strings.Repeat("z", 40), nil, hdr{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i), "User-Agent": "curl/8"})
	}
	h.srv.ThreatTick(context.Background())
	rep, raw := getReport(t, h, "")
	if len(rep.Offenders) != 1 || rep.Offenders[0].Failures != 12 || !pseudonymRE.MatchString(rep.Offenders[0].Client) {
		t.Fatalf("report = %s; want one offender (the TCP peer) with 12 failures", raw)
	}
}
