package server

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-gw/parley/internal/adminapi"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/operator"
	"github.com/parley-gw/parley/internal/web"
)

// AdminOptions are what EnableAdmin needs from the command that runs the
// server.
type AdminOptions struct {
	// Announce receives the one line with the owner's bootstrap
	// enrollment code (printed while no owner has enrolled); never the log.
	Announce io.Writer
}

// EnableAdmin builds the operators' side of the server when admin.listen
// is on: the audit log (with its periodic signed checkpoints), operator
// identity (printing the owner's one-time enrollment code while no owner
// has enrolled), the admin API over the service layer, and the web
// console; the admin listener serves them. Call it after New and before
// Serve. With admin.listen off it only runs the audit log's periodic
// checkpoint: operators then use the local CLI.
func (s *Server) EnableAdmin(ctx context.Context, o AdminOptions) error {
	auditLog, err := audit.New(audit.Config{Store: s.st, Keys: s.keys.Set, AnchorFile: s.cfg.Audit.AnchorFile,
		CheckpointEvery: time.Duration(s.cfg.Audit.CheckpointEvery), FollowPoll: time.Duration(s.cfg.Audit.FollowPoll), Logger: s.logger})
	if err != nil {
		return fmt.Errorf("open the audit log: %w", err)
	}
	// The periodic checkpoint runs with the admin listener off too: the
	// CLI's entries (every local admin command records one) are then
	// signed and anchored within audit.checkpoint_every as well.
	go func() { _ = auditLog.Run(s.base) }()
	if s.cfg.Admin.Off() {
		return nil
	}
	ops, err := operator.New(operator.Config{
		Store: s.st, Sealer: s.keys.Envelope, Audit: auditLog, Log: s.logger, Settings: s.cfg.Operators,
		// The cookie is __Host- and Secure on TLS; plain HTTP only on loopback.
		Secure: s.cfg.Admin.TLS(),
		// The admin listener's client is its TCP peer: trusted_proxies are
		// the main listener's, and a forwarded address would let any local
		// process pick a fresh one per sign-in attempt.
		Pseudonymize: s.pseudonyms.Addr,
		Announce:     o.Announce,
	})
	if err != nil {
		return fmt.Errorf("operator identity: %w", err)
	}
	if err := s.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_admin_rate_limited_total",
		Help: "Admin API requests refused by operators.request_rate (429)."}, ops.RateLimited)); err != nil {
		return fmt.Errorf("admin metrics: %w", err)
	}
	if _, err := ops.Bootstrap(ctx); err != nil {
		return fmt.Errorf("bootstrap the owner's enrollment: %w", err)
	}
	api := adminapi.New(adminapi.Config{
		Service: s.AdminService(auditLog), Auth: ops, Operators: ops, ErrCSRF: operator.ErrCSRF, ErrUnauthenticated: operator.ErrUnauthenticated,
		Recorder: auditLog, Audit: auditLog,
		AuditVerify: func(ctx context.Context) (any, error) { return auditLog.Verify(ctx) },
		Logger:      s.logger,
	})
	s.HandleAdmin(api, web.Console())
	return nil
}
