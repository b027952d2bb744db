package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/redact"
	"github.com/parley-gw/parley/internal/store"
)

// adminListener is what the admin listener (admin.listen) serves: the
// admin API under /admin/v1/ and the web console at /.
type adminListener struct {
	api, console http.Handler
}

// ListenAdmin opens the admin listener of cfg: nil when admin.listen is
// off.
func ListenAdmin(cfg config.Config) (net.Listener, error) {
	if cfg.Admin.Off() {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin.listen %s: %w", cfg.Admin.Listen, err)
	}
	return ln, nil
}

// AdminService is the admin service layer over this server's store and
// keys, recording to rec (the audit log). The admin API and the console
// use it; the CLI builds its own over the same store.
func (s *Server) AdminService(rec admin.Recorder) *admin.Service {
	return admin.NewService(admin.Deps{
		Store: s.st, Config: s.cfg, Recorder: rec, KeyList: s.keys.Set,
		OpenKeys: func(context.Context) (admin.KeyHandle, error) {
			// The server's keys stay open: nothing to close.
			return admin.KeyHandle{Set: s.keys.Set, Envelope: s.keys.Envelope, Codec: s.keys.Codec}, nil
		},
		// A running server's configuration is a production one: insecure
		// bots only with insecure_http.
		ConfigName: "the server's configuration",
		Erased:     s.erased,
	})
}

// erased follows the erasure of a conversation (by an operator or by
// retention) in this process: its data key leaves memory too
// (crypto-shredding), and its open streams end at once. Streams of
// conversations deleted by another process (the CLI) end at the next
// keep-alive round.
func (s *Server) erased(e store.Erased) {
	s.envelope.Forget(store.DataKeyScope(e.ConversationID))
	if n := s.dl.EndConversation(e.ConversationID); n > 0 {
		s.logger.Info("streams of an erased conversation ended", "streams", n)
	}
}

// HandleAdmin sets what the admin listener serves: api (adminapi.New)
// under /admin/v1/, console (internal/web's console) at / (nil: none).
// Call it before Serve.
func (s *Server) HandleAdmin(api, console http.Handler) {
	s.admin = adminListener{api: api, console: console}
}

// adminHandler is the admin listener's handler.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	api := s.admin.api
	if api == nil {
		api = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			admin.WriteError(w, http.StatusNotImplemented, admin.CodeNotImplemented, "the admin API is not wired in this build")
		})
	}
	mux.Handle(admin.Prefix+"/", api)
	console := s.admin.console
	if console == nil {
		console = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.Header().Set("Cache-Control", "no-store")
				_, _ = w.Write([]byte("Parley admin listener: the API is at " + admin.Prefix + "/ (" + admin.Prefix + "/openapi.yaml)\n"))
				return
			}
			admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, "not found")
		})
	}
	mux.Handle("/", console)
	plain := !s.cfg.Admin.TLS()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if plain && !loopbackHost(r.Host) {
			// DNS rebinding: a page whose name now resolves to 127.0.0.1
			// would be this listener's own origin (Host and Origin agree).
			// Plain HTTP serves loopback only, so only loopback names.
			h.Set("Cache-Control", "no-store")
			admin.WriteError(w, http.StatusMisdirectedRequest, admin.CodeBadRequest, "the plain-HTTP admin listener answers loopback host names only (localhost, 127.0.0.1, [::1])")
			return
		}
		if !strings.HasPrefix(r.URL.Path, admin.Prefix+"/") {
			h.Set("X-Frame-Options", "DENY")
		}
		mux.ServeHTTP(w, r)
	})
}

// adminServer is the admin listener's http.Server.
func (s *Server) adminServer() *http.Server {
	return &http.Server{
		Handler:           s.adminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second, // bodies are at most 64 KiB
		IdleTimeout:       time.Duration(s.cfg.Timeouts.Idle),
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(redact.AddrsInMessage(s.redactLog), slog.LevelWarn),
	}
}

// serveAdmin serves aln until asrv shuts down; TLS off loopback.
func (s *Server) serveAdmin(asrv *http.Server, aln net.Listener) error {
	var err error
	if s.cfg.Admin.TLS() {
		s.logger.Info("admin listener serving TLS", "admin_listen", aln.Addr().String())
		asrv.TLSConfig = TLSConfig()
		err = asrv.ServeTLS(aln, s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
	} else {
		s.logger.Info("admin listener serving plain HTTP on loopback", "admin_listen", aln.Addr().String())
		err = asrv.Serve(aln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin listener: %w", err)
	}
	return err
}

// Keys returns the server's open keys: the audit log (checkpoint MACs)
// and operator identity (sealed TOTP secrets) use the same ones. The
// server closes them when Serve returns.
func (s *Server) Keys() Keys { return s.keys }

// loopbackHost reports whether a request's Host names this machine's
// loopback: localhost or a loopback address, with or without a port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
