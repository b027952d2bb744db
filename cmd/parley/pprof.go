package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/parley-gw/parley/internal/config"
)

// startPprof serves Go's profiler on PARLEY_PPROF_LISTEN, a loopback
// address only (profiles reveal memory contents), for performance work.
func (a *app) startPprof(log *slog.Logger) (func(), error) {
	addr, ok := a.env("PARLEY_PPROF_LISTEN")
	if !ok || addr == "" {
		return func() {}, nil
	}
	if !config.IsLoopback(addr) {
		return nil, fmt.Errorf("PARLEY_PPROF_LISTEN %q: the profiler only listens on loopback", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("PARLEY_PPROF_LISTEN: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Warn("profiler listening (PARLEY_PPROF_LISTEN); for performance work only", "listen", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
