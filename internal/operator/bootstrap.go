package operator

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/store"
)

// Bootstrap runs at each start of parley serve. While no enabled owner of
// every bot has finished enrollment, it invalidates the previous bootstrap
// code (and a half-finished owner enrollment from it) and prints a new
// one-time owner enrollment code: one line to Config.Announce, the only
// place the code ever appears. Log gets a warning without the code. Once
// an owner has enrolled it does nothing and returns "".
func (s *Service) Bootstrap(ctx context.Context) (code string, err error) {
	ops, err := s.st.ListOperators(ctx)
	if err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	if ownersLeft(ops) > 0 {
		return "", nil
	}
	if _, err := s.st.DeleteBootstrapEnrollments(ctx); err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	for _, o := range ops {
		if o.Role == string(admin.RoleOwner) && !o.TOTPConfirmed && o.SSOSubject == "" {
			if err := s.st.DeleteOperator(ctx, o.ID); err != nil {
				return "", fmt.Errorf("bootstrap: %w", err)
			}
		}
	}
	code = EnrollPrefix + randomString(32)
	now := s.now()
	ttl := time.Duration(s.settings().EnrollmentTTL)
	if err := s.st.CreateEnrollment(ctx, store.Enrollment{Hash: hashOf(code), Role: string(admin.RoleOwner), Bootstrap: true,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	if _, err := fmt.Fprintf(s.cfg.Announce, "WARN parley has no owner yet: enroll the first owner with this one-time code before %s (POST /admin/v1/enroll, or the console): %s\n",
		ts(now.Add(ttl)), code); err != nil {
		return "", fmt.Errorf("bootstrap: print the code: %w", err)
	}
	s.log.Warn("no owner has enrolled: a one-time owner enrollment code was printed to the console (stderr); it is replaced at each start until an owner enrolls",
		"expires_at", ts(now.Add(ttl)))
	s.record(ctx, audit.Event{Actor: "local:bootstrap", Action: "operator.invite", Target: "role:owner", Outcome: audit.Success,
		Detail: map[string]string{"bootstrap": "true", "expires_at": ts(now.Add(ttl))}})
	return code, nil
}
