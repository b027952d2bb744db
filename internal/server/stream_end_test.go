package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/config"
)

// readClose reads s until the server closes it, returning the close
// status and reason; it fails the test if the stream stays open for wait.
func readClose(t *testing.T, s *streamConn, wait time.Duration) (websocket.StatusCode, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		_, _, err := s.ws.Read(ctx)
		if err == nil {
			continue // activities or keep-alives before the end
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		t.Fatalf("stream did not end with a close frame within %v: %v", wait, err)
		return 0, ""
	}
}

// An operator erasing a conversation ends its open stream at once: the
// client is told the conversation ended, and a reconnection finds nothing.
// Another conversation's stream stays open.
func TestEraseEndsOpenStreams(t *testing.T) {
	h := newHarness(t)
	tok, conv, start := h.started("dl_alice")
	s, _, err := h.dial(start.str("streamUrl"), trustedOrigin)
	if err != nil {
		t.Fatal(err)
	}
	h.post(tok, conv, map[string]any{"type": "message", "text": "echo:before", "from": map[string]any{"id": "dl_alice"}})
	s.collect(5*time.Second, hasText("bot heard before"))
	_, _, otherStart := h.started("dl_bob")
	other, _, err := h.dial(otherStart.str("streamUrl"), trustedOrigin)
	if err != nil {
		t.Fatal(err)
	}

	owner := admin.Principal{Kind: admin.KindLocal, ID: "test", Role: admin.RoleOwner}
	erasedAt := time.Now()
	if _, err := h.srv.AdminService(nil).EraseConversation(context.Background(), owner, conv); err != nil {
		t.Fatal(err)
	}
	// keep_alive is 20 s: an end within 2 s is the erasure's, not the
	// periodic check's.
	code, reason := readClose(t, s, 2*time.Second)
	if code != websocket.StatusNormalClosure || reason != "conversation ended" {
		t.Errorf("close = %v %q, want 1000 \"conversation ended\"", code, reason)
	}
	t.Logf("stream ended %v after the erasure", time.Since(erasedAt).Round(time.Millisecond))
	if r := h.do("GET", "/conversations/"+conv+"?watermark=-", tok, nil, nil); r.status != 404 && r.status != 403 {
		t.Errorf("reconnect after erasure = %d %s, want 403 or 404", r.status, r.raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, _, err := other.ws.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("another conversation's stream: %v, want it still open", err)
	}
}

// A conversation deleted behind the server's back (by another process,
// as 'parley erase' or 'parley site delete' do on the same store) loses
// its open stream at the next keep-alive round.
func TestStreamOfConversationDeletedElsewhereEnds(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.DirectLine.KeepAlive = config.Duration(400 * time.Millisecond) })
	_, conv, start := h.started("dl_alice")
	s, _, err := h.dial(start.str("streamUrl"), trustedOrigin)
	if err != nil {
		t.Fatal(err)
	}
	_, _, otherStart := h.started("dl_bob")
	other, _, err := h.dial(otherStart.str("streamUrl"), trustedOrigin)
	if err != nil {
		t.Fatal(err)
	}
	// Straight to the store: the server is not told.
	if _, err := h.st.DeleteConversation(context.Background(), conv, time.Now()); err != nil {
		t.Fatal(err)
	}
	code, reason := readClose(t, s, 3*time.Second)
	if code != websocket.StatusNormalClosure || reason != "conversation ended" {
		t.Errorf("close = %v %q, want 1000 \"conversation ended\"", code, reason)
	}
	// Over several keep-alive rounds the other stream gets keep-alives only.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	for {
		if _, _, err := other.ws.Read(ctx); err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("another conversation's stream ended: %v", err)
			}
			break
		}
	}
}
