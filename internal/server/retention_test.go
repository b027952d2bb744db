package server_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

func fastSweeps(c *config.Config) { c.Retention.SweepEvery = config.Duration(time.Second) }

// wantNotFound checks the Direct Line error shape of a swept conversation.
func wantNotFound(t *testing.T, what string, r resp) {
	t.Helper()
	e, _ := r.body["error"].(map[string]any)
	if r.status != 404 || r.errCode() != "BadArgument" || e["message"] != "Conversation not found" {
		t.Errorf("%s: %d %s; want 404 BadArgument \"Conversation not found\"", what, r.status, r.raw)
	}
}

// A site that keeps conversations until they end: once the client ends
// one, the sweeper deletes it (data key included) and every use of its
// token answers a clean 404, starting it again included.
func TestSweptConversationAnswersNotFound(t *testing.T) {
	h := newHarness(t, fastSweeps)
	ctx := context.Background()
	if err := h.st.SetSiteRetention(ctx, h.site.ID, store.Retention{Mode: store.RetentionOnEnd}); err != nil {
		t.Fatal(err)
	}
	tok, conv, start := h.started("dl_alice")
	// The conversation's data key exists from its start (envelope
	// encryption); the sweep must destroy it.
	if _, err := h.st.GetDataKey(ctx, store.DataKeyScope(conv)); err != nil {
		t.Fatalf("data key of a started conversation: %v", err)
	}
	// A conversation of another user on the same site stays.
	otherTok, otherConv, _ := h.started("dl_bob")
	h.post(otherTok, otherConv, map[string]any{"type": "message", "from": map[string]any{"id": "dl_bob"}, "text": "keep me"})

	h.post(tok, conv, map[string]any{"type": "message", "from": map[string]any{"id": "dl_alice"}, "text": "secret text"})
	h.post(tok, conv, map[string]any{"type": "endOfConversation", "from": map[string]any{"id": "dl_alice"}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := h.st.GetConversation(ctx, conv); errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ended conversation was not swept")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := h.st.GetDataKey(ctx, store.DataKeyScope(conv)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("data key after the sweep: %v, want destroyed", err)
	}
	if recs, _ := h.st.Read(ctx, conv, -1, 100); len(recs) != 0 {
		t.Fatalf("%d records left after the sweep", len(recs))
	}
	wantNotFound(t, "history", h.do("GET", "/conversations/"+conv+"/activities", tok, nil, nil))
	wantNotFound(t, "post", h.do("POST", "/conversations/"+conv+"/activities", tok, map[string]any{"type": "message", "from": map[string]any{"id": "dl_alice"}, "text": "late"}, nil))
	wantNotFound(t, "reconnect", h.do("GET", "/conversations/"+conv+"?watermark=", tok, nil, nil))
	wantNotFound(t, "start again", h.do("POST", "/conversations", tok, `{"user":{}}`, nil))
	wantNotFound(t, "refresh", h.do("POST", "/tokens/refresh", tok, nil, nil))
	wantNotFound(t, "resume", h.do("POST", "/tokens/generate", h.secret, map[string]any{"user": map[string]string{"id": "dl_alice"}, "conversationId": conv}, nil))
	if su := start.str("streamUrl"); su != "" {
		if _, res, err := h.dial(su, trustedOrigin); err == nil || res == nil || res.StatusCode != 404 {
			t.Errorf("stream of a swept conversation: err %v, response %v; want 404", err, res)
		}
	}
	if recs, _ := h.st.Read(ctx, conv, -1, 100); len(recs) != 0 {
		t.Fatalf("the refused post left %d records", len(recs))
	}
	acts, _ := h.history(otherTok, otherConv, "")
	if !hasText("keep me")(acts) {
		t.Fatal("the other user's conversation lost its history")
	}
}

// Resuming later: the site's backend mints a token for the same user and
// the existing conversation; the client reconnects and reads the history.
// Another user, another site, and a made-up id are refused.
func TestResumeConversation(t *testing.T) {
	h := newHarness(t)
	tok, conv, _ := h.started("dl_alice")
	h.post(tok, conv, map[string]any{"type": "message", "from": map[string]any{"id": "dl_alice"}, "text": "echo:hello"})
	first, _ := h.history(tok, conv, "")
	if !hasText("bot heard hello")(first) {
		t.Fatalf("no bot reply before resuming: %v", texts(first))
	}

	// Days later (the token is long gone): the backend asks again.
	g := h.do("POST", "/tokens/generate", h.secret, map[string]any{"user": map[string]string{"id": "dl_alice"}, "conversationId": conv}, nil)
	if g.status != 200 || g.str("conversationId") != conv || g.str("token") == "" {
		t.Fatalf("resume generate: %d %s", g.status, g.raw)
	}
	// Web Chat's resume: GET the conversation with an empty watermark...
	rc := h.do("GET", "/conversations/"+conv+"?watermark=", g.str("token"), nil, hdr{"Origin": trustedOrigin})
	if rc.status != 200 || rc.str("conversationId") != conv || rc.str("streamUrl") == "" || rc.str("token") == "" {
		t.Fatalf("reconnect: %d %s", rc.status, rc.raw)
	}
	// ...then the history, from the start, over GET and over the stream.
	acts, _ := h.history(rc.str("token"), conv, "")
	if len(acts) != len(first) || !hasText("echo:hello")(acts) || !hasText("bot heard hello")(acts) {
		t.Fatalf("resumed history = %v, want %v", texts(acts), texts(first))
	}
	sc, _, err := h.dial(rc.str("streamUrl"), trustedOrigin)
	if err != nil {
		t.Fatal(err)
	}
	sc.collect(5*time.Second, hasText("bot heard hello"))
	// The conversation goes on.
	h.post(rc.str("token"), conv, map[string]any{"type": "message", "from": map[string]any{"id": "dl_alice"}, "text": "echo:again"})
	sc.collect(5*time.Second, hasText("bot heard again"))

	// Refused: another user, an unknown or malformed id, another site's
	// conversation, a token instead of the secret.
	bad := func(what string, status int, auth string, body map[string]any) {
		t.Helper()
		r := h.do("POST", "/tokens/generate", auth, body, nil)
		if r.status != status || r.str("token") != "" {
			t.Errorf("%s: %d %s; want %d and no token", what, r.status, r.raw, status)
		}
	}
	bad("another user", 403, h.secret, map[string]any{"user": map[string]string{"id": "dl_mallory"}, "conversationId": conv})
	bad("no user", 400, h.secret, map[string]any{"conversationId": conv})
	bad("unknown conversation", 404, h.secret, map[string]any{"user": map[string]string{"id": "dl_alice"}, "conversationId": "AAAAAAAAAAAAAAAAAAAAAA"})
	bad("malformed id", 400, h.secret, map[string]any{"user": map[string]string{"id": "dl_alice"}, "conversationId": "../x"})
	bad("a token instead of the secret", 403, tok, map[string]any{"user": map[string]string{"id": "dl_alice"}, "conversationId": conv})
	_, otherSecret, _ := provisionSite2(t, h)
	bad("another site's secret", 404, otherSecret, map[string]any{"user": map[string]string{"id": "dl_alice"}, "conversationId": conv})
}

// provisionSite2 adds a second bot and site to the harness's store.
func provisionSite2(t *testing.T, h *harness) (store.Site, string, string) {
	t.Helper()
	return provision(t, h.st, "bot-b", h.botRec.url, true, []string{trustedOrigin})
}

// Erasure by another process (parley erase while the server runs): the
// server refuses new activities at once and answers 404 for everything
// else within store.ConversationCacheTTL.
func TestEraseByAnotherProcess(t *testing.T) {
	h := newHarness(t)
	tok, conv, _ := h.started("dl_alice")
	h.post(tok, conv, map[string]any{"type": "message", "from": map[string]any{"id": "dl_alice"}, "text": "hello"})
	h.history(tok, conv, "") // the server has the conversation cached now
	other, err := sqlite.Open(context.Background(), filepath.Join(h.cfg.DataDir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := other.DeleteConversation(context.Background(), conv, time.Now())
	_ = other.Close()
	if err != nil || e.Activities < 1 {
		t.Fatalf("erase: %+v, %v", e, err)
	}
	wantNotFound(t, "post right after", h.do("POST", "/conversations/"+conv+"/activities", tok, map[string]any{"type": "message", "from": map[string]any{"id": "dl_alice"}, "text": "late"}, nil))
	deadline := time.Now().Add(store.ConversationCacheTTL + 2*time.Second)
	for {
		r := h.do("GET", "/conversations/"+conv+"/activities", tok, nil, nil)
		if r.status == 404 {
			wantNotFound(t, "history", r)
			break
		}
		if r.status != 200 || bytes.Contains(r.raw, []byte("hello")) {
			t.Fatalf("history after erasure: %d %s (content must be gone at once)", r.status, r.raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("history still answers %d %s after the cache bound", r.status, r.raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A conversation started without a bound user (enhanced authentication
// off) is resumed by a request that names no user; naming one is refused.
func TestResumeUnboundConversation(t *testing.T) {
	h := newHarness(t)
	_, secret, _ := provision(t, h.st, "bot-open", h.botRec.url, false, []string{trustedOrigin})
	g := h.do("POST", "/tokens/generate", secret, nil, nil)
	start := h.do("POST", "/conversations", g.str("token"), `{"user":{}}`, nil)
	conv := start.str("conversationId")
	if start.status != 201 || conv == "" {
		t.Fatalf("start: %d %s", start.status, start.raw)
	}
	h.post(start.str("token"), conv, map[string]any{"type": "message", "from": map[string]any{"id": "visitor"}, "text": "echo:hi"})
	if r := h.do("POST", "/tokens/generate", secret, map[string]any{"user": map[string]string{"id": "visitor"}, "conversationId": conv}, nil); r.status != 403 {
		t.Errorf("resume naming a user the conversation is not bound to: %d %s, want 403", r.status, r.raw)
	}
	r := h.do("POST", "/tokens/generate", secret, map[string]any{"conversationId": conv}, nil)
	if r.status != 200 || r.str("conversationId") != conv {
		t.Fatalf("resume: %d %s", r.status, r.raw)
	}
	acts, _ := h.history(r.str("token"), conv, "")
	if !hasText("echo:hi")(acts) {
		t.Fatalf("resumed history = %v", texts(acts))
	}
}
