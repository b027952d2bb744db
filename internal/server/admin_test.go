package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/adminapi"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

type ownerToken struct{}

func (ownerToken) Authenticate(r *http.Request) (admin.Principal, error) {
	if r.Header.Get("Authorization") != "Bearer owner-test-token" {
		return admin.Principal{}, io.EOF
	}
	return admin.Principal{Kind: admin.KindToken, ID: "t", Role: admin.RoleOwner}, nil
}
func (ownerToken) Reauthenticated(admin.Principal) bool { return false }

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// adminServer is a server on loopback (plain HTTP) with its public,
// metrics and admin listeners' base URLs.
type adminServer struct {
	srv                          *server.Server
	base, metricsBase, adminBase string
}

// startAdminServer starts a server from the default configuration on
// loopback listeners, logging to log, once setup (which wires its admin
// side) succeeds. It stops when the test ends, and Serve must then
// return nil.
func startAdminServer(t *testing.T, log *slog.Logger, setup func(*server.Server) error, opts ...func(*config.Config)) *adminServer {
	t.Helper()
	ln, mln, aln := listen(t), listen(t), listen(t)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Listen, cfg.PublicURL, cfg.DataDir, cfg.InsecureHTTP = ln.Addr().String(), "http://"+ln.Addr().String(), dir, true
	cfg.Metrics.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.MasterKeyFile = dir + "/master.key"
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := setup(srv); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, server.Listeners{Main: ln, Metrics: mln, Admin: aln}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &adminServer{srv: srv, base: "http://" + ln.Addr().String(), metricsBase: "http://" + mln.Addr().String(), adminBase: "http://" + aln.Addr().String()}
}

// The admin API is served on the admin listener (admin.listen) only,
// never on the public one, over the server's store and keys.
func TestAdminListener(t *testing.T) {
	as := startAdminServer(t, slog.New(slog.DiscardHandler), func(srv *server.Server) error {
		srv.HandleAdmin(adminapi.New(adminapi.Config{Service: srv.AdminService(nil), Auth: ownerToken{}}), nil)
		return nil
	})
	base, adminBase := as.base, as.adminBase
	if status, body := httpGet(t, adminBase+admin.Prefix+"/keys", "Bearer owner-test-token"); status != 200 || !strings.Contains(body, `"purpose":"directline-token"`) {
		t.Errorf("admin listener GET /keys = %d %.200s", status, body)
	}
	if status, _ := httpGet(t, adminBase+admin.Prefix+"/bots", ""); status != http.StatusUnauthorized {
		t.Errorf("admin listener without a credential = %d, want 401", status)
	}
	if status, body := httpGet(t, adminBase+admin.Prefix+"/openapi.yaml", ""); status != 200 || !strings.HasPrefix(body, "openapi: 3.1") {
		t.Errorf("openapi = %d %.40s", status, body)
	}
	for _, b := range []string{base, as.metricsBase} {
		if status, body := httpGet(t, b+admin.Prefix+"/bots", "Bearer owner-test-token"); status != http.StatusNotFound && status != http.StatusUnauthorized || strings.Contains(body, "[") {
			t.Errorf("%s serves the admin API: %d %s", b, status, body)
		}
	}
}

// Preflight binds admin.listen like metrics.listen, and refuses a taken
// address naming the field (nothing else stays bound).
func TestPreflightAdminListen(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSignedUntil(t, dir, "chat.example.com", time.Now().Add(365*24*time.Hour))
	cfg := tlsConfig(t, dir, cert, key)
	cfg.Admin.Listen = "127.0.0.1:0"
	ls, err := server.Preflight(cfg, time.Now(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if ls.Admin == nil {
		t.Fatal("no admin listener")
	}
	taken := ls.Admin.Addr().String()
	cfg.Admin.Listen = taken
	_, err = server.Preflight(cfg, time.Now(), slog.New(slog.DiscardHandler))
	var pe *server.PreflightError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "admin.listen") {
		t.Errorf("taken admin.listen: %v", err)
	}
	_ = ls.Close()
	cfg.Admin.Listen = "off"
	ls, err = server.Preflight(cfg, time.Now(), slog.New(slog.DiscardHandler))
	if err != nil || ls.Admin != nil {
		t.Errorf("admin.listen off: %v, %v", ls.Admin, err)
	}
	_ = ls.Close()
}
