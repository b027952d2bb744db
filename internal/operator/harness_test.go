package operator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/operator"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// memRecorder is a test double for internal/audit's Log (owned
// elsewhere): it keeps the events in order.
type memRecorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (m *memRecorder) Record(_ context.Context, e audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
	return nil
}

func (m *memRecorder) find(action string, outcome audit.Outcome) []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []audit.Event
	for _, e := range m.events {
		if e.Action == action && e.Outcome == outcome {
			out = append(out, e)
		}
	}
	return out
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t        *testing.T
	dir      string
	st       *sqlite.Store
	svc      *operator.Service
	srv      *httptest.Server
	rec      *memRecorder
	logs     *bytes.Buffer
	announce *bytes.Buffer
	clock    *clock
	settings config.Operators
	// httpClient talks to the SSO provider.
	httpClient *http.Client
	// secure: the service runs as on HTTPS (__Host- cookie).
	secure bool
	// secrets collects every secret the test saw, for the leak checks.
	secrets []string
}

// testSettings are the defaults with a cheaper argon2id (the defaults
// cost 46 MiB a hash).
func testSettings() config.Operators {
	s := config.DefaultOperators()
	s.Argon2 = config.Argon2{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}
	s.LoginRate = "1000/m burst 1000"
	return s
}

func newHarness(t *testing.T, mod ...func(*harness)) *harness {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	// The bots the tests scope operators to (a scope names registered bots).
	for _, id := range []string{"bot-a", "bot-b"} {
		if err := st.CreateBot(ctx, store.Bot{ID: id, Name: id, Endpoint: "https://" + id + ".example.com/api/messages", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	prov, err := keyring.NewLocalProvider(filepath.Join(dir, "keys"), bytes.Repeat([]byte{7}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	var env *keyring.Envelope
	ks := keyring.NewKeySet(keyring.KeySetConfig{Store: st, Purposes: []keyring.Purpose{keyring.KEKPurpose(prov,
		func(ctx context.Context, r keyring.Rotation) error { return env.AfterRotation(ctx, r) })}})
	if err := ks.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if env, err = keyring.NewEnvelope(ctx, keyring.EnvelopeConfig{Store: st, Keys: ks, Provider: prov, CacheSize: 16}); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: dir, st: st, rec: &memRecorder{}, logs: &bytes.Buffer{}, announce: &bytes.Buffer{},
		clock: &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}, settings: testSettings()}
	var handler http.Handler
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(h.srv.Close)
	for _, m := range mod {
		m(h)
	}
	h.svc, err = operator.New(operator.Config{Store: st, Sealer: env, Audit: h.rec, Settings: h.settings,
		Log:      slog.New(slog.NewTextHandler(&lockedWriter{w: h.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Announce: h.announce, Now: h.clock.Now, HTTPClient: h.httpClient, Secure: h.secure})
	if err != nil {
		t.Fatal(err)
	}
	handler = h.mux()
	return h
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// mux serves the package's handlers behind a tiny stand-in for the admin
// API's middleware: authenticate, check the route's action and
// re-authentication, then call.
func (h *harness) mux() http.Handler {
	handlers := h.svc.Handlers()
	mux := http.NewServeMux()
	for _, rt := range admin.Routes {
		key := rt.Method + " " + rt.Pattern
		hd, ok := handlers[key]
		if !ok {
			continue
		}
		mux.Handle(key, h.guarded(rt, hd))
	}
	return mux
}

func (h *harness) guarded(rt admin.Route, hd http.Handler) http.Handler {
	if rt.Public {
		return hd
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := h.svc.Authenticate(r)
		switch {
		case errors.Is(err, operator.ErrUnauthenticated):
			admin.WriteError(w, 401, admin.CodeUnauthenticated, "sign in")
			return
		case errors.Is(err, operator.ErrCSRF):
			admin.WriteError(w, 403, admin.CodeCSRF, "csrf")
			return
		case err != nil:
			admin.WriteError(w, 500, admin.CodeInternal, "internal")
			return
		}
		if !admin.Grants(p.Role, rt.Action) {
			admin.WriteError(w, 403, admin.CodeForbidden, "forbidden")
			return
		}
		if rt.Reauth && !h.svc.Reauthenticated(p) {
			admin.WriteError(w, 403, admin.CodeReauth, "reauth")
			return
		}
		hd.ServeHTTP(w, r.WithContext(admin.WithPrincipal(r.Context(), p)))
	})
}

// client is one browser or script: its cookie and CSRF token, or a
// bearer token.
type client struct {
	cookie string
	csrf   string
	bearer string
	origin string // sent as Origin when set
}

type resp struct {
	status int
	body   map[string]any
	raw    string
	header http.Header
}

func (r resp) code() string {
	if e, ok := r.body["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

func (h *harness) do(c *client, method, path string, body any) resp {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, h.srv.URL+admin.Prefix+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c != nil {
		if c.cookie != "" {
			req.AddCookie(&http.Cookie{Name: operator.CookieLoopback, Value: c.cookie})
		}
		if c.csrf != "" {
			req.Header.Set(operator.CSRFHeader, c.csrf)
		}
		if c.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+c.bearer)
		}
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, raw: string(b), header: res.Header}
	_ = json.Unmarshal(b, &out.body)
	if c != nil {
		for _, ck := range res.Cookies() {
			if ck.Name == operator.CookieLoopback {
				if ck.MaxAge < 0 {
					c.cookie = ""
				} else {
					c.cookie = ck.Value
					h.secrets = append(h.secrets, ck.Value)
				}
			}
		}
		if t, ok := out.body["csrfToken"].(string); ok && t != "" {
			c.csrf = t
			h.secrets = append(h.secrets, t)
		}
	}
	return out
}

func (h *harness) want(r resp, status int, code string) {
	h.t.Helper()
	if r.status != status || r.code() != code {
		h.t.Fatalf("got %d %s, want %d %q", r.status, r.raw, status, code)
	}
}

// totpCode is the authenticator's code for secret at the harness's time
// plus offset.
func (h *harness) totpCode(secret string, offset time.Duration) string {
	h.t.Helper()
	c, err := totp.GenerateCodeCustom(secret, h.clock.Now().Add(offset), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

var codeRE = regexp.MustCompile(`pec_[A-Za-z0-9_-]{43}`)

// bootstrapCode runs Bootstrap and reads the code from the announce
// stream.
func (h *harness) bootstrapCode() string {
	h.t.Helper()
	h.announce.Reset()
	code, err := h.svc.Bootstrap(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	printed := codeRE.FindAllString(h.announce.String(), -1)
	if code == "" || len(printed) != 1 || printed[0] != code {
		h.t.Fatalf("bootstrap printed %q (returned %q), want the one code once", h.announce.String(), code)
	}
	h.secrets = append(h.secrets, code)
	return code
}

// member is an enrolled operator: its credentials and browser.
type member struct {
	name, password, secret string
	recovery               []string
	c                      *client
	id                     string
}

// enroll enrolls name with code through the HTTP routes and returns the
// signed-in member.
func (h *harness) enroll(code, name, password string) *member {
	h.t.Helper()
	m := &member{name: name, password: password, c: &client{}}
	r := h.do(m.c, "POST", "/enroll", map[string]string{"code": code, "name": name, "password": password})
	h.want(r, 200, "")
	m.secret = r.body["totpSecret"].(string)
	uri := r.body["totpUri"].(string)
	if !strings.HasPrefix(uri, "otpauth://totp/") || !strings.Contains(uri, "secret="+m.secret) {
		h.t.Fatalf("totp_uri = %q", uri)
	}
	if qr, _ := r.body["qrPng"].(string); !strings.HasPrefix(qr, "data:image/png;base64,iVBOR") {
		h.t.Fatalf("qr_png = %.40q", qr)
	}
	h.secrets = append(h.secrets, password, m.secret, r.body["enrollmentId"].(string))
	r = h.do(m.c, "POST", "/enroll/totp", map[string]string{"enrollmentId": r.body["enrollmentId"].(string), "totp": h.totpCode(m.secret, 0)})
	h.want(r, 200, "")
	for _, c := range r.body["recoveryCodes"].([]any) {
		m.recovery = append(m.recovery, c.(string))
		h.secrets = append(h.secrets, c.(string))
	}
	if len(m.recovery) != 10 || m.c.cookie == "" || m.c.csrf == "" {
		h.t.Fatalf("enrollment answer: %s", r.raw)
	}
	m.id = r.body["operator"].(map[string]any)["id"].(string)
	return m
}

// login signs m in with a fresh TOTP code (the clock moves 30 s first so
// the code is not the one last used).
func (h *harness) login(m *member) resp {
	h.t.Helper()
	h.clock.Add(30 * time.Second)
	m.c = &client{}
	return h.do(m.c, "POST", "/session", map[string]string{"name": m.name, "password": m.password, "totp": h.totpCode(m.secret, 0)})
}

// reauth re-authenticates m's session.
func (h *harness) reauth(m *member) {
	h.t.Helper()
	h.clock.Add(30 * time.Second)
	h.want(h.do(m.c, "POST", "/session/reauth", map[string]string{"password": m.password, "totp": h.totpCode(m.secret, 0)}), 200, "")
}

// owner bootstraps and enrolls the first owner.
func (h *harness) owner() *member {
	h.t.Helper()
	return h.enroll(h.bootstrapCode(), "alice", "violet kettle marching sideways")
}

// invite has m invite role (bots) and enrolls name with the code.
func (h *harness) invite(m *member, role string, bots []string, name, password string) *member {
	h.t.Helper()
	body := map[string]any{"role": role}
	if bots != nil {
		body["bots"] = bots
	}
	r := h.do(m.c, "POST", "/operators", body)
	h.want(r, 200, "")
	code := r.body["code"].(string)
	h.secrets = append(h.secrets, code)
	return h.enroll(code, name, password)
}

func newRawRequest(url, contentType, body string) (*http.Request, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	return req, nil
}
