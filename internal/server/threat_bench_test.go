package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/parley-gw/parley/internal/guard"
	"github.com/parley-gw/parley/internal/redact"
	"github.com/parley-gw/parley/internal/threat"
)

// BenchmarkThreatWatch is the detector's cost on a request that succeeds
// (every request pays it) and on one that fails.
func BenchmarkThreatWatch(b *testing.B) {
	ps, _ := redact.NewPseudonymizer("k", make([]byte, 32))
	tw := &threatWatch{det: threat.New(threat.Config{}, nil, nil, nil, slog.New(slog.DiscardHandler)), ps: ps}
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	b.Run("unwatched", func(b *testing.B) {
		r := httptest.NewRequest("POST", "/v3/directline/conversations", nil)
		w := httptest.NewRecorder()
		b.ReportAllocs()
		for b.Loop() {
			bare.ServeHTTP(w, r)
		}
	})
	for _, status := range []int{200, 403} {
		h := tw.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			guard.NoteSite(r, "site-1")
			w.WriteHeader(status)
		}))
		r := httptest.NewRequest("POST", "/v3/directline/conversations", nil)
		r.Header.Set("User-Agent", "curl/8.5.0")
		w := httptest.NewRecorder()
		b.Run(http.StatusText(status), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
