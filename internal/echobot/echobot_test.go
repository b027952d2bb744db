package echobot

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
)

// The demo bot checks Parley's channel token like an SDK bot: against the
// published keys, for its own app id and the activity's serviceUrl.
func TestEchoBotRefusesDeliveriesWithoutAValidChannelToken(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr, _ := keyring.New(make([]byte, 32))
	mux := http.NewServeMux()
	gw := httptest.NewServer(mux)
	defer gw.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	auth, err := botauth.New(ctx, botauth.Config{PublicURL: gw.URL}, st, kr, log)
	if err != nil {
		t.Fatal(err)
	}
	auth.Register(mux)
	other, err := botauth.New(ctx, botauth.Config{PublicURL: "https://impostor.example"}, st, kr, log)
	if err != nil {
		t.Fatal(err)
	}
	bot := New(log, &Auth{AppID: "bot-1", Secret: "unused", Gateway: gw.URL})
	svc := gw.URL + "/"
	token := func(a *botauth.Authority, app, serviceURL string) string {
		h, err := a.AuthorizationFor(ctx, store.Bot{ID: app}, serviceURL)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	cases := map[string]struct {
		authz string
		want  int
	}{
		"valid":               {token(auth, "bot-1", svc), 200},
		"none":                {"", 401},
		"another bot's token": {token(auth, "bot-2", svc), 401},
		"other serviceUrl":    {token(auth, "bot-1", "https://elsewhere.example/"), 401},
		"other issuer":        {token(other, "bot-1", svc), 401},
		"garbage":             {"Bearer abc.def.ghi", 401},
	}
	for name, c := range cases {
		body := `{"type":"conversationUpdate","channelId":"directline","serviceUrl":"` + svc + `","conversation":{"id":"c1"},"recipient":{"id":"bot-1"}}`
		req := httptest.NewRequest("POST", "/api/messages", strings.NewReader(body))
		if c.authz != "" {
			req.Header.Set("Authorization", c.authz)
		}
		rec := httptest.NewRecorder()
		bot.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: %d, want %d", name, rec.Code, c.want)
		}
	}
}
