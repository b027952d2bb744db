package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

// lockedBuffer is an io.Writer safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// adminClient talks to the admin listener as the console does: cookie
// jar, X-CSRF-Token on writes, the listener's own Origin.
type adminClient struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func (a *adminClient) do(method, path string, body any, out any) int {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Origin", a.base)
	if a.csrf != "" && method != http.MethodGet {
		req.Header.Set("X-CSRF-Token", a.csrf)
	}
	res, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, b, err)
		}
	}
	return res.StatusCode
}

// The admin side as parley serve wires it (EnableAdmin): the bootstrap
// code printed once, the owner enrolling with TOTP through the admin API,
// a bot created in the console's way, and every step in the real audit
// log, whose chain verifies over the API. The pieces have their own
// tests with test recorders and authenticators; this one catches the
// wiring between them.
func TestAdminListenerWiredEndToEnd(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	mln, _ := net.Listen("tcp", "127.0.0.1:0")
	aln, _ := net.Listen("tcp", "127.0.0.1:0")
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Listen, cfg.PublicURL, cfg.DataDir, cfg.InsecureHTTP = ln.Addr().String(), "http://"+ln.Addr().String(), dir, true
	cfg.Metrics.Listen, cfg.Admin.Listen = mln.Addr().String(), aln.Addr().String()
	cfg.MasterKeyFile = dir + "/master.key"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs, announce := &lockedBuffer{}, &lockedBuffer{}
	ctx := context.Background()
	srv, err := server.New(ctx, cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.EnableAdmin(ctx, server.AdminOptions{Announce: announce}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, server.Listeners{Main: ln, Metrics: mln, Admin: aln}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	code := regexp.MustCompile(`pec_[A-Za-z0-9_-]{43}`).FindString(announce.String())
	if code == "" {
		t.Fatalf("no bootstrap code announced: %q", announce.String())
	}
	jar, _ := cookiejar.New(nil)
	a := &adminClient{t: t, base: "http://" + aln.Addr().String(), c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}

	// Nothing before sign-in.
	if st := a.do("GET", "/admin/v1/bots", nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("GET /bots before sign-in: %d", st)
	}
	var enr struct {
		EnrollmentID string `json:"enrollment_id"`
		Secret       string `json:"totp_secret"`
	}
	if st := a.do("POST", "/admin/v1/enroll", map[string]string{"code": code, "name": "olga", "password": "violet kettle marching sideways"}, &enr); st != 200 {
		t.Fatalf("enroll: %d", st)
	}
	otp, err := totp.GenerateCode(enr.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var sess struct {
		CSRF     string   `json:"csrf_token"`
		Recovery []string `json:"recovery_codes"`
		Operator struct{ ID, Role string }
	}
	if st := a.do("POST", "/admin/v1/enroll/totp", map[string]string{"enrollment_id": enr.EnrollmentID, "totp": otp}, &sess); st != 200 || sess.Operator.Role != "owner" {
		t.Fatalf("enroll/totp: %d %+v", st, sess)
	}
	a.csrf = sess.CSRF
	// A second use of the bootstrap code is refused.
	if st := (&adminClient{t: t, base: a.base, c: &http.Client{}}).do("POST", "/admin/v1/enroll", map[string]string{"code": code, "name": "mallory", "password": "another long passphrase here"}, nil); st != http.StatusUnauthorized {
		t.Fatalf("bootstrap code reused: %d", st)
	}

	// A write without the CSRF header is refused, with it accepted.
	noCSRF := &adminClient{t: t, base: a.base, c: a.c}
	if st := noCSRF.do("POST", "/admin/v1/bots", map[string]any{"name": "Support", "endpoint": "https://bot.example.com/api/messages"}, nil); st != http.StatusForbidden {
		t.Fatalf("POST /bots without X-CSRF-Token: %d", st)
	}
	var bot struct {
		ID, ClientSecret string
	}
	if st := a.do("POST", "/admin/v1/bots", map[string]any{"name": "Support", "endpoint": "https://bot.example.com/api/messages"}, &bot); st != http.StatusCreated || bot.ID == "" || bot.ClientSecret == "" {
		t.Fatalf("POST /bots: %d %+v", st, bot)
	}

	var entries []struct {
		Actor, Action, Target, Outcome string
	}
	if st := a.do("GET", "/admin/v1/audit?after=0&limit=100", nil, &entries); st != 200 {
		t.Fatalf("GET /audit: %d", st)
	}
	want := map[string]bool{"bots.write bot:" + bot.ID + " success": false}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action+"/"+e.Outcome)
		k := e.Action + " " + e.Target + " " + e.Outcome
		if _, ok := want[k]; ok && e.Actor == "operator:"+sess.Operator.ID {
			want[k] = true
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("audit log lacks %q by operator:%s; has %v", k, sess.Operator.ID, actions)
		}
	}
	if !strings.Contains(strings.Join(actions, " "), "enroll") {
		t.Errorf("audit log lacks the enrollment: %v", actions)
	}
	if !strings.Contains(strings.Join(actions, " "), "denied") && !strings.Contains(strings.Join(actions, " "), "failure") {
		t.Errorf("audit log lacks the refused reuse of the bootstrap code or the CSRF refusal: %v", actions)
	}
	var rep struct {
		OK      bool  `json:"ok"`
		Entries int64 `json:"entries"`
	}
	if st := a.do("GET", "/admin/v1/audit/verify", nil, &rep); st != 200 || !rep.OK || rep.Entries < 3 {
		t.Fatalf("GET /audit/verify: %d %+v", st, rep)
	}
	// Secrets never reach the logs.
	for _, s := range []string{code, "violet kettle", bot.ClientSecret, enr.Secret, sess.CSRF} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the log holds a secret (%.8s...)", s)
		}
	}
}
