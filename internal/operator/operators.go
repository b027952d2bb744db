package operator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/store"
)

// operatorView is an operator as the API shows it (never a secret).
type operatorView struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Role        string   `json:"role"`
	Bots        []string `json:"bots"`
	SSOSubject  string   `json:"ssoSubject"`
	MFA         bool     `json:"mfa"`
	Disabled    bool     `json:"disabled"`
	LockedUntil string   `json:"lockedUntil"`
	CreatedAt   string   `json:"createdAt"`
	UpdatedAt   string   `json:"updatedAt"`
}

func (s *Service) viewOperator(o store.Operator) operatorView {
	v := operatorView{ID: o.ID, Name: o.Name, Role: o.Role, Bots: nonNil(o.Bots), SSOSubject: o.SSOSubject, MFA: o.TOTPConfirmed,
		Disabled: o.Disabled, CreatedAt: ts(o.CreatedAt), UpdatedAt: ts(o.UpdatedAt)}
	if s.now().Before(o.LockedUntil) {
		v.LockedUntil = ts(o.LockedUntil)
	}
	return v
}

func (s *Service) listOperators(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ops, err := s.st.ListOperators(r.Context())
	if err != nil {
		s.internalError(w, "list operators", err)
		return
	}
	out := []operatorView{}
	for _, o := range ops {
		out = append(out, s.viewOperator(o))
	}
	admin.WriteJSON(w, http.StatusOK, map[string]any{"operators": out})
}

type inviteRequest struct {
	Name       string   `json:"name"`
	Role       string   `json:"role"`
	Bots       []string `json:"bots"`
	TTLHours   int      `json:"ttlHours"`
	SSOSubject string   `json:"ssoSubject"`
}

type inviteResponse struct {
	Code      string   `json:"code"`
	ExpiresAt string   `json:"expiresAt"`
	Role      string   `json:"role"`
	Bots      []string `json:"bots"`
}

// grantable checks that p may give role and bots (object level: the
// route's role check is the middleware's).
func grantable(p admin.Principal, role admin.Role, bots []string) error {
	if p.Kind == admin.KindLocal {
		return nil
	}
	if !roleWithin(role, p.Role) {
		return fmt.Errorf("you cannot grant the role %s: it holds rights your role (%s) does not", role, p.Role)
	}
	if !botsWithin(bots, p.Bots) {
		return fmt.Errorf("you can only grant bots within your own scope %v", p.Bots)
	}
	return nil
}

// CheckBots validates a bot scope being granted: every id a registered
// bot, none empty, none twice (a typo would otherwise make an operator
// who can see nothing, silently).
func (s *Service) CheckBots(ctx context.Context, bots []string) error {
	seen := map[string]bool{}
	for _, b := range bots {
		switch {
		case strings.TrimSpace(b) == "":
			return errors.New("bots: an empty bot id; give the app ids of registered bots (parley bot list)")
		case seen[b]:
			return fmt.Errorf("bots: %q is given twice", b)
		}
		seen[b] = true
		if _, err := s.st.GetBot(ctx, b); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("bots: %q is not a registered bot (parley bot list shows their app ids)", b)
		} else if err != nil {
			return fmt.Errorf("bots: %w", err)
		}
	}
	return nil
}

func (s *Service) inviteOperator(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	var req inviteRequest
	if !decode(w, r, &req) {
		return
	}
	role, err := admin.ParseRole(req.Role)
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	if req.Bots == nil && len(p.Bots) > 0 {
		req.Bots = p.Bots
	}
	if err := grantable(p, role, req.Bots); err != nil {
		admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, err.Error())
		return
	}
	if err := s.CheckBots(ctx, req.Bots); err != nil {
		badRequest(w, err.Error())
		return
	}
	// A new owner holds every right, the re-authenticated ones too: like
	// changing an owner, making one needs a recent re-authentication
	// (never an API token's).
	if role == admin.RoleOwner && p.Kind != admin.KindLocal && !s.Reauthenticated(p) {
		s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "operator.invite", Target: "role:owner",
			Outcome: audit.Denied, Client: p.Client, Detail: map[string]string{"reason": "reauth"}})
		admin.WriteError(w, http.StatusForbidden, admin.CodeReauth, "inviting an owner needs a recent sign-in: re-authenticate (POST /admin/v1/session/reauth) and try again")
		return
	}
	if req.SSOSubject != "" {
		if !namePattern.MatchString(req.Name) {
			badRequest(w, msgName)
			return
		}
		now := s.now()
		op := store.Operator{ID: newID("op_"), Name: req.Name, Role: string(role), Bots: req.Bots, SSOSubject: req.SSOSubject, CreatedAt: now, UpdatedAt: now}
		if err := s.st.CreateOperator(ctx, op); errors.Is(err, store.ErrExists) {
			admin.WriteError(w, http.StatusConflict, admin.CodeConflict, "that name or SSO subject is taken")
			return
		} else if err != nil {
			s.internalError(w, "create operator", err)
			return
		}
		s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "operator.create", Target: "operator:" + op.ID,
			Outcome: audit.Success, Client: p.Client, Detail: map[string]string{"role": op.Role, "sso": "true"}})
		s.retireBootstrap(ctx)
		admin.WriteJSON(w, http.StatusOK, map[string]any{"operator": s.viewOperator(op)})
		return
	}
	if req.Name != "" {
		badRequest(w, "name is chosen by the invited person at enrollment (send name only with sso_subject)")
		return
	}
	ttl := time.Duration(s.settings().EnrollmentTTL)
	if req.TTLHours != 0 {
		if req.TTLHours < 1 || req.TTLHours > 168 {
			badRequest(w, "ttl_hours: use 1 to 168")
			return
		}
		ttl = time.Duration(req.TTLHours) * time.Hour
	}
	code, exp, err := s.Invite(ctx, p, role, req.Bots, ttl)
	if err != nil {
		s.internalError(w, "invite operator", err)
		return
	}
	admin.WriteJSON(w, http.StatusOK, inviteResponse{Code: code, ExpiresAt: ts(exp), Role: string(role), Bots: nonNil(req.Bots)})
}

// Invite makes a one-time enrollment code for role and bots, valid for
// ttl, and records it. The code is returned once; only its hash is kept.
// The caller has checked that p may grant them (grantable).
func (s *Service) Invite(ctx context.Context, p admin.Principal, role admin.Role, bots []string, ttl time.Duration) (string, time.Time, error) {
	code := EnrollPrefix + randomString(32)
	now := s.now()
	// The inviter whose rights the code dies with: the operator, or the
	// operator who made the API token (a token's invitations must not
	// outlive its creator's removal either). "" only for the local CLI.
	createdBy := ""
	switch p.Kind {
	case admin.KindOperator:
		createdBy = p.ID
	case admin.KindToken:
		t, err := s.st.GetAPIToken(ctx, p.ID)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("invite operator: the token's creator: %w", err)
		}
		createdBy = t.CreatedBy
	}
	if err := s.st.CreateEnrollment(ctx, store.Enrollment{Hash: hashOf(code), Role: string(role), Bots: bots, CreatedBy: createdBy,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
		return "", time.Time{}, fmt.Errorf("invite operator: %w", err)
	}
	s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "operator.invite", Target: "role:" + string(role),
		Outcome: audit.Success, Client: p.Client, Detail: map[string]string{"bots": fmt.Sprint(bots), "expires_at": ts(now.Add(ttl))}})
	return code, now.Add(ttl), nil
}

type patchRequest struct {
	Role     *string   `json:"role"`
	Bots     *[]string `json:"bots"`
	Disabled *bool     `json:"disabled"`
	Unlock   bool      `json:"unlock"`
}

// ownersLeft counts the enabled, unscoped, usable owners in ops.
func ownersLeft(ops []store.Operator) int {
	n := 0
	for _, o := range ops {
		if o.Role == string(admin.RoleOwner) && !o.Disabled && len(o.Bots) == 0 && (o.TOTPConfirmed || o.SSOSubject != "") {
			n++
		}
	}
	return n
}

func (s *Service) patchOperator(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	var req patchRequest
	if !decode(w, r, &req) {
		return
	}
	ops, i, ok := s.pathOperator(w, r, "change operator")
	if !ok {
		return
	}
	before := ops[i]
	op := before
	if req.Role != nil {
		role, err := admin.ParseRole(*req.Role)
		if err != nil {
			badRequest(w, err.Error())
			return
		}
		op.Role = string(role)
	}
	if req.Bots != nil {
		if err := s.CheckBots(ctx, *req.Bots); err != nil {
			badRequest(w, err.Error())
			return
		}
		op.Bots = *req.Bots
	}
	if req.Disabled != nil {
		op.Disabled = *req.Disabled
	}
	if err := grantable(p, admin.Role(op.Role), op.Bots); err != nil {
		admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, err.Error())
		return
	}
	if err := grantable(p, admin.Role(before.Role), before.Bots); err != nil {
		admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, "you cannot change an operator with more rights than yours")
		return
	}
	ops[i] = op
	if ownersLeft(ops) == 0 {
		admin.WriteError(w, http.StatusConflict, admin.CodeConflict, "this would leave no enabled owner of every bot: make another operator owner first")
		return
	}
	op.UpdatedAt = s.now()
	changed := op.Role != before.Role || !slices.Equal(op.Bots, before.Bots) || op.Disabled != before.Disabled
	// The invitations it made (codes carry the rights they grant) die with
	// the rights it had: revoked before the change, so a failure here
	// leaves the operator unchanged and the call can be repeated.
	revoked := 0
	if changed {
		var err error
		if revoked, err = s.st.DeleteEnrollmentsBy(ctx, op.ID); err != nil {
			s.internalError(w, "change operator", err)
			return
		}
	}
	if err := s.st.UpdateOperator(ctx, op); errors.Is(err, store.ErrLastOwner) {
		admin.WriteError(w, http.StatusConflict, admin.CodeConflict, "this would leave no enabled owner of every bot: make another operator owner first")
		return
	} else if err != nil {
		s.internalError(w, "change operator", err)
		return
	}
	if req.Unlock {
		if err := s.st.LoginSucceeded(ctx, op.ID); err != nil {
			s.internalError(w, "change operator", err)
			return
		}
		op.LockedUntil = time.Time{}
	}
	s.retireBootstrap(ctx)
	if changed {
		// Sessions carry no rights of their own, but an operator whose
		// rights changed signs in again.
		if _, err := s.st.DeleteOperatorSessions(ctx, op.ID); err != nil {
			s.internalError(w, "change operator", err)
			return
		}
	}
	s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "operator.update", Target: "operator:" + op.ID,
		Outcome: audit.Success, Client: p.Client, Detail: map[string]string{"role": before.Role + "->" + op.Role,
			"bots": fmt.Sprint(before.Bots) + "->" + fmt.Sprint(op.Bots), "disabled": fmt.Sprint(op.Disabled), "unlock": fmt.Sprint(req.Unlock),
			"invitations_revoked": fmt.Sprint(revoked)}})
	admin.WriteJSON(w, http.StatusOK, map[string]any{"operator": s.viewOperator(op)})
}

// pathOperator lists the operators (the caller checks that an owner
// remains) and finds the one the {operator} path value names: false
// once it has answered (404 for an unknown id).
func (s *Service) pathOperator(w http.ResponseWriter, r *http.Request, verb string) ([]store.Operator, int, bool) {
	ops, err := s.st.ListOperators(r.Context())
	if err != nil {
		s.internalError(w, verb, err)
		return nil, 0, false
	}
	id := r.PathValue("operator")
	i := slices.IndexFunc(ops, func(o store.Operator) bool { return o.ID == id })
	if i < 0 {
		admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, "no such operator")
		return nil, 0, false
	}
	return ops, i, true
}

func (s *Service) deleteOperator(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	ops, i, ok := s.pathOperator(w, r, "remove operator")
	if !ok {
		return
	}
	target := ops[i]
	if err := grantable(p, admin.Role(target.Role), target.Bots); err != nil {
		admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, "you cannot remove an operator with more rights than yours")
		return
	}
	if ownersLeft(slices.Delete(slices.Clone(ops), i, i+1)) == 0 {
		admin.WriteError(w, http.StatusConflict, admin.CodeConflict, "this is the last owner: make another operator owner first")
		return
	}
	// The invitations it made die with it (an owner's would otherwise
	// enroll new owners after its removal): revoked first, so a failure
	// leaves the operator in place and the call can be repeated.
	revoked, err := s.st.DeleteEnrollmentsBy(ctx, target.ID)
	if err != nil {
		s.internalError(w, "remove operator", err)
		return
	}
	if err := s.st.DeleteOperator(ctx, target.ID); errors.Is(err, store.ErrLastOwner) {
		admin.WriteError(w, http.StatusConflict, admin.CodeConflict, "this is the last owner: make another operator owner first")
		return
	} else if err != nil {
		s.internalError(w, "remove operator", err)
		return
	}
	s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "operator.delete", Target: "operator:" + target.ID,
		Outcome: audit.Success, Client: p.Client, Detail: map[string]string{"name": target.Name, "role": target.Role, "invitations_revoked": fmt.Sprint(revoked)}})
	w.WriteHeader(http.StatusNoContent)
}

// --- API tokens ---

type tokenView struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Prefix     string   `json:"prefix"`
	Role       string   `json:"role"`
	Bots       []string `json:"bots"`
	CreatedBy  string   `json:"createdBy"`
	CreatedAt  string   `json:"createdAt"`
	ExpiresAt  string   `json:"expiresAt"`
	RevokedAt  string   `json:"revokedAt"`
	LastUsedAt string   `json:"lastUsedAt"`
}

func viewToken(t store.APIToken) tokenView {
	return tokenView{ID: t.ID, Name: t.Name, Prefix: t.Prefix, Role: t.Role, Bots: nonNil(t.Bots), CreatedBy: t.CreatedBy,
		CreatedAt: ts(t.CreatedAt), ExpiresAt: ts(t.ExpiresAt), RevokedAt: ts(t.RevokedAt), LastUsedAt: ts(t.LastUsedAt)}
}

// tokenOwner refuses the token routes to anything but a signed-in
// operator: a token cannot mint or manage tokens (no chain of ever longer
// lived credentials).
func tokenOwner(w http.ResponseWriter, p admin.Principal) bool {
	if p.Kind != admin.KindOperator {
		admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, "API tokens are managed by operators signed in to the console, not by tokens")
		return false
	}
	return true
}

func (s *Service) listTokens(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	if !tokenOwner(w, p) {
		return
	}
	by := p.ID
	if p.Role == admin.RoleOwner && len(p.Bots) == 0 {
		by = ""
	}
	ts, err := s.st.ListAPITokens(r.Context(), by)
	if err != nil {
		s.internalError(w, "list tokens", err)
		return
	}
	out := []tokenView{}
	for _, t := range ts {
		out = append(out, viewToken(t))
	}
	admin.WriteJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

type createTokenRequest struct {
	Name          string   `json:"name"`
	Role          string   `json:"role"`
	Bots          []string `json:"bots"`
	ExpiresInDays int      `json:"expiresInDays"`
}

func (s *Service) createToken(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	if !tokenOwner(w, p) {
		return
	}
	var req createTokenRequest
	if !decode(w, r, &req) {
		return
	}
	if !namePattern.MatchString(req.Name) {
		badRequest(w, "name: "+msgName)
		return
	}
	role := p.Role
	if req.Role != "" {
		var err error
		if role, err = admin.ParseRole(req.Role); err != nil {
			badRequest(w, err.Error())
			return
		}
	}
	bots := req.Bots
	if bots == nil {
		bots = p.Bots
	} else if err := s.CheckBots(ctx, bots); err != nil {
		badRequest(w, err.Error())
		return
	}
	if err := grantable(p, role, bots); err != nil {
		s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "token.create", Outcome: audit.Denied, Client: p.Client,
			Detail: map[string]string{"reason": err.Error()}})
		admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, err.Error())
		return
	}
	// An owner token holds every right for up to a year: like inviting an
	// owner, minting one needs a recent re-authentication, so a stolen
	// session cookie alone cannot turn into a lasting credential.
	if role == admin.RoleOwner && !s.Reauthenticated(p) {
		s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "token.create", Target: "role:owner",
			Outcome: audit.Denied, Client: p.Client, Detail: map[string]string{"reason": "reauth"}})
		admin.WriteError(w, http.StatusForbidden, admin.CodeReauth, "an owner token needs a recent sign-in: re-authenticate (POST /admin/v1/session/reauth) and try again")
		return
	}
	life := time.Duration(s.settings().TokenTTL)
	if req.ExpiresInDays != 0 {
		life = time.Duration(req.ExpiresInDays) * 24 * time.Hour
	}
	if maxLife := time.Duration(s.settings().TokenMaxTTL); life < time.Hour || life > maxLife {
		badRequest(w, fmt.Sprintf("expires_in_days: use 1 to %d", int(maxLife/(24*time.Hour))))
		return
	}
	secret := TokenPrefix + randomString(32)
	now := s.now()
	t := store.APIToken{ID: newID("tok_"), Hash: hashOf(secret), Prefix: secret[:len(TokenPrefix)+4], Name: req.Name, Role: string(role),
		Bots: bots, CreatedBy: p.ID, CreatedAt: now, ExpiresAt: now.Add(life)}
	if err := s.st.CreateAPIToken(ctx, t); err != nil {
		s.internalError(w, "create token", err)
		return
	}
	s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "token.create", Target: "token:" + t.ID, Outcome: audit.Success,
		Client: p.Client, Detail: map[string]string{"role": t.Role, "bots": fmt.Sprint(t.Bots), "expires_at": ts(t.ExpiresAt)}})
	admin.WriteJSON(w, http.StatusCreated, map[string]any{"token": secret, "info": viewToken(t)})
}

func (s *Service) revokeToken(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	if !tokenOwner(w, p) {
		return
	}
	t, err := s.st.GetAPIToken(ctx, r.PathValue("token"))
	if err != nil || (t.CreatedBy != p.ID && !(p.Role == admin.RoleOwner && len(p.Bots) == 0)) {
		admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, "no such token")
		return
	}
	if err := s.st.RevokeAPIToken(ctx, t.ID, s.now()); err != nil {
		s.internalError(w, "revoke token", err)
		return
	}
	s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "token.revoke", Target: "token:" + t.ID, Outcome: audit.Success, Client: p.Client})
	w.WriteHeader(http.StatusNoContent)
}

// retireBootstrap invalidates the bootstrap code once an owner of every
// bot is usable: the code was printed to the server's stderr (often a
// shared log) and must not enroll a second owner later, whichever code
// the first owner used.
func (s *Service) retireBootstrap(ctx context.Context) {
	ops, err := s.st.ListOperators(ctx)
	if err != nil || ownersLeft(ops) == 0 {
		return
	}
	if n, err := s.st.DeleteBootstrapEnrollments(ctx); err != nil {
		s.log.Error("invalidate the bootstrap code", "err", err)
	} else if n > 0 {
		s.record(ctx, audit.Event{Actor: "local:bootstrap", Action: "operator.bootstrap_revoke", Target: "role:owner", Outcome: audit.Success,
			Detail: map[string]string{"codes": strconv.Itoa(n), "reason": "an owner exists"}})
	}
}
