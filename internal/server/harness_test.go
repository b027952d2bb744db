package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/server"
	"github.com/parley-gw/parley/internal/store"
)

const trustedOrigin = "https://app.example"

// syncBuffer collects the server's logs for the no-secrets-in-logs checks.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testBot is a real HTTP bot: it records what Parley delivers and answers
// messages through the Bot Connector API, like a Bot Framework bot would.
type testBot struct {
	t   *testing.T
	srv *http.Server
	url string

	mu       sync.Mutex
	received []map[string]any
	// fail, when set, decides the HTTP status for a delivery (0 = normal).
	fail func(act map[string]any) int
}

func newTestBot(t *testing.T) *testBot {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &testBot{t: t, url: "http://" + ln.Addr().String() + "/api/messages"}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(func() { _ = b.srv.Close() })
	return b
}

func (b *testBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var act map[string]any
	if err := json.NewDecoder(r.Body).Decode(&act); err != nil {
		http.Error(w, "bad json", 400)
		return
	}
	b.mu.Lock()
	b.received = append(b.received, act)
	fail := b.fail
	b.mu.Unlock()
	if fail != nil {
		if code := fail(act); code != 0 {
			w.WriteHeader(code)
			return
		}
	}
	if act["type"] == "message" {
		text, _ := act["text"].(string)
		if strings.HasPrefix(text, "echo:") {
			conv := act["conversation"].(map[string]any)["id"].(string)
			reply := map[string]any{"type": "message", "text": "bot heard " + strings.TrimPrefix(text, "echo:"), "from": act["recipient"]}
			svc := act["serviceUrl"].(string)
			u := svc + "v3/conversations/" + url.PathEscape(conv) + "/activities/" + url.PathEscape(act["id"].(string))
			body, _ := json.Marshal(reply)
			resp, err := http.Post(u, "application/json", bytes.NewReader(body))
			if err != nil || resp.StatusCode != 200 {
				b.t.Errorf("bot reply failed: %v %v", err, resp)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
	}
	w.WriteHeader(200)
}

func (b *testBot) all() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]map[string]any(nil), b.received...)
}

// waitFor polls the bot's inbox until pred holds.
func (b *testBot) waitFor(t *testing.T, what string, pred func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, a := range b.all() {
			if pred(a) {
				return a
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("bot never received %s; got %d activities", what, len(b.all()))
	return nil
}

type harness struct {
	t       *testing.T
	base    string // http://127.0.0.1:port
	metrics string // the metrics listener: http://127.0.0.1:port
	dl      string // base + /v3/directline
	secret  string
	secret2 string
	site    store.Site
	botRec  *testBot
	logs    *syncBuffer
	cfg     config.Config
	issuer  *identity.Issuer
	st      store.Store
	stop    func()
	srv     *server.Server
}

type harnessOpt func(*config.Config)

func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Listen, cfg.PublicURL, cfg.DataDir, cfg.InsecureHTTP = ln.Addr().String(), base, dir, true
	cfg.Metrics.Listen = mln.Addr().String()
	cfg.MasterKeyFile = dir + "/master.key"
	cfg.DirectLine.BotWait = config.Duration(3 * time.Second)
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	srv, err := server.New(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	bot := newTestBot(t)
	h := &harness{t: t, base: base, metrics: "http://" + mln.Addr().String(), dl: base + "/v3/directline", botRec: bot, logs: logs, cfg: cfg}
	h.site, h.secret, h.secret2 = provision(t, srv.Store(), "bot-a", bot.url, true, []string{trustedOrigin})
	h.st, h.srv = srv.Store(), srv
	master, err := keyring.LoadOrCreateFile(cfg.MasterKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := keyring.New(master)
	if h.issuer, err = identity.NewIssuer(ctx, srv.Store(), kr, base); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, server.Listeners{Main: ln, Metrics: mln}) }()
	h.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Cleanup(h.stop)
	return h
}

// provision registers an insecure (loopback) bot and a site with two secrets.
func provision(t testing.TB, st store.Store, botID, endpoint string, enhanced bool, origins []string) (store.Site, string, string) {
	t.Helper()
	if err := st.CreateBot(context.Background(), store.Bot{ID: botID, Name: "Bot " + botID, Endpoint: endpoint, InsecureNoAuth: true, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return createSite(t, st, botID, enhanced, origins)
}

// provisionSite adds an enhanced-auth site for an existing bot.
func provisionSite(t *testing.T, st store.Store, botID string) (store.Site, string, string) {
	t.Helper()
	return createSite(t, st, botID, true, []string{trustedOrigin})
}

func createSite(t testing.TB, st store.Store, botID string, enhanced bool, origins []string) (store.Site, string, string) {
	t.Helper()
	s1, _ := identity.NewSecret()
	s2, _ := identity.NewSecret()
	site := store.Site{ID: "site-" + botID, BotID: botID, Name: "web", EnhancedAuth: enhanced, TrustedOrigins: origins, CreatedAt: time.Now(),
		SecretHashes: [2][]byte{identity.HashSecret(s1), identity.HashSecret(s2)}}
	if err := st.CreateSite(context.Background(), site); err != nil {
		t.Fatal(err)
	}
	return site, s1, s2
}

type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r resp) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r resp) str(k string) string { s, _ := r.body[k].(string); return s }

type hdr map[string]string

// do sends a request; body may be nil, a string, []byte or anything JSON.
func (h *harness) do(method, path, auth string, body any, headers hdr) resp {
	h.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case []byte:
		rd, ct = bytes.NewReader(b), "application/json"
	default:
		j, _ := json.Marshal(b)
		rd, ct = bytes.NewReader(j), "application/json"
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = h.dl + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	if res.StatusCode >= 500 && res.StatusCode != 502 {
		h.t.Errorf("%s %s answered %d: %s", method, path, res.StatusCode, raw)
	}
	return r
}

// generate returns a token for a fresh conversation bound to user.
func (h *harness) generate(user string) (token, conv string) {
	h.t.Helper()
	r := h.do("POST", "/tokens/generate", h.secret, map[string]any{"user": map[string]string{"id": user}}, nil)
	if r.status != 200 {
		h.t.Fatalf("generate: %d %s", r.status, r.raw)
	}
	return r.str("token"), r.str("conversationId")
}

// started generates and starts a conversation, returning the start answer.
func (h *harness) started(user string) (token, conv string, start resp) {
	h.t.Helper()
	tok, conv := h.generate(user)
	start = h.do("POST", "/conversations", tok, `{"user":{}}`, nil)
	if start.status != 201 {
		h.t.Fatalf("start: %d %s", start.status, start.raw)
	}
	return start.str("token"), conv, start
}

// post sends a message and expects 200.
func (h *harness) post(tok, conv string, act map[string]any) string {
	h.t.Helper()
	r := h.do("POST", "/conversations/"+conv+"/activities", tok, act, nil)
	if r.status != 200 || r.str("id") == "" {
		h.t.Fatalf("post: %d %s", r.status, r.raw)
	}
	return r.str("id")
}

// history returns the GET activities answer.
func (h *harness) history(tok, conv, wm string) ([]map[string]any, string) {
	h.t.Helper()
	r := h.do("GET", "/conversations/"+conv+"/activities?watermark="+wm, tok, nil, nil)
	if r.status != 200 {
		h.t.Fatalf("history: %d %s", r.status, r.raw)
	}
	var acts []map[string]any
	for _, a := range r.body["activities"].([]any) {
		acts = append(acts, a.(map[string]any))
	}
	return acts, r.str("watermark")
}

// frame is one ActivitySet from the stream.
type frame struct {
	Activities []map[string]any `json:"activities"`
	Watermark  *string          `json:"watermark"`
}

type streamConn struct {
	t  *testing.T
	ws *websocket.Conn
}

func (h *harness) dial(streamURL, origin string) (*streamConn, *http.Response, error) {
	opts := &websocket.DialOptions{HTTPHeader: http.Header{}}
	if origin != "" {
		opts.HTTPHeader.Set("Origin", origin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, res, err := websocket.Dial(ctx, streamURL, opts)
	if err != nil {
		return nil, res, err
	}
	h.t.Cleanup(func() { ws.CloseNow() })
	return &streamConn{t: h.t, ws: ws}, res, nil
}

// next reads frames until one with activities arrives.
func (s *streamConn) next(timeout time.Duration) (frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		typ, data, err := s.ws.Read(ctx)
		if err != nil {
			return frame{}, err
		}
		if typ != websocket.MessageText {
			return frame{}, fmt.Errorf("binary frame on stream")
		}
		if len(data) == 0 {
			continue // keep-alive
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil || f.Activities == nil {
			return frame{}, fmt.Errorf("frame is not an ActivitySet: %s", data)
		}
		return f, nil
	}
}

// collect reads activities until pred holds or the timeout passes.
func (s *streamConn) collect(timeout time.Duration, pred func([]map[string]any) bool) []map[string]any {
	s.t.Helper()
	var got []map[string]any
	deadline := time.Now().Add(timeout)
	for !pred(got) {
		left := time.Until(deadline)
		if left <= 0 {
			s.t.Fatalf("stream: condition not met; got %d activities: %v", len(got), texts(got))
		}
		f, err := s.next(left)
		if err != nil {
			s.t.Fatalf("stream read: %v (got %v)", err, texts(got))
		}
		got = append(got, f.Activities...)
	}
	return got
}

func texts(acts []map[string]any) []string {
	var out []string
	for _, a := range acts {
		t, _ := a["text"].(string)
		out = append(out, fmt.Sprintf("%v:%s", a["type"], t))
	}
	return out
}

func hasText(text string) func([]map[string]any) bool {
	return func(acts []map[string]any) bool {
		for _, a := range acts {
			if a["text"] == text {
				return true
			}
		}
		return false
	}
}

func fromID(a map[string]any) string {
	f, _ := a["from"].(map[string]any)
	id, _ := f["id"].(string)
	return id
}

type configT = config.Config

func durationT(d time.Duration) config.Duration { return config.Duration(d) }

func decodeSeg(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// expiredToken mints, with the server's own key, a genuine token for conv
// that expired two minutes ago.
func expiredToken(t *testing.T, h *harness, conv string) string {
	t.Helper()
	tok, _, err := h.issuer.Issue(identity.Claims{Scope: identity.ScopeConversation, Bot: h.site.BotID, Site: h.site.ID, Conv: conv, User: "dl_alice"}, -2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
