package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/adminapi"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/server"
	"github.com/parley-gw/parley/internal/store"
)

// sliceRecorder keeps the audit events in memory.
type sliceRecorder struct {
	mu     sync.Mutex
	events []audit.Event
	fail   error // when set, Record fails with it (a full disk)
}

func (r *sliceRecorder) Record(_ context.Context, e audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, e)
	return nil
}

func (r *sliceRecorder) all() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Event(nil), r.events...)
}

// Entries and Export make the recorder the audit routes' log.
func (r *sliceRecorder) Entries(_ context.Context, after int64, limit int) ([]audit.Entry, error) {
	out := []audit.Entry{}
	for i, e := range r.all() {
		if int64(i+1) > after && len(out) < limit {
			out = append(out, audit.Entry{Seq: int64(i + 1), Event: e})
		}
	}
	return out, nil
}

func (r *sliceRecorder) Export(ctx context.Context, w io.Writer, after int64, _ bool) error {
	es, _ := r.Entries(ctx, after, 1<<30)
	enc := json.NewEncoder(w)
	for _, e := range es {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}

// testAuth is the test-only authenticator: "Authorization: Bearer
// ROLE[:BOT][:reauth]" is a principal of ROLE, scoped to BOT when given,
// re-authenticated with ":reauth". Anything else is unauthenticated.
type testAuth struct{}

func (testAuth) Authenticate(r *http.Request) (admin.Principal, error) {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return admin.Principal{}, fmt.Errorf("no credential")
	}
	parts := strings.Split(v, ":")
	role, err := admin.ParseRole(parts[0])
	if err != nil {
		return admin.Principal{}, err
	}
	p := admin.Principal{Kind: admin.KindToken, ID: v, Name: v, Role: role}
	for _, x := range parts[1:] {
		switch x {
		case "reauth":
			p.SessionID = "reauth"
		case "":
		default:
			p.Bots = append(p.Bots, x)
		}
	}
	return p, nil
}

func (testAuth) Reauthenticated(p admin.Principal) bool { return p.SessionID == "reauth" }

// env is a real store, service and admin API on loopback, with two
// teams' objects: bot A's and bot B's site, conversation, dead letter
// and OAuth connection.
type env struct {
	t          *testing.T
	cfg        config.Config
	st         store.Store
	svc        *admin.Service
	rec        *sliceRecorder
	srv        *httptest.Server
	bot        map[string]string // "A", "B" -> bot id
	site, conv map[string]string
	dl         map[string]int64
	retiredKey string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.MasterKeyFile = filepath.Join(dir, "master.key")
	cfg.PublicURL = "https://chat.example.com"
	cfg.Bots.AllowPrivateNetworks = []string{"127.0.0.0/8"}
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &env{t: t, cfg: cfg, st: st, rec: &sliceRecorder{}, bot: map[string]string{}, site: map[string]string{}, conv: map[string]string{}, dl: map[string]int64{}}
	var once sync.Once
	var keys server.Keys
	var kerr error
	openKeys := func(ctx context.Context) (admin.KeyHandle, error) {
		once.Do(func() {
			keys, kerr = server.OpenKeys(ctx, cfg, st)
			if kerr == nil {
				t.Cleanup(func() { _ = keys.Close() })
			}
		})
		return admin.KeyHandle{Set: keys.Set, Envelope: keys.Envelope, Codec: keys.Codec}, kerr
	}
	e.svc = admin.NewService(admin.Deps{Store: st, Config: cfg, Recorder: e.rec, OpenKeys: openKeys,
		KeyList: keyring.NewKeySet(keyring.KeySetConfig{Store: st, Purposes: server.KeyPurposes(cfg, keyring.KEKPurpose(nil, nil))})})
	e.srv = httptest.NewServer(adminapi.New(adminapi.Config{Service: e.svc, Auth: testAuth{}, Recorder: e.rec, Audit: e.rec,
		AuditVerify: func(context.Context) (any, error) { return map[string]bool{"ok": true}, nil }}))
	t.Cleanup(e.srv.Close)
	now := time.Now().UTC()
	for _, team := range []string{"A", "B"} {
		b := store.Bot{ID: "bot-" + strings.ToLower(team), Name: "Bot " + team, Endpoint: "https://bot-" + team + ".example.com/api/messages", CreatedAt: now}
		b.SecretHashes[0] = botauth.HashClientSecret("client-secret-" + team)
		if err := st.CreateBot(ctx, b); err != nil {
			t.Fatal(err)
		}
		s := store.Site{ID: "site-" + strings.ToLower(team), BotID: b.ID, Name: "Site " + team, EnhancedAuth: true, TrustedOrigins: []string{}, CreatedAt: now, ClientAttachmentURLs: store.AttachmentURLsRefuse}
		s.SecretHashes[0] = identity.HashSecret("site-secret-" + team)
		if err := st.CreateSite(ctx, s); err != nil {
			t.Fatal(err)
		}
		conv := "conv-" + strings.ToLower(team)
		if _, err := st.CreateConversation(ctx, store.Conversation{ID: conv, BotID: b.ID, SiteID: s.ID, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		kh, err := openKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			aid := fmt.Sprintf("%s|%d", conv, i)
			if err := kh.Codec.Prepare(ctx, conv); err != nil {
				t.Fatal(err)
			}
			sealed, err := kh.Codec.EncodeOutbox(ctx, conv, []byte(`{"type":"message","text":"text of `+aid+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Append(ctx, conv, []store.NewRecord{{Build: func(seq int64) ([]byte, error) { return []byte(`{"type":"message"}`), nil }}},
				[]store.NewOutbox{{BotID: b.ID, Build: func([]int64) (string, []byte, error) { return aid, sealed, nil }}}); err != nil {
				t.Fatal(err)
			}
		}
		pending, err := st.PendingOutbox(ctx, conv)
		if err != nil || len(pending) != 2 {
			t.Fatalf("PendingOutbox = %v, %v", pending, err)
		}
		if err := st.DeadLetterOutbox(ctx, store.DeadLetter{OutboxItem: store.OutboxItem{ID: pending[0].ID, Attempts: 3}, LastAttemptAt: now, DeadAt: now, LastStatus: 400}); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateOAuthConnection(ctx, store.OAuthConnection{BotID: b.ID, Name: "conn", Kind: store.OAuthKindGitHub, ClientID: "client", SealedSecret: []byte("sealed"),
			MaxLogin: 24 * time.Hour, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		e.bot[team], e.site[team], e.conv[team], e.dl[team] = b.ID, s.ID, conv, pending[0].ID
	}
	return e
}

// withRetiredKey rotates log-pseudonym once, so a retired key exists.
func (e *env) withRetiredKey() {
	e.t.Helper()
	r, _, err := e.svc.RotateKeys(context.Background(), admin.Principal{Kind: admin.KindLocal, ID: "test", Role: admin.RoleOwner}, "log-pseudonym", keyring.RotateOptions{Force: true})
	if err != nil || len(r.Retired) == 0 {
		e.t.Fatalf("rotate: %+v, %v", r, err)
	}
	e.retiredKey = r.Retired[0]
}

type answer struct {
	status int
	body   []byte
	header http.Header
}

func (a answer) errCode() string {
	var eb admin.ErrorBody
	_ = json.Unmarshal(a.body, &eb)
	return eb.Error.Code
}

func (e *env) do(method, path, token, contentType string, body []byte) answer {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, b, resp.Header}
}

func (e *env) json(method, path, token string, body any) answer {
	e.t.Helper()
	if body == nil {
		return e.do(method, path, token, "", nil)
	}
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(method, path, token, "application/json", b)
}
