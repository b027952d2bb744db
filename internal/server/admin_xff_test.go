package server_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

// The admin listener takes no client address from X-Forwarded-For, even
// when the TCP peer is a trusted proxy of the main listener: with
// 127.0.0.1 trusted (a local reverse proxy in front of listen), any
// local process could name a new "address" per sign-in attempt and
// never meet the per-address sign-in limit.
func TestAdminListenerIgnoresForwardedFor(t *testing.T) {
	s := startAdminServer(t, slog.New(slog.DiscardHandler), func(srv *server.Server) error {
		return srv.EnableAdmin(t.Context(), server.AdminOptions{Announce: &bytes.Buffer{}})
	}, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32"}
		c.Operators.LoginRate = "3/m burst 3"
	})
	var last int
	for i := range 6 {
		req, _ := http.NewRequest("POST", s.adminBase+"/admin/v1/session", strings.NewReader(`{"name":"nobody","password":"wrong password here","totp":"123456"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		last = res.StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("6 sign-ins from one address naming 6 forwarded ones: the last got %d, want 429", last)
	}
}
