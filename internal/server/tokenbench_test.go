package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

// BenchmarkTokenGenerate measures tokens/generate through the real HTTP
// stack (secret lookup, binding, signing), with parallel callers.
func BenchmarkTokenGenerate(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	dir := b.TempDir()
	cfg := config.Default()
	cfg.Listen, cfg.PublicURL, cfg.DataDir, cfg.InsecureHTTP, cfg.MasterKeyFile = ln.Addr().String(), base, dir, true, dir+"/master.key"
	cfg.Metrics.Listen = "off"
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	_, secret, _ := provision(b, srv.Store(), "bot-b", "http://127.0.0.1:1/api", true, []string{trustedOrigin})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, server.Listeners{Main: ln}); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	body := []byte(`{"user":{"id":"dl_benchmark_user_0001"}}`)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", base+"/v3/directline/tokens/generate", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+secret)
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	// The deferred shutdown is not part of the measure: it can wait 5 s
	// for a connection the client opened and never used (net/http counts
	// a new connection as idle only after 5 s).
	b.StopTimer()
}
