package usertoken

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

type nopDeliverer struct{}

func (nopDeliverer) Deliver(context.Context, string, string, conversation.Activity) error { return nil }

// TestSameBrowserNeedsTheHostCookieOverHTTPS: over https only the
// __Host- session cookie counts. A plain-named cookie can be planted by a
// sibling host of the same site (Domain=example.com) or a plain-http
// page; it used to complete a victim's sign-in silently for the planter's
// conversation and user.
func TestSameBrowserNeedsTheHostCookieOverHTTPS(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now()
	if err := st.CreateBot(ctx, store.Bot{ID: "bot-1", Name: "b", Endpoint: "https://bot.example/api/messages", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSite(ctx, store.Site{ID: "site-1", BotID: "bot-1", Name: "web", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateConversation(ctx, store.Conversation{ID: "c1", BotID: "bot-1", SiteID: "site-1", UserID: "dl_a", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	secret := strings.Repeat("A", 43)
	sid := sessionID(secret)
	if err := st.PutSession(ctx, store.Session{ID: sid + ".c1", ConversationID: "c1", UserID: "dl_a", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f := flow{link: link{botID: "bot-1", convID: "c1", userID: "dl_a", conn: "idp"}, challenge: sid}
	for _, c := range []struct {
		publicURL, cookie string
		want              bool
	}{
		{"https://chat.example.com", "parley_dl_session", false},
		{"https://chat.example.com", "__Host-parley_dl_session", true},
		{"http://127.0.0.1:8080", "parley_dl_session", true},
		{"http://127.0.0.1:8080", "__Host-parley_dl_session", false},
	} {
		s := New(Config{PublicURL: c.publicURL, Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Deliver: nopDeliverer{}})
		r := httptest.NewRequest("GET", c.publicURL+"/api/oauth/callback", nil)
		r.AddCookie(&http.Cookie{Name: c.cookie, Value: secret})
		if got := s.sameBrowser(r, f); got != c.want {
			t.Errorf("%s with cookie %s: same browser %v, want %v", c.publicURL, c.cookie, got, c.want)
		}
	}
}
