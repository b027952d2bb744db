package operator

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/guard"
	"github.com/parley-gw/parley/internal/store"
)

// Handlers serves this package's admin routes, keyed "METHOD PATTERN" as
// in admin.Routes. Public ones guard themselves (rate limit per client
// address, origin check, credential checks); the others expect the admin
// API's middleware to have authenticated and authorized the request and
// read the principal from admin.PrincipalFrom.
func (s *Service) Handlers() map[string]http.Handler {
	p := admin.Prefix
	return map[string]http.Handler{
		"POST " + p + "/session":                    s.public(s.login),
		"GET " + p + "/session":                     s.signedIn(s.getSession),
		"DELETE " + p + "/session":                  s.signedIn(s.signOut),
		"POST " + p + "/session/reauth":             s.signedIn(s.reauth),
		"POST " + p + "/enroll":                     s.public(s.enroll),
		"POST " + p + "/enroll/totp":                s.public(s.enrollTOTP),
		"GET " + p + "/sso/login":                   s.ssoProbe(s.public(s.ssoLogin)),
		"GET " + p + "/sso/callback":                s.public(s.ssoCallback),
		"POST " + p + "/me/password":                s.signedIn(s.changePassword),
		"POST " + p + "/me/recovery-codes":          s.signedIn(s.regenerateRecovery),
		"GET " + p + "/operators":                   s.signedIn(s.listOperators),
		"POST " + p + "/operators":                  s.signedIn(s.inviteOperator),
		"PATCH " + p + "/operators/{operator}":      s.signedIn(s.patchOperator),
		"DELETE " + p + "/operators/{operator}":     s.signedIn(s.deleteOperator),
		"GET " + p + "/invitations":                 s.signedIn(s.listInvitations),
		"DELETE " + p + "/invitations/{invitation}": s.signedIn(s.revokeInvitation),
		"GET " + p + "/tokens":                      s.signedIn(s.listTokens),
		"POST " + p + "/tokens":                     s.signedIn(s.createToken),
		"DELETE " + p + "/tokens/{token}":           s.signedIn(s.revokeToken),
		// Passkeys (webauthn.go).
		"POST " + p + "/session/passkey":                           s.public(s.loginPasskey),
		"POST " + p + "/session/passkey/begin":                     s.public(s.beginPasswordless),
		"POST " + p + "/session/reauth/passkey/begin":              s.signedIn(s.reauthPasskeyBegin),
		"POST " + p + "/session/reauth/passkey/finish":             s.signedIn(s.reauthPasskeyFinish),
		"GET " + p + "/me/passkeys":                                s.signedIn(s.listPasskeys),
		"POST " + p + "/me/passkeys/begin":                         s.signedIn(s.registerPasskeyBegin),
		"POST " + p + "/me/passkeys/finish":                        s.signedIn(s.registerPasskeyFinish),
		"GET " + p + "/operators/{operator}/passkeys":              s.signedIn(s.operatorPasskeys),
		"DELETE " + p + "/operators/{operator}/passkeys/{passkey}": s.signedIn(s.deleteOperatorPasskey),
		"DELETE " + p + "/me/passkeys/{passkey}":                   s.signedIn(s.deletePasskey),
	}
}

// ssoProbe answers GET /sso/login?probe=1 at once: 204 when single
// sign-on is configured, 404 when not. It starts no sign-in and holds no
// state, so the console's sign-in page asks it on every load without
// spending the address's sign-in budget or a pending-SSO slot.
func (s *Service) ssoProbe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("probe") != "1" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if s.sso == nil {
			admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, "single sign-on is not configured: sign in with name, password and code")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// public wraps a public route: a rate limit per client address, and for
// POST the origin check (a sign-in or enrollment from another site is
// refused: login CSRF).
func (s *Service) public(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := s.limiter.Allow(guard.Bucket{Rule: s.loginRule, Key: s.addrKey(r)}); d > 0 {
			tooMany(w, d, "too many requests from your address: wait and try again")
			return
		}
		if stateChanging(r.Method) && !s.sameOrigin(r) {
			admin.WriteError(w, http.StatusForbidden, admin.CodeCSRF, "the request comes from another site: use the console on this server")
			return
		}
		h(w, r)
	})
}

type principalHandler func(w http.ResponseWriter, r *http.Request, p admin.Principal)

// signedIn reads the principal the admin API's middleware put in the
// context; without one (a wiring mistake) it answers 401.
func (s *Service) signedIn(h principalHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := admin.PrincipalFrom(r.Context())
		if !ok {
			admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "sign in first")
			return
		}
		h(w, r, p)
	})
}

func tooMany(w http.ResponseWriter, d time.Duration, msg string) {
	secs := int((d + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	admin.WriteError(w, http.StatusTooManyRequests, admin.CodeTooMany, msg)
}

func (s *Service) internalError(w http.ResponseWriter, what string, err error) {
	s.log.Error(what, "err", err)
	admin.WriteError(w, http.StatusInternalServerError, admin.CodeInternal, "something went wrong on the server: try again, and tell the operator if it persists")
}

func badRequest(w http.ResponseWriter, msg string) {
	admin.WriteError(w, http.StatusBadRequest, admin.CodeBadRequest, msg)
}

const msgBadCredentials = "the name or password is wrong"
const msgMFA = "enter the current 6-digit code from your authenticator app, or one of your recovery codes"

// --- sign-in ---

type loginRequest struct {
	Name         string `json:"name"`
	Password     string `json:"password"`
	TOTP         string `json:"totp"`
	RecoveryCode string `json:"recoveryCode"`
}

type loginResponse struct {
	sessionView
	RecoveryCodesLeft int `json:"recoveryCodesLeft"`
}

func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req loginRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Name == "" || req.Password == "" {
		badRequest(w, "send name and password (and totp or recoveryCode)")
		return
	}
	client := s.client(r)
	adm, wait, ok := s.guesses.Admit(ctx, s.addrKey(r))
	if !ok {
		s.record(ctx, audit.Event{Actor: "anonymous", Action: "session.login", Outcome: audit.Failure, Client: client,
			Detail: map[string]string{"reason": "address throttled"}})
		tooMany(w, wait, "too many failed sign-ins from your address: wait and try again")
		return
	}
	// Taken before the operator is read: a failure counted by a sign-in
	// that has given its slot back is in what this one reads.
	others, release := s.guessing.enter(strings.ToLower(req.Name))
	defer release()
	op, err := s.st.OperatorByName(ctx, req.Name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.internalError(w, "sign in", err)
		return
	}
	known := err == nil && !op.Disabled && op.PasswordHash != "" && op.TOTPConfirmed
	if known && s.now().Before(op.LockedUntil) {
		s.record(ctx, audit.Event{Actor: "anonymous", Action: "session.login", Target: "operator:" + op.ID, Outcome: audit.Failure,
			Client: client, Detail: map[string]string{"reason": "locked"}})
		tooMany(w, op.LockedUntil.Sub(s.now()), "this account is locked after too many failed sign-ins: wait and try again, or ask an owner to unlock it")
		return
	}
	// Each sign-in being checked may fail and count: no more are checked
	// at once than the failures left before the lockout, so a parallel
	// burst gets no more answers than the lockout allows (in this
	// process; the re-check after the hash covers other replicas).
	if s.outrunsLockout(others, op, known) {
		s.record(ctx, audit.Event{Actor: "anonymous", Action: "session.login", Target: targetOf(op, known), Outcome: audit.Failure,
			Client: client, Detail: map[string]string{"reason": "concurrent"}})
		tooMany(w, time.Second, "other sign-ins to this account are being checked: try again in a moment")
		return
	}
	// The same work and answer for an unknown name and a wrong password.
	phc := s.dummyHash
	if known {
		phc = op.PasswordHash
	}
	pwOK, rehash := s.verify(phc, req.Password)
	// Parallel guesses all passed the lock check above before any was
	// counted: look again now that the hash is done, so a burst gets no
	// more answers than the lockout allows (nor a password oracle).
	// (The read is made for an unknown name too: the same work.)
	if until, locked := s.lockedNow(ctx, op.ID); known && locked {
		s.record(ctx, audit.Event{Actor: "anonymous", Action: "session.login", Target: "operator:" + op.ID, Outcome: audit.Failure,
			Client: client, Detail: map[string]string{"reason": "locked"}})
		tooMany(w, until.Sub(s.now()), "this account is locked after too many failed sign-ins: wait and try again, or ask an owner to unlock it")
		return
	}
	if !known || !pwOK {
		s.loginFailed(ctx, w, r, adm, op, known, "bad credentials", admin.CodeUnauthenticated, msgBadCredentials)
		return
	}
	if req.TOTP == "" && req.RecoveryCode == "" {
		// An operator with a passkey confirms with it (POST /session/passkey).
		if rehash {
			s.rehash(ctx, op, req.Password)
		}
		sent, err := s.mfaPasskey(ctx, w, r, op)
		if err != nil {
			s.internalError(w, "sign in", err)
			return
		}
		if sent {
			adm.Succeeded()
			return
		}
	}
	second, method, err := s.secondFactor(ctx, op, req.TOTP, req.RecoveryCode)
	if err != nil {
		s.internalError(w, "sign in", err)
		return
	}
	if !second {
		s.loginFailed(ctx, w, r, adm, op, true, "bad second factor", admin.CodeMFARequired, msgMFA)
		return
	}
	if rehash {
		s.rehash(ctx, op, req.Password)
	}
	s.completeLogin(ctx, w, r, adm, op, map[string]string{"mfa": method})
}

// outrunsLockout reports whether one more password check for op, with
// others already being checked for the same name in this process, could
// fail past the lockout: each check under way may fail and count, so no
// more are checked at once than the failures left (known: op exists and
// its failures count).
func (s *Service) outrunsLockout(others int, op store.Operator, known bool) bool {
	limit := s.settings().MaxFailures
	return others >= limit || (known && op.Failures+others >= limit)
}

// lockedNow reads operator id again after a password hash: parallel
// guesses all passed the lock check before any was counted, so a burst
// gets no more answers than the lockout allows (nor a password oracle).
func (s *Service) lockedNow(ctx context.Context, id string) (time.Time, bool) {
	fresh, err := s.st.GetOperator(ctx, id)
	if err != nil || !s.now().Before(fresh.LockedUntil) {
		return time.Time{}, false
	}
	return fresh.LockedUntil, true
}

// completeLogin ends a sign-in whose factors were all accepted (password
// and code, or a passkey): the failures are forgotten, a session starts,
// the sign-in is audited with detail, and the answer is written.
func (s *Service) completeLogin(ctx context.Context, w http.ResponseWriter, r *http.Request, adm guard.Admission, op store.Operator, detail map[string]string) {
	adm.Succeeded()
	if err := s.st.LoginSucceeded(ctx, op.ID); err != nil {
		s.internalError(w, "sign in", err)
		return
	}
	// Forget sessions past their absolute lifetime (the idle ones go when
	// next presented).
	if _, err := s.st.PruneAdminSessions(ctx, s.now()); err != nil {
		s.log.Warn("prune admin sessions", "err", err)
	}
	view, err := s.startSession(ctx, w, r, op)
	if err != nil {
		s.internalError(w, "sign in", err)
		return
	}
	left, _ := s.st.RecoveryCodesLeft(ctx, op.ID)
	s.record(ctx, audit.Event{Actor: "operator:" + op.ID, Role: op.Role, Action: "session.login", Target: "operator:" + op.ID,
		Outcome: audit.Success, Client: s.client(r), Detail: detail})
	admin.WriteJSON(w, http.StatusOK, loginResponse{sessionView: view, RecoveryCodesLeft: left})
}

// secondFactor checks a TOTP code or a recovery code (exactly one).
func (s *Service) secondFactor(ctx context.Context, op store.Operator, code, recovery string) (ok bool, method string, err error) {
	switch {
	case code != "" && recovery == "":
		ok, err = s.checkTOTP(ctx, op.ID, op.TOTPSealed, code)
		return ok, "totp", err
	case recovery != "" && code == "":
		ok, err = s.st.UseRecoveryCode(ctx, op.ID, recoveryHash(op.ID, recovery))
		if ok {
			s.record(ctx, audit.Event{Actor: "operator:" + op.ID, Role: op.Role, Action: "mfa.recovery_code_used", Target: "operator:" + op.ID, Outcome: audit.Success})
		}
		return ok, "recovery_code", err
	}
	return false, "", nil
}

// loginFailed counts and records a failed sign-in (or re-authentication)
// and answers it.
// targetOf is the audit target of a sign-in: the operator when known.
func targetOf(op store.Operator, known bool) string {
	if known {
		return "operator:" + op.ID
	}
	return ""
}

// inflight counts the sign-ins being checked, by key.
type inflight struct {
	mu sync.Mutex
	n  map[string]int
}

// enter counts one more sign-in for key and returns how many others
// were being checked, and the release to call when this one is answered
// (after its failure, if any, is counted).
func (f *inflight) enter(key string) (others int, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	others = f.n[key]
	f.n[key]++
	return others, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.n[key]--; f.n[key] <= 0 {
			delete(f.n, key)
		}
	}
}

func (s *Service) loginFailed(ctx context.Context, w http.ResponseWriter, r *http.Request, adm interface {
	Failed() (time.Duration, bool)
}, op store.Operator, known bool, reason, code, msg string) {
	client := s.client(r)
	e := audit.Event{Actor: "anonymous", Action: "session.login", Outcome: audit.Failure, Client: client, Detail: map[string]string{"reason": reason}}
	if known {
		e.Target = "operator:" + op.ID
		until, err := s.st.LoginFailed(ctx, op.ID, s.now(), s.settings().MaxFailures, time.Duration(s.settings().LockoutFor))
		if err != nil {
			s.log.Error("count failed sign-in", "err", err)
		} else if !until.IsZero() {
			s.record(ctx, audit.Event{Actor: "anonymous", Action: "session.lockout", Target: "operator:" + op.ID, Outcome: audit.Denied,
				Client: client, Detail: map[string]string{"until": ts(until)}})
		}
	}
	s.record(ctx, e)
	if adm != nil {
		if d, over := adm.Failed(); over {
			tooMany(w, d, "too many failed sign-ins from your address: wait and try again")
			return
		}
	}
	admin.WriteError(w, http.StatusUnauthorized, code, msg)
}

// rehash stores a new hash of a password whose hash has old parameters.
func (s *Service) rehash(ctx context.Context, op store.Operator, password string) {
	h, err := s.hash(password)
	if err != nil {
		return
	}
	fresh, err := s.st.GetOperator(ctx, op.ID)
	if err != nil {
		return
	}
	fresh.PasswordHash, fresh.UpdatedAt = h, s.now()
	if err := s.st.UpdateOperator(ctx, fresh); err != nil {
		s.log.Warn("re-hash password", "err", err)
	}
}

// --- session ---

// sessionOf loads the console session behind p (for the session routes).
func (s *Service) sessionOf(ctx context.Context, p admin.Principal) (store.AdminSession, error) {
	h, err := hex.DecodeString(p.SessionID)
	if err != nil {
		return store.AdminSession{}, store.ErrNotFound
	}
	return s.st.GetAdminSession(ctx, h)
}

func (s *Service) getSession(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	if p.Kind == admin.KindToken {
		t, err := s.st.GetAPIToken(ctx, p.ID)
		if err != nil {
			admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "the token is no longer valid")
			return
		}
		admin.WriteJSON(w, http.StatusOK, sessionView{Operator: operatorRef{ID: t.CreatedBy, Name: t.Name, Role: t.Role, Bots: nonNil(t.Bots)},
			Kind: string(admin.KindToken), ExpiresAt: ts(t.ExpiresAt)})
		return
	}
	sess, err := s.sessionOf(ctx, p)
	c, cerr := r.Cookie(s.cookieName())
	if err != nil || cerr != nil || !bytesEqual(hashOf(c.Value), sess.IDHash) {
		admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "sign in first")
		return
	}
	op, err := s.st.GetOperator(ctx, p.ID)
	if err != nil {
		admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "sign in first")
		return
	}
	admin.WriteJSON(w, http.StatusOK, s.view(op, sess, c.Value))
}

func bytesEqual(a, b []byte) bool { return len(a) == len(b) && string(a) == string(b) }

func (s *Service) signOut(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	if p.Kind != admin.KindOperator {
		admin.WriteError(w, http.StatusBadRequest, admin.CodeBadRequest, "an API token has no session: revoke it with DELETE /admin/v1/tokens/{id}")
		return
	}
	if h, err := hex.DecodeString(p.SessionID); err == nil {
		if err := s.st.DeleteAdminSession(ctx, h); err != nil {
			s.internalError(w, "sign out", err)
			return
		}
	}
	s.clearCookie(w)
	s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "session.logout", Target: "operator:" + p.ID, Outcome: audit.Success, Client: p.Client})
	w.WriteHeader(http.StatusNoContent)
}

type reauthRequest struct {
	Password     string `json:"password"`
	TOTP         string `json:"totp"`
	RecoveryCode string `json:"recoveryCode"`
}

func (s *Service) reauth(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	if p.Kind != admin.KindOperator {
		admin.WriteError(w, http.StatusForbidden, admin.CodeReauth, "API tokens cannot re-authenticate: sign in to the console")
		return
	}
	var req reauthRequest
	if !decode(w, r, &req) {
		return
	}
	sess, err := s.sessionOf(ctx, p)
	if err != nil {
		admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "sign in first")
		return
	}
	// A stolen session cookie must not buy more password guesses than a
	// sign-in: the same address limit, the same in-process slots per
	// operator, the same re-check after the hash.
	adm, wait, ok := s.guesses.Admit(ctx, s.addrKey(r))
	if !ok {
		s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "session.reauth", Target: "operator:" + p.ID, Outcome: audit.Failure,
			Client: p.Client, Detail: map[string]string{"reason": "address throttled"}})
		tooMany(w, wait, "too many failed attempts from your address: wait and try again")
		return
	}
	op, err := s.st.GetOperator(ctx, p.ID)
	if err != nil {
		admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "sign in first")
		return
	}
	others, release := s.guessing.enter(strings.ToLower(op.Name))
	defer release()
	if op, err = s.st.GetOperator(ctx, p.ID); err != nil { // failures counted by checks that gave their slot back
		admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "sign in first")
		return
	}
	if s.now().Before(op.LockedUntil) {
		tooMany(w, op.LockedUntil.Sub(s.now()), "this account is locked after too many failed attempts: wait and try again")
		return
	}
	if op.SSOSubject != "" && op.PasswordHash == "" {
		admin.WriteError(w, http.StatusForbidden, admin.CodeReauth, "sign in again through single sign-on: GET /admin/v1/sso/login")
		return
	}
	if s.outrunsLockout(others, op, true) {
		s.record(ctx, audit.Event{Actor: p.Label(), Role: op.Role, Action: "session.reauth", Target: "operator:" + op.ID, Outcome: audit.Failure,
			Client: p.Client, Detail: map[string]string{"reason": "concurrent"}})
		tooMany(w, time.Second, "other attempts for this account are being checked: try again in a moment")
		return
	}
	pwOK, _ := s.verify(op.PasswordHash, req.Password)
	if until, locked := s.lockedNow(ctx, op.ID); locked {
		tooMany(w, until.Sub(s.now()), "this account is locked after too many failed attempts: wait and try again")
		return
	}
	if !pwOK {
		s.reauthFailed(ctx, w, r, adm, op, admin.CodeUnauthenticated, "the password is wrong")
		return
	}
	ok, _, err = s.secondFactor(ctx, op, req.TOTP, req.RecoveryCode)
	if err != nil {
		s.internalError(w, "re-authenticate", err)
		return
	}
	if !ok {
		s.reauthFailed(ctx, w, r, adm, op, admin.CodeMFARequired, msgMFA)
		return
	}
	adm.Succeeded()
	now := s.now()
	if err := s.st.ReauthAdminSession(ctx, sess.IDHash, now); err != nil {
		s.internalError(w, "re-authenticate", err)
		return
	}
	_ = s.st.LoginSucceeded(ctx, op.ID)
	s.record(ctx, audit.Event{Actor: p.Label(), Role: op.Role, Action: "session.reauth", Target: "operator:" + op.ID, Outcome: audit.Success, Client: p.Client})
	admin.WriteJSON(w, http.StatusOK, map[string]string{"reauthUntil": ts(now.Add(time.Duration(s.settings().ReauthWindow)))})
}

func (s *Service) reauthFailed(ctx context.Context, w http.ResponseWriter, r *http.Request, adm interface {
	Failed() (time.Duration, bool)
}, op store.Operator, code, msg string) {
	until, err := s.st.LoginFailed(ctx, op.ID, s.now(), s.settings().MaxFailures, time.Duration(s.settings().LockoutFor))
	if err == nil && !until.IsZero() {
		s.record(ctx, audit.Event{Actor: "operator:" + op.ID, Role: op.Role, Action: "session.lockout", Target: "operator:" + op.ID,
			Outcome: audit.Denied, Client: s.client(r), Detail: map[string]string{"until": ts(until)}})
		// A locked operator's sessions end too.
		_, _ = s.st.DeleteOperatorSessions(ctx, op.ID)
	}
	s.record(ctx, audit.Event{Actor: "operator:" + op.ID, Role: op.Role, Action: "session.reauth", Target: "operator:" + op.ID,
		Outcome: audit.Failure, Client: s.client(r)})
	if adm != nil {
		if d, over := adm.Failed(); over {
			tooMany(w, d, "too many failed attempts from your address: wait and try again")
			return
		}
	}
	admin.WriteError(w, http.StatusUnauthorized, code, msg)
}

// --- enrollment ---

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

const msgName = "the name must be 1 to 64 letters, digits, dots, dashes, underscores or @, starting with a letter or digit"

type enrollRequest struct {
	Code     string `json:"code"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

type enrollResponse struct {
	EnrollmentID string `json:"enrollmentId"`
	TOTPURI      string `json:"totpUri"`
	TOTPSecret   string `json:"totpSecret"`
	QRPNG        string `json:"qrPng"`
	ExpiresAt    string `json:"expiresAt"`
}

// enrollStepTTL is how long the second enrollment step waits.
const enrollStepTTL = 15 * time.Minute

func (s *Service) enroll(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req enrollRequest
	if !decode(w, r, &req) {
		return
	}
	if !namePattern.MatchString(req.Name) {
		badRequest(w, msgName)
		return
	}
	if err := CheckPassword(req.Name, req.Password); err != nil {
		badRequest(w, err.Error())
		return
	}
	adm, wait, ok := s.guesses.Admit(ctx, s.addrKey(r))
	if !ok {
		tooMany(w, wait, "too many failed attempts from your address: wait and try again")
		return
	}
	ph, err := s.hash(req.Password)
	if err != nil {
		s.internalError(w, "enroll", err)
		return
	}
	id := newID("op_")
	key, err := s.newTOTP(req.Name)
	if err != nil {
		s.internalError(w, "enroll", err)
		return
	}
	sealed, err := s.sealTOTP(ctx, id, key.Secret())
	if err != nil {
		s.internalError(w, "enroll", err)
		return
	}
	handle := enrollStepPrefix + randomString(32)
	now := s.now()
	op, err := s.st.EnrollOperator(ctx, hashOf(req.Code), now, store.Operator{ID: id, Name: req.Name, PasswordHash: ph, TOTPSealed: sealed,
		EnrollHash: hashOf(handle), EnrollUntil: now.Add(enrollStepTTL), CreatedAt: now, UpdatedAt: now})
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.record(ctx, audit.Event{Actor: "anonymous", Action: "operator.enroll", Outcome: audit.Failure, Client: s.client(r),
			Detail: map[string]string{"reason": "bad code"}})
		if d, over := adm.Failed(); over {
			tooMany(w, d, "too many failed attempts from your address: wait and try again")
			return
		}
		admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "the enrollment code is wrong, used or expired: ask an owner for a new one")
		return
	case errors.Is(err, store.ErrExists):
		adm.Succeeded()
		admin.WriteError(w, http.StatusConflict, admin.CodeConflict, "that name is taken: choose another")
		return
	case err != nil:
		s.internalError(w, "enroll", err)
		return
	}
	adm.Succeeded()
	qr, err := qrDataURL(key)
	if err != nil {
		s.internalError(w, "enroll", err)
		return
	}
	s.record(ctx, audit.Event{Actor: "operator:" + op.ID, Role: op.Role, Action: "operator.enroll", Target: "operator:" + op.ID,
		Outcome: audit.Success, Client: s.client(r), Detail: map[string]string{"step": "password", "name": op.Name}})
	admin.WriteJSON(w, http.StatusOK, enrollResponse{EnrollmentID: handle, TOTPURI: key.URL(), TOTPSecret: key.Secret(), QRPNG: qr,
		ExpiresAt: ts(now.Add(enrollStepTTL))})
}

type enrollTOTPRequest struct {
	EnrollmentID string `json:"enrollmentId"`
	TOTP         string `json:"totp"`
}

type enrollTOTPResponse struct {
	sessionView
	RecoveryCodes []string `json:"recoveryCodes"`
}

func (s *Service) enrollTOTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req enrollTOTPRequest
	if !decode(w, r, &req) {
		return
	}
	adm, wait, ok := s.guesses.Admit(ctx, s.addrKey(r))
	if !ok {
		tooMany(w, wait, "too many failed attempts from your address: wait and try again")
		return
	}
	op, err := s.st.OperatorByEnrollHash(ctx, hashOf(req.EnrollmentID))
	if err != nil || op.TOTPConfirmed || !s.now().Before(op.EnrollUntil) {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.internalError(w, "enroll", err)
			return
		}
		if d, over := adm.Failed(); over {
			tooMany(w, d, "too many failed attempts from your address: wait and try again")
			return
		}
		admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "the enrollment is unknown or expired: start again with a new enrollment code")
		return
	}
	ok, err = s.checkTOTP(ctx, op.ID, op.TOTPSealed, req.TOTP)
	if err != nil {
		s.internalError(w, "enroll", err)
		return
	}
	if !ok {
		s.record(ctx, audit.Event{Actor: "operator:" + op.ID, Role: op.Role, Action: "mfa.enroll", Target: "operator:" + op.ID,
			Outcome: audit.Failure, Client: s.client(r)})
		if d, over := adm.Failed(); over {
			tooMany(w, d, "too many failed attempts from your address: wait and try again")
			return
		}
		admin.WriteError(w, http.StatusUnauthorized, admin.CodeMFARequired, "the code is wrong: enter the current 6-digit code your authenticator app shows for Parley")
		return
	}
	adm.Succeeded()
	codes, hashes := newRecoveryCodes(op.ID)
	if err := s.st.SetRecoveryCodes(ctx, op.ID, hashes); err != nil {
		s.internalError(w, "enroll", err)
		return
	}
	op.TOTPConfirmed, op.EnrollHash, op.EnrollUntil, op.UpdatedAt = true, nil, time.Time{}, s.now()
	if err := s.st.UpdateOperator(ctx, op); err != nil {
		s.internalError(w, "enroll", err)
		return
	}
	s.retireBootstrap(ctx)
	view, err := s.startSession(ctx, w, r, op)
	if err != nil {
		s.internalError(w, "enroll", err)
		return
	}
	s.record(ctx, audit.Event{Actor: "operator:" + op.ID, Role: op.Role, Action: "mfa.enroll", Target: "operator:" + op.ID,
		Outcome: audit.Success, Client: s.client(r), Detail: map[string]string{"method": "totp", "recovery_codes": strconv.Itoa(len(codes))}})
	admin.WriteJSON(w, http.StatusOK, enrollTOTPResponse{sessionView: view, RecoveryCodes: codes})
}

// --- me ---

type passwordRequest struct {
	NewPassword string `json:"newPassword"`
}

func (s *Service) changePassword(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	if p.Kind != admin.KindOperator {
		admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, "only a signed-in operator changes their password")
		return
	}
	var req passwordRequest
	if !decode(w, r, &req) {
		return
	}
	op, err := s.st.GetOperator(ctx, p.ID)
	if err != nil {
		admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, "sign in first")
		return
	}
	if err := CheckPassword(op.Name, req.NewPassword); err != nil {
		badRequest(w, err.Error())
		return
	}
	h, err := s.hash(req.NewPassword)
	if err != nil {
		s.internalError(w, "change password", err)
		return
	}
	op.PasswordHash, op.UpdatedAt = h, s.now()
	if err := s.st.UpdateOperator(ctx, op); err != nil {
		s.internalError(w, "change password", err)
		return
	}
	// Every other session of the operator ends (ASVS V7.4.3); this one
	// goes on under a new id.
	if _, err := s.st.DeleteOperatorSessions(ctx, op.ID); err != nil {
		s.internalError(w, "change password", err)
		return
	}
	view, err := s.startSession(ctx, w, r, op)
	if err != nil {
		s.internalError(w, "change password", err)
		return
	}
	s.record(ctx, audit.Event{Actor: p.Label(), Role: op.Role, Action: "operator.password", Target: "operator:" + op.ID, Outcome: audit.Success, Client: p.Client})
	admin.WriteJSON(w, http.StatusOK, view)
}

type emptyRequest struct{}

func (s *Service) regenerateRecovery(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ctx := r.Context()
	if p.Kind != admin.KindOperator {
		admin.WriteError(w, http.StatusForbidden, admin.CodeForbidden, "only a signed-in operator regenerates their recovery codes")
		return
	}
	if r.ContentLength != 0 {
		var req emptyRequest
		if !decode(w, r, &req) {
			return
		}
	}
	codes, hashes := newRecoveryCodes(p.ID)
	if err := s.st.SetRecoveryCodes(ctx, p.ID, hashes); err != nil {
		s.internalError(w, "regenerate recovery codes", err)
		return
	}
	s.record(ctx, audit.Event{Actor: p.Label(), Role: string(p.Role), Action: "mfa.recovery_codes", Target: "operator:" + p.ID, Outcome: audit.Success, Client: p.Client})
	admin.WriteJSON(w, http.StatusOK, map[string][]string{"recoveryCodes": codes})
}
