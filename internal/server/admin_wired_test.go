package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

// adminClient talks to the admin listener: a cookie jar for the console
// session and its CSRF token, or a bearer token.
type adminClient struct {
	t      *testing.T
	base   string
	c      *http.Client
	csrf   string
	bearer string
}

func (a *adminClient) do(method, path string, body any) (int, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+admin.Prefix+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.csrf != "" && method != "GET" {
		req.Header.Set("X-CSRF-Token", a.csrf)
	}
	if a.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+a.bearer)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrollOwner enrolls the owner alice on the admin listener at base with
// the bootstrap code: password, then the first TOTP code. It returns her
// client (a cookie session, its CSRF token not yet set), her TOTP secret
// and the session's CSRF token.
func enrollOwner(t *testing.T, base, bootstrap string) (owner *adminClient, totpSecret, csrf string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	owner = &adminClient{t: t, base: base, c: &http.Client{Jar: jar}}
	st, body := owner.do("POST", "/enroll", map[string]any{"code": bootstrap, "name": "alice", "password": "violet-harbor-tangent-47"})
	if st != 200 {
		t.Fatalf("enroll: %d %s", st, body)
	}
	var en struct {
		EnrollmentID string `json:"enrollmentId"`
		TOTPSecret   string `json:"totpSecret"`
	}
	_ = json.Unmarshal(body, &en)
	st, body = owner.do("POST", "/enroll/totp", map[string]any{"enrollmentId": en.EnrollmentID, "totp": code(t, en.TOTPSecret, time.Now())})
	if st != 200 {
		t.Fatalf("enroll/totp: %d %s", st, body)
	}
	var sess struct {
		CSRF string `json:"csrfToken"`
	}
	_ = json.Unmarshal(body, &sess)
	return owner, en.TOTPSecret, sess.CSRF
}

// The wired admin side (EnableAdmin): the owner enrolls with the
// bootstrap code and TOTP, works through the console session (CSRF
// enforced), makes a scoped operator token; the token is held to its
// role and bot scope by the real authenticator and the service layer;
// every step lands in the audit log, which verifies.
func TestAdminWiredEndToEnd(t *testing.T) {
	logs := &syncBuffer{}
	var announce bytes.Buffer
	as := startAdminServer(t, slog.New(slog.NewJSONHandler(logs, nil)), func(srv *server.Server) error {
		return srv.EnableAdmin(context.Background(), server.AdminOptions{Announce: &announce})
	})
	bootstrap := regexp.MustCompile(`pec_[A-Za-z0-9_-]+`).FindString(announce.String())
	if bootstrap == "" {
		t.Fatalf("no bootstrap code announced: %q", announce.String())
	}
	// Enroll the owner: code, password, first TOTP code.
	owner, totpSecret, csrf := enrollOwner(t, as.adminBase, bootstrap)
	// The bootstrap code is single use.
	if st, body := (&adminClient{t: t, base: owner.base, c: &http.Client{}}).do("POST", "/enroll", map[string]any{"code": bootstrap, "name": "mallory", "password": "another-long-passphrase-91"}); st != 401 {
		t.Fatalf("bootstrap code used twice: %d %s", st, body)
	}

	// CSRF: the cookie alone does not change anything.
	if st, body := owner.do("POST", "/bots", map[string]any{"name": "A", "endpoint": "http://127.0.0.1:9/a", "insecureNoAuth": true}); st != 403 || !strings.Contains(string(body), admin.CodeCSRF) {
		t.Fatalf("POST without X-CSRF-Token: %d %s", st, body)
	}
	owner.csrf = csrf
	ids := map[string]string{}
	for _, name := range []string{"A", "B"} {
		st, body := owner.do("POST", "/bots", map[string]any{"name": "Bot " + name, "endpoint": "http://127.0.0.1:9/" + name, "insecureNoAuth": true})
		if st != 201 {
			t.Fatalf("create bot %s: %d %s", name, st, body)
		}
		var b admin.Bot
		_ = json.Unmarshal(body, &b)
		ids[name] = b.ID
		st, body = owner.do("POST", "/sites", map[string]any{"bot": b.ID, "name": "web"})
		if st != 201 {
			t.Fatalf("create site %s: %d %s", name, st, body)
		}
		var s admin.Site
		_ = json.Unmarshal(body, &s)
		ids["site"+name] = s.ID
	}

	// A token for an operator scoped to bot A.
	st, body := owner.do("POST", "/tokens", map[string]any{"name": "team-a", "role": "operator", "bots": []string{ids["A"]}, "expiresInDays": 1})
	if st != 201 {
		t.Fatalf("create token: %d %s", st, body)
	}
	var tok struct {
		Token string `json:"token"`
	}
	_ = json.Unmarshal(body, &tok)
	op := &adminClient{t: t, base: owner.base, c: &http.Client{}, bearer: tok.Token}

	if st, body := op.do("GET", "/bots", nil); st != 200 || !strings.Contains(string(body), ids["A"]) || strings.Contains(string(body), ids["B"]) {
		t.Errorf("operator@A lists bots: %d %s", st, body)
	}
	for _, c := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"GET", "/sites/" + ids["siteB"], nil, 404},
		{"PUT", "/sites/" + ids["siteB"] + "/origins", map[string]any{"origins": []string{"https://evil.example"}}, 404},
		{"PUT", "/sites/" + ids["siteA"] + "/origins", map[string]any{"origins": []string{"https://www.example.com"}}, 200},
		{"GET", "/keys", nil, 403},
		{"GET", "/audit", nil, 403},
		{"GET", "/operators", nil, 403},
		{"POST", "/bots", map[string]any{"name": "Mine", "endpoint": "http://127.0.0.1:9/m", "insecureNoAuth": true}, 403},
	} {
		if st, body := op.do(c.method, c.path, c.body); st != c.status {
			t.Errorf("operator@A %s %s: %d %s, want %d", c.method, c.path, st, body, c.status)
		}
	}
	// Key destruction needs a re-authenticated session: a fresh sign-in is not enough.
	if st, body := owner.do("POST", "/keys/some-key/destroy", map[string]any{"confirm": true}); st != 403 || !strings.Contains(string(body), admin.CodeReauth) {
		t.Errorf("destroy without reauth: %d %s", st, body)
	}

	// Everything is in the audit log, and it verifies.
	st, body = owner.do("GET", "/audit?limit=1000", nil)
	if st != 200 {
		t.Fatalf("audit: %d %s", st, body)
	}
	for _, want := range []string{`"outcome":"denied"`, `"action":"sites.origins"`, `"target":"site:` + ids["siteA"], `"action":"bots.write"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	if strings.Contains(string(body), tok.Token) || strings.Contains(string(body), "violet-harbor") {
		t.Error("a token or password in the audit log")
	}
	st, body = owner.do("GET", "/audit/verify", nil)
	if st != 200 || !strings.Contains(string(body), `"ok":true`) {
		t.Errorf("audit verify: %d %s", st, body)
	}
	// No code, password, token or TOTP secret in the server's log.
	for _, secret := range []string{bootstrap, "violet-harbor", tok.Token, totpSecret, csrf} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds a secret (%.10s...)", secret)
		}
	}
}

// operators.request_rate, wired: each credential (the console session,
// each API token) has the rate, and an operator's credentials together
// three times it, so minting tokens does not multiply it and one leaked
// token cannot lock its creator out. Past it every request answers 429
// with Retry-After before anything is written (no token.use, no
// session.csrf entry, even on the sign-out route); signing out with the
// CSRF token still works.
func TestAdminRequestRateWired(t *testing.T) {
	const burst = 8 // per credential; the operator's is 24
	var announce bytes.Buffer
	as := startAdminServer(t, slog.New(slog.DiscardHandler), func(srv *server.Server) error {
		return srv.EnableAdmin(context.Background(), server.AdminOptions{Announce: &announce})
	}, func(c *config.Config) { c.Operators.RequestRate = "1/h burst 8" })
	bootstrap := regexp.MustCompile(`pec_[A-Za-z0-9_-]+`).FindString(announce.String())
	owner, _, csrf := enrollOwner(t, as.adminBase, bootstrap)
	owner.csrf = csrf
	ctx := context.Background()
	tokens := makeTokens(t, owner, "admin", "ci-1", "ci-2", "ci-3") // the session's 3 of 8, the operator's 3 of 24
	writes := func(clients ...*adminClient) int {
		t.Helper()
		served := 0
		for i := range 10 * burst {
			st, body := clients[i%len(clients)].do("POST", "/bots", map[string]any{"name": fmt.Sprintf("bot %d", i+100*len(clients)), "endpoint": "https://bot.example.com/api/messages"})
			if st == http.StatusTooManyRequests {
				return served
			}
			if st != 201 {
				t.Fatalf("POST /bots with a token: %d %s", st, body)
			}
			served++
		}
		t.Fatal("no 429")
		return 0
	}
	// One token spends its own allowance, not its creator's.
	if n := writes(tokens[0]); n != burst {
		t.Fatalf("one token: %d writes before a 429, want %d", n, burst)
	}
	if st, body := owner.do("GET", "/bots", nil); st != 200 {
		t.Fatalf("the owner's console after one token's burst: %d %s", st, body)
	}
	// The other tokens share what is left of the operator's 24: 24 - 3 - 8 - 1.
	if n := writes(tokens[1], tokens[2]); n != 3*burst-12 {
		t.Fatalf("two more tokens: %d writes before a 429, want %d (the operator's allowance left)", n, 3*burst-12)
	}
	head, err := as.srv.Store().AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Past the limit nothing is written: token writes, the session's
	// reads, a write without X-CSRF-Token, and the sign-out route with a
	// token or without the CSRF token all answer 429.
	noCSRF := &adminClient{t: t, base: owner.base, c: owner.c}
	for _, c := range []struct {
		who          string
		client       *adminClient
		method, path string
		body         any
	}{
		{"a token's write", tokens[1], "POST", "/bots", map[string]any{"name": "late", "endpoint": "https://bot.example.com/api/messages"}},
		{"the session's read", owner, "GET", "/bots", nil},
		{"the session's write without X-CSRF-Token", noCSRF, "POST", "/bots", map[string]any{"name": "late", "endpoint": "https://bot.example.com/api/messages"}},
		{"the sign-out route with a token", tokens[2], "DELETE", "/session", nil},
		{"the sign-out route without X-CSRF-Token", noCSRF, "DELETE", "/session", nil},
	} {
		var rd io.Reader
		if c.body != nil {
			b, _ := json.Marshal(c.body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(c.method, owner.base+admin.Prefix+c.path, rd)
		if c.body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.client.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+c.client.bearer)
		}
		if c.client.csrf != "" && c.method != "GET" {
			req.Header.Set("X-CSRF-Token", c.client.csrf)
		}
		for range 3 {
			resp, err := c.client.c.Do(req.Clone(ctx))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "operators.request_rate") {
				t.Errorf("%s past the limit: %d %s (Retry-After %q), want 429 naming operators.request_rate", c.who, resp.StatusCode, body, resp.Header.Get("Retry-After"))
			}
			if c.body != nil {
				b, _ := json.Marshal(c.body)
				req.Body = io.NopCloser(bytes.NewReader(b))
			}
		}
	}
	if now, err := as.srv.Store().AuditHead(ctx); err != nil || now.Seq != head.Seq {
		t.Errorf("refused requests wrote %d audit entries (%v), want none", now.Seq-head.Seq, err)
	}
	// Each refusal is counted: the two bursts' last requests and 5 x 3.
	resp, err := http.Get(as.metricsBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "\nparley_admin_rate_limited_total 17\n") {
		t.Errorf("parley_admin_rate_limited_total is not 17:\n%s", regexp.MustCompile(`(?m)^parley_admin.*$`).FindAllString(string(metrics), -1))
	}
	// Signing out (with the CSRF token) is never refused.
	if st, body := owner.do("DELETE", "/session", nil); st/100 != 2 {
		t.Errorf("sign-out past the limit: %d %s", st, body)
	}
}

// The audit-read limit counts an operator's API tokens together: a second
// token does not bring a second burst of 30 reads.
func TestAuditReadLimitPerOperatorWired(t *testing.T) {
	const auditReadBurst = 30 // adminapi/audit.go
	var announce bytes.Buffer
	as := startAdminServer(t, slog.New(slog.DiscardHandler), func(srv *server.Server) error {
		return srv.EnableAdmin(context.Background(), server.AdminOptions{Announce: &announce})
	})
	bootstrap := regexp.MustCompile(`pec_[A-Za-z0-9_-]+`).FindString(announce.String())
	owner, _, csrf := enrollOwner(t, as.adminBase, bootstrap)
	owner.csrf = csrf
	tokens := makeTokens(t, owner, "auditor", "audit-1", "audit-2")
	began := time.Now()
	served := 0
	for i := range 3 * auditReadBurst {
		st, body := tokens[i%2].do("GET", "/audit?limit=1", nil)
		if st == http.StatusTooManyRequests {
			break
		}
		if st != 200 {
			t.Fatalf("GET /audit: %d %s", st, body)
		}
		served++
	}
	// Refilled at 1 a second meanwhile: allow what a slow run gets back.
	if slack := int(time.Since(began).Seconds()) + 1; served < auditReadBurst || served > auditReadBurst+slack {
		t.Fatalf("two tokens of one operator read the audit log %d times before a 429, want %d (+%d refilled)", served, auditReadBurst, slack)
	}
}

// makeTokens has owner make one API token of role per name (a day's
// lifetime) and returns a client for each.
func makeTokens(t *testing.T, owner *adminClient, role string, names ...string) []*adminClient {
	t.Helper()
	var tokens []*adminClient
	for _, name := range names {
		st, body := owner.do("POST", "/tokens", map[string]any{"name": name, "role": role, "expiresInDays": 1})
		if st != 201 {
			t.Fatalf("create token %s: %d %s", name, st, body)
		}
		var tok struct {
			Token string `json:"token"`
		}
		_ = json.Unmarshal(body, &tok)
		tokens = append(tokens, &adminClient{t: t, base: owner.base, c: &http.Client{}, bearer: tok.Token})
	}
	return tokens
}
