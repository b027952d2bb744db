// Package server assembles Parley: store, keys, the conversation log, bot
// delivery and the HTTP surfaces, and runs them with graceful shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-gw/parley/internal/botauth"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/directline"
	"github.com/parley-gw/parley/internal/guard"
	"github.com/parley-gw/parley/internal/identity"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/redact"
	"github.com/parley-gw/parley/internal/reqinfo"
	"github.com/parley-gw/parley/internal/retention"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/store/sqlite"
	"github.com/parley-gw/parley/internal/usertoken"
)

// Server is one running Parley.
type Server struct {
	cfg      config.Config
	logger   *slog.Logger
	codec    conversation.Codec
	envelope *keyring.Envelope
	keys     Keys
	st       store.Store
	delivery *connector.Delivery
	mux      *http.ServeMux
	handler  http.Handler
	dl       *directline.API
	// authority signs channel tokens, runs the bots' token service and
	// checks their bearer tokens.
	authority *botauth.Authority
	// base is canceled at shutdown: it ends open streams.
	base       context.Context
	cancelBase context.CancelFunc
	trimmer    *idleTrimmer
	limiter    *guard.Memory
	// refusedConns counts connections closed at max_connections or
	// max_connections_per_client, by limit.
	refusedConns *prometheus.CounterVec
	// proxies are the trusted reverse proxies (trusted_proxies).
	proxies guard.Proxies
	// sweeper enforces the sites' retention policies.
	sweeper *retention.Sweeper
	// reg is what /metrics serves, on the metrics listener only:
	// metricsMux, behind metricsGate (metrics.bearer_token_file).
	reg         *prometheus.Registry
	metricsMux  *http.ServeMux
	metricsGate *metricsGate
	// redactLog is the redacting handler under logger (logger adds
	// HumanDurations on top), for http.Server's error logs.
	redactLog slog.Handler
	// threat counts authentication failures (threat.go).
	threat *threatWatch
	// userTokens is the user token service (issue 12).
	userTokens *usertoken.Service
	// admin is what the admin listener serves (admin.go).
	admin adminListener
	// pseudonyms is the log pseudonymizer (client addresses, user ids).
	pseudonyms *redact.Pseudonymizer
	// dataLock holds data_dir/parley.lock while the server runs (New).
	dataLock *os.File
}

// OpenStore opens the configured store.
func OpenStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	return sqlite.OpenWith(ctx, filepath.Join(cfg.DataDir, "parley.db"), sqlite.Options{SyncNormal: cfg.Store.Durability == config.DurabilityNormal})
}

// New builds a server from a validated configuration.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger) (*Server, error) {
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	s, err := newWithStore(ctx, cfg, logger, st)
	if err != nil {
		_ = st.Close()
		_ = lock.Close()
		return nil, err
	}
	s.dataLock = lock
	return s, nil
}

func newWithStore(ctx context.Context, cfg config.Config, logger *slog.Logger, st store.Store) (*Server, error) {
	keys, err := OpenKeys(ctx, cfg, st)
	if err != nil {
		return nil, err
	}
	built := false
	defer func() {
		if !built {
			_ = keys.Close()
		}
	}()
	kr := keys.Keyring
	// Every log line goes through the redacting handler, whatever logger
	// the caller passed: PII and credentials become placeholders, user ids
	// and client addresses keyed pseudonyms (not configurable). The key is
	// the log-pseudonym purpose's active key, followed across rotations
	// (from the key reload after one).
	ps, err := redact.NewRotatingPseudonymizer(func() (string, []byte, error) {
		return keys.Set.HMACKey(keyring.PurposeLogPseudonym)
	})
	if err != nil {
		return nil, fmt.Errorf("log pseudonym key: %w", err)
	}
	redactLog := redact.WithPseudonymizer(logger.Handler(), ps)
	logger = slog.New(HumanDurations(redactLog))
	if cfg.MasterKey == "" && insideDir(cfg.MasterKeyFile, cfg.DataDir) {
		logger.Warn("the master key file is inside the data directory: a backup of the directory holds the key next to everything it protects, and destroyed keys do not make such a backup unreadable; keep it elsewhere (master_key_file, or PARLEY_MASTER_KEY)",
			"master_key_file", cfg.MasterKeyFile)
	}
	if _, err := SealLegacy(ctx, st, keys.Codec, logger); err != nil {
		return nil, err
	}
	issuer, err := identity.NewIssuerWithKeys(keys.Set, cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	if err := warnInsecureBots(ctx, st, logger); err != nil {
		return nil, err
	}
	proxies, err := guard.ParseProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	reg := prometheus.NewRegistry()
	gate, err := newMetricsGate(cfg, reg, logger)
	if err != nil {
		return nil, err
	}
	authFailures := guard.NewAuthFailures(reg, logger, proxies)
	limiter := guard.NewMemory(guard.MemoryConfig{Registerer: reg})
	tw, err := newThreatWatch(cfg, st, reg, logger, ps, proxies)
	if err != nil {
		return nil, err
	}
	authority, err := botauth.New(ctx, botauth.Config{PublicURL: cfg.PublicURL, ReloadEvery: time.Duration(cfg.Bots.KeyReload),
		ClientAddr: proxies.ClientAddr, Failures: authFailures, Keys: keys.Set}, st, kr, logger)
	if err != nil {
		return nil, fmt.Errorf("bot authentication keys: %w", err)
	}
	dlcfg := directline.Config{
		PublicURL: cfg.PublicURL,
		TokenTTL:  time.Duration(cfg.DirectLine.TokenTTL),
		BotWait:   time.Duration(cfg.DirectLine.BotWait),
		KeepAlive: time.Duration(cfg.DirectLine.KeepAlive),
		Limits: conversation.Limits{
			MaxBytes:       cfg.DirectLine.MaxActivityBytes,
			MaxAttachments: cfg.DirectLine.MaxAttachments,
		},
		MaxUploadBytes: cfg.DirectLine.MaxUploadBytes,
		Limiter:        limiter,
		RateLimits:     rateLimits(cfg.Limits),
		ClientAddr:     proxies.ClientAddr,
		AuthFailures:   authFailures,

		MaxHistoryReads:          cfg.DirectLine.MaxHistoryReads,
		MaxHistoryReadsPerClient: cfg.DirectLine.MaxHistoryReadsPerClient,
		MaxStreamsPerClient:      cfg.DirectLine.MaxStreamsPerClient,
		MaxUploads:               cfg.DirectLine.MaxUploads,
		MaxUploadsPerClient:      cfg.DirectLine.MaxUploadsPerClient,
		WriteBase:                time.Duration(cfg.Timeouts.Body),
		MinClientRate:            cfg.Timeouts.MinClientRate,
	}.Defaults()
	lg := conversation.NewLog(st, keys.Codec)
	dcfg := connector.DefaultDeliveryConfig
	dcfg.ServiceURL = dlcfg.ServiceURL()
	dcfg.RetryFor = time.Duration(cfg.Bots.DeliveryRetryFor)
	delivery := connector.NewDelivery(st, lg.Codec(), authority, connector.NewBotClient(connector.MaxDeliveryTimeout, cfg.AllowedPrivateNetworks()), dcfg, logger)
	st.SetOutboxListener(delivery.Enqueue)
	base, cancelBase := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, logger: logger, codec: keys.Codec, envelope: keys.Envelope, keys: keys, st: st, delivery: delivery, authority: authority, mux: http.NewServeMux(), base: base, cancelBase: cancelBase, trimmer: newIdleTrimmer(), limiter: limiter}
	s.proxies = proxies
	s.reg, s.metricsMux, s.metricsGate, s.redactLog = reg, http.NewServeMux(), gate, redactLog
	s.threat = tw
	s.pseudonyms = ps
	rc := cfg.Retention
	s.sweeper = retention.New(st, retention.Config{Default: time.Duration(rc.Default), Every: time.Duration(rc.SweepEvery),
		EphemeralHold: time.Duration(rc.EphemeralHold), EphemeralMax: time.Duration(rc.EphemeralMax), TombstonesFor: time.Duration(rc.TombstonesFor),
		// The conversation's data key is gone from the store: drop it from
		// memory too.
		OnDeleted: func(e store.Erased) { s.erased(e) }}, logger)
	s.refusedConns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_connections_refused_total", Help: "Connections closed at once by the limit that was reached: max_connections (gateway-wide) or max_connections_per_client (one client address)."}, []string{"limit"})
	s.refusedConns.WithLabelValues(limitConnections)
	s.refusedConns.WithLabelValues(limitConnectionsPerClient)

	s.dl = directline.New(base, dlcfg, st, lg, issuer, delivery, logger)
	s.dl.Register(s.mux)
	authority.Register(s.mux)
	// Identity providers are called through the bot client's guarded dialer:
	// no internal address (SSRF), unless in bots.allow_private_networks.
	s.userTokens = usertoken.New(usertoken.Config{PublicURL: cfg.PublicURL, ChannelID: dlcfg.ChannelID, Store: st, Sealer: keys.Envelope, Auth: authority, Logger: logger, Failures: authFailures, Deliver: lg,
		HTTPClient: connector.NewBotClient(connector.MaxDeliveryTimeout, cfg.AllowedPrivateNetworks())})
	s.userTokens.Register(s.mux)
	connector.NewAPI(st, lg, issuer, authority, connector.APIConfig{Limits: dlcfg.Limits, MaxUpload: dlcfg.MaxUploadBytes, ChannelID: dlcfg.ChannelID, Proxies: proxies, SignIn: s.userTokens, Replies: delivery, Failures: authFailures}, logger).Register(s.mux)

	hm := newHTTPMetrics(reg)
	registerRuntimeMetrics(reg)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_open_streams", Help: "Open Direct Line WebSocket streams."}, func() float64 { return float64(lg.Hub().Count()) }),
		s.refusedConns,
	)
	if ws, ok := st.(writeStatser); ok {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_store_commits_total", Help: "Store write transactions committed (each one fsync)."}, func() float64 { c, _ := ws.WriteStats(); return float64(c) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_store_committed_writes_total", Help: "Write requests carried by those commits (group commit)."}, func() float64 { _, n := ws.WriteStats(); return float64(n) }),
		)
	}
	registerDeliveryMetrics(reg, st, delivery)
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_retention_conversations_deleted_total", Help: "Conversations deleted by the retention sweeper (content and data key)."}, func() float64 { d, _ := s.sweeper.Totals(); return float64(d) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_retention_activities_pruned_total", Help: "Activities removed from ephemeral sites' conversations by the retention sweeper."}, func() float64 { _, p := s.sweeper.Totals(); return float64(p) }),
	)
	// /metrics is on the metrics listener only; the probes are on both
	// (orchestrators reach the main listener).
	health := func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) }
	readiness := newReadinessLog(logger)
	ready := func(w http.ResponseWriter, r *http.Request) { readyz(w, r, st, readiness) }
	s.mux.HandleFunc("GET /healthz", health)
	s.mux.HandleFunc("GET /readyz", ready)
	s.registerMetricsRoutes(health, ready)
	tw.RegisterSecurityReport(s.metricsMux) // behind the metrics listener's gate, beside /metrics
	s.handler = s.middleware(tw.wrap(s.mux), hm)
	built = true
	return s, nil
}

// KeyPurposes are the gateway's key purposes under cfg; the server and
// the keys commands use the same. Direct Line token keys verify after
// retirement for the longest Direct Line credential lifetime plus leeway,
// and sign once every replica has had a reload to load them. The authority
// reloads every purpose every bots.key_reload.
//
// kek is the key-encryption keys' purpose, with the provider and the
// re-wrap hook (OpenKeys builds it). A retired KEK is destroyed without
// force only two key reloads after its retirement: by then every running
// server has stopped wrapping under it (one reload) and re-wrapped what it
// wrapped meanwhile (its rewrap loop, one reload later).
func KeyPurposes(cfg config.Config, kek keyring.Purpose) []keyring.Purpose {
	longest := max(time.Duration(cfg.DirectLine.TokenTTL), directline.AttachmentTTL, directline.Config{}.Defaults().StreamTokenTTL)
	kek.MinRetiredAge = 2 * time.Duration(cfg.Bots.KeyReload)
	return append(append(keyring.SigningPurposes(keyring.PurposeRules{TokenOverlap: longest + identity.Leeway, ReloadEvery: time.Duration(cfg.Bots.KeyReload)}), kek), operatorPurposes()...)
}

// writeStatser is a store that reports group commit figures.
type writeStatser interface {
	WriteStats() (commits, requests int64)
}

// warnInsecureBots logs loudly about development bots.
func warnInsecureBots(ctx context.Context, st store.Store, logger *slog.Logger) error {
	bots, err := st.ListBots(ctx)
	if err != nil {
		return fmt.Errorf("list bots: %w", err)
	}
	for _, b := range bots {
		if b.InsecureNoAuth {
			logger.Warn("INSECURE: bot is registered without authentication (development only); messages to and from it are not authenticated", "bot", b.ID, "endpoint", connector.RedactURL(b.Endpoint))
		}
	}
	return nil
}

// Authority is the bot authentication authority (keys, token service).
func (s *Server) Authority() *botauth.Authority { return s.authority }

// Store is the server's store (for the admin commands in the same process).
func (s *Server) Store() store.Store { return s.st }

// Handle adds a route (the demo page).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler is the whole HTTP surface.
func (s *Server) Handler() http.Handler { return s.handler }

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and the WebSocket upgrade reach the
// underlying connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// middleware adds security headers, panic recovery, metrics and the access
// log (accesslog.go), which never records paths or query strings (stream
// URLs carry credentials). Handlers annotate the request through reqinfo:
// its site, and, for a WebSocket stream, its end (after the handler
// returned).
func (s *Server) middleware(next http.Handler, m httpMetrics) http.Handler {
	tlsOn := !s.cfg.InsecureHTTP
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.trimmer.seen()
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if strings.HasPrefix(r.URL.Path, "/v3/directline") {
			// Including the mux's own redirects and errors (finding 11).
			h.Set("Cache-Control", "no-store")
		}
		s.setDeadlines(w, r)
		h.Set("Referrer-Policy", "no-referrer")
		if tlsOn {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		ctx, info := reqinfo.With(r.Context())
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.Error("panic in handler", "route", r.Pattern, "panic", fmt.Sprint(v))
				if rec.status == 0 {
					http.Error(rec, `{"error":{"code":"ServiceError","message":"internal error"}}`, http.StatusInternalServerError)
				}
			}
			route := r.Pattern // set by the ServeMux while routing
			if route == "" {
				route = "unmatched"
			}
			status := rec.status
			if status == 0 { // nothing written: net/http answers 200
				status = http.StatusOK
			}
			m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
			if status/100 == 2 {
				if k := issuedTokenKind(route); k != "" {
					m.tokens.WithLabelValues(k).Inc()
				}
			}
			site := info.Site()
			var stream prometheus.Gauge
			if status == http.StatusSwitchingProtocols && route == streamRoute {
				stream = m.streamsBySite.WithLabelValues(site)
				stream.Inc()
			}
			entry, logIt := s.newAccessEntry(r, route, status, start, site)
			info.Finish(func() { // a stream's: when it ends
				if stream != nil {
					stream.Dec()
				}
				if logIt {
					s.logAccess(entry)
				}
			})
		}()
		next.ServeHTTP(rec, r)
	})
}

// TLSConfig is TLS 1.2+ with AEAD cipher suites only.
func TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
		},
	}
}

// Serve runs until ctx ends, then shuts down gracefully: open streams are
// told the server is going away, in-flight requests finish, deliveries
// stop at a safe point (pending ones stay in the outbox), the store closes.
// ls.Main serves the gateway, ls.Metrics the metrics (see Listeners).
func (s *Server) Serve(ctx context.Context, ls Listeners) error {
	ln, mln, aln := ls.Main, ls.Metrics, ls.Admin
	if mln == nil {
		var err error
		if mln, err = ListenMetrics(s.cfg); err != nil {
			_ = ln.Close()
			return errors.Join(err, s.Close())
		}
	}
	if aln == nil {
		var err error
		if aln, err = ListenAdmin(s.cfg); err != nil {
			_ = ln.Close()
			if mln != nil {
				_ = mln.Close()
			}
			return errors.Join(err, s.Close())
		}
	}
	srv := &http.Server{
		Handler: s.handler,
		// Body and write deadlines are per route (setDeadlines); a server
		// ReadTimeout or WriteTimeout would also cut WebSocket streams.
		ReadHeaderTimeout: time.Duration(s.cfg.Timeouts.ReadHeader),
		IdleTimeout:       time.Duration(s.cfg.Timeouts.Idle),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(redact.AddrsInMessage(s.redactLog), slog.LevelWarn), // its messages name client addresses
	}
	dctx, dcancel := context.WithCancel(context.Background())
	deliveryDone := make(chan struct{})
	go func() {
		defer close(deliveryDone)
		s.delivery.Run(dctx)
	}()
	// The loops use the store and the key provider: they end before both
	// close (an HSM's sessions must not close under a running rewrap).
	var loops sync.WaitGroup
	for _, run := range []func(context.Context){s.trimmer.run, s.authority.Run, s.rewrapLoop, s.sweeper.Run, s.threat.run} {
		loops.Add(1)
		go func() {
			defer loops.Done()
			run(dctx)
		}()
	}
	ln = s.capListener(ln)
	errc := make(chan error, 3)
	// serving: Serve returns only after both listeners' goroutines have
	// ended (they log; nothing of this server may outlive Serve).
	var serving sync.WaitGroup
	var msrv *http.Server
	if mln != nil {
		msrv = s.metricsServer()
		mln = s.capMetricsListener(mln)
		serving.Add(1)
		go func() {
			defer serving.Done()
			var err error
			if s.cfg.Metrics.TLS() {
				s.logger.Info("metrics listener serving TLS (bearer token required)", "metrics_listen", mln.Addr().String())
				msrv.TLSConfig = TLSConfig()
				err = msrv.ServeTLS(mln, s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
			} else {
				s.logger.Info("metrics listener serving plain HTTP on loopback", "metrics_listen", mln.Addr().String(), "bearer_token", s.metricsGate.on)
				err = msrv.Serve(mln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				err = fmt.Errorf("metrics listener: %w", err)
			}
			errc <- err
		}()
	}
	var asrv *http.Server
	if aln != nil {
		asrv = s.adminServer()
		serving.Add(1)
		go func() {
			defer serving.Done()
			errc <- s.serveAdmin(asrv, aln)
		}()
	}
	serving.Add(1)
	go func() {
		defer serving.Done()
		var err error
		if s.cfg.InsecureHTTP {
			s.logger.Warn("INSECURE: serving plain HTTP on a loopback address (development only)", "listen", ln.Addr().String())
			err = srv.Serve(ln)
		} else {
			srv.TLSConfig = TLSConfig()
			err = srv.ServeTLS(ln, s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
		}
		errc <- err
	}()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.cancelBase()
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	if msrv != nil {
		shutdownErr = errors.Join(shutdownErr, msrv.Shutdown(sctx))
	}
	if asrv != nil {
		shutdownErr = errors.Join(shutdownErr, asrv.Shutdown(sctx))
	}
	serving.Wait()
	s.dl.WaitStreams()
	dcancel()
	<-deliveryDone
	loops.Wait()
	closeErr := errors.Join(s.st.Close(), s.keys.Close(), s.unlock())
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, shutdownErr, closeErr)
}

// capListener applies max_connections and max_connections_per_client to ln.
func (s *Server) capListener(ln net.Listener) net.Listener {
	return &capListener{Listener: ln, max: s.cfg.MaxConnections, perClient: s.cfg.ConnectionsPerClient(),
		exempt:  s.proxies.Trusted,
		refused: func(limit string) { s.refusedConns.WithLabelValues(limit).Inc() },
		warn: func(limit string, open int, client string) {
			if limit == limitConnectionsPerClient {
				s.logger.Warn("per-client connection limit reached: new connections from this client address are closed",
					"max_connections_per_client", s.cfg.ConnectionsPerClient(), "client", client, "open", open)
				return
			}
			s.logger.Warn("connection limit reached: new connections are closed", "max_connections", s.cfg.MaxConnections, "open", open)
		},
		byAddr: map[string]int{}, last: map[string]time.Time{}}
}

// Close releases the store without serving (for setup errors).
func (s *Server) Close() error {
	s.cancelBase()
	return errors.Join(s.st.Close(), s.keys.Close(), s.unlock())
}

// unlock releases data_dir/parley.lock (after the store is closed: the
// next gateway may open it at once), once.
func (s *Server) unlock() error {
	if s.dataLock == nil {
		return nil
	}
	f := s.dataLock
	s.dataLock = nil
	return f.Close()
}
