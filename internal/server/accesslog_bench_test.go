package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/server"
)

// BenchmarkAccessLog measures a small request through the whole
// middleware with the access log line written (JSON, redacted, client
// pseudonymized) and without it.
func BenchmarkAccessLog(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			cfg := config.Default()
			cfg.PublicURL, cfg.DataDir, cfg.MasterKeyFile, cfg.InsecureHTTP = "http://127.0.0.1:1", dir, dir+"/master.key", true
			cfg.AccessLog = on
			srv, err := server.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			h := srv.Handler()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r := httptest.NewRequest("GET", "/v3/directline/static/placeholder.png", nil)
				r.RemoteAddr = "203.0.113.7:5555"
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
}
