package operator

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/guard"
	"github.com/parley-gw/parley/internal/store"
)

// Cookie names: __Host- (Secure, Path=/, no Domain: bound to this host)
// on HTTPS; the plain name on plain-HTTP loopback, where a browser
// refuses Secure cookies.
const (
	CookieSecure   = "__Host-parley_admin"
	CookieLoopback = "parley_admin"
	// CSRFHeader carries the session's CSRF token on every state-changing
	// request authenticated by the cookie.
	CSRFHeader = "X-CSRF-Token"
)

func (s *Service) cookieName() string {
	if s.cfg.Secure {
		return CookieSecure
	}
	return CookieLoopback
}

// csrfToken is derived from the cookie value (HMAC keyed by it), so it is
// not stored, changes with every session, and cannot be computed without
// the HttpOnly cookie.
func csrfToken(cookie string) string {
	m := hmac.New(sha256.New, []byte(cookie))
	m.Write([]byte("parley admin csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// sameOrigin checks the browser's Origin and Sec-Fetch-Site headers when
// present: a request from another site is refused even with a cookie.
func (s *Service) sameOrigin(r *http.Request) bool {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	return o == s.ownOrigin(r)
}

func (s *Service) ownOrigin(r *http.Request) string {
	if s.cfg.Origin != "" {
		return strings.TrimRight(s.cfg.Origin, "/")
	}
	scheme := "http"
	if r.TLS != nil || s.cfg.Secure {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: r.Host}).String()
}

// Authenticate finds the principal of r: an API token (Authorization:
// Bearer ptk_...) or a console session cookie. For cookie-authenticated
// POST, PUT, PATCH and DELETE it checks the CSRF token and the origin.
// Errors: ErrUnauthenticated, ErrCSRF (or a store error).
func (s *Service) Authenticate(r *http.Request) (admin.Principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(tok, TokenPrefix) {
			return admin.Principal{}, ErrUnauthenticated
		}
		return s.authToken(ctx, r, tok)
	}
	c, err := r.Cookie(s.cookieName())
	if err != nil || c.Value == "" {
		return admin.Principal{}, ErrUnauthenticated
	}
	sess, op, err := s.session(ctx, c.Value)
	if err != nil {
		return admin.Principal{}, err
	}
	// Signing out is never refused by the request limit, but only once
	// its CSRF token is right: a refusal is recorded, and so is limited.
	signOut := r.Method == http.MethodDelete && r.URL.Path == admin.Prefix+"/session"
	opKey := string(admin.KindOperator) + ":" + op.ID
	if !signOut {
		if err := s.admit(opKey, op.ID); err != nil {
			return admin.Principal{}, err
		}
	}
	if stateChanging(r.Method) {
		got := r.Header.Get(CSRFHeader)
		if !s.sameOrigin(r) || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(csrfToken(c.Value))) != 1 {
			if signOut {
				if err := s.admit(opKey, op.ID); err != nil {
					return admin.Principal{}, err
				}
			}
			s.record(ctx, audit.Event{Actor: "operator:" + op.ID, Role: op.Role, Action: "session.csrf", Target: "operator:" + op.ID,
				Outcome: audit.Denied, Client: s.client(r), Detail: map[string]string{"method": r.Method, "path": r.URL.Path}})
			return admin.Principal{}, ErrCSRF
		}
	}
	if err := s.st.TouchAdminSession(ctx, sess.IDHash, s.now()); err != nil {
		return admin.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	return admin.Principal{Kind: admin.KindOperator, ID: op.ID, Name: op.Name, Role: admin.Role(op.Role), Bots: op.Bots,
		Client: s.client(r), SessionID: hex.EncodeToString(sess.IDHash), Operator: op.ID}, nil
}

// RateLimitedError is Authenticate's answer to an operator past
// operators.request_rate: the admin API answers 429 with Retry-After.
type RateLimitedError struct{ Wait time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("authenticate: too many admin requests: retry in %s", e.Wait)
}

// RetryAfter is how long to wait before the next request is allowed.
func (e *RateLimitedError) RetryAfter() time.Duration { return e.Wait }

// RateLimited is how many admin requests operators.request_rate refused
// since the start (for the metrics).
func (s *Service) RateLimited() float64 {
	return s.limiter.Refused(s.requestRule.Name) + s.limiter.Refused(s.operatorRule.Name)
}

// operatorShare is how many credentials' allowances an operator's
// credentials share: each (the operator's console sessions together, or
// one API token) has operators.request_rate, and all of one operator's
// together three times that. Minting tokens does not multiply it, and one
// leaked token cannot spend its creator's whole allowance.
const operatorShare = 3

// admit takes one request of credential cred (operator:ID for the
// console sessions, token:ID for an API token) of operator opID from the
// request limits, before anything about the request is written (its
// audit entries, the session's or token's last use): a refused request
// adds nothing to the audit log.
func (s *Service) admit(cred, opID string) error {
	if s.requestRule.Off() {
		return nil
	}
	if wait := s.limiter.Allow(guard.Bucket{Rule: s.requestRule, Key: cred},
		guard.Bucket{Rule: s.operatorRule, Key: string(admin.KindOperator) + ":" + opID}); wait > 0 {
		return &RateLimitedError{Wait: wait}
	}
	return nil
}

// session loads the live session of cookie value v and its operator:
// ErrUnauthenticated when unknown, idle too long, past its absolute
// lifetime, or its operator is gone, disabled or not enrolled.
func (s *Service) session(ctx context.Context, v string) (store.AdminSession, store.Operator, error) {
	sess, err := s.st.GetAdminSession(ctx, hashOf(v))
	if errors.Is(err, store.ErrNotFound) {
		return sess, store.Operator{}, ErrUnauthenticated
	}
	if err != nil {
		return sess, store.Operator{}, fmt.Errorf("authenticate: %w", err)
	}
	now := s.now()
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeen) >= time.Duration(s.settings().SessionIdle) {
		_ = s.st.DeleteAdminSession(ctx, sess.IDHash)
		return sess, store.Operator{}, ErrUnauthenticated
	}
	op, err := s.st.GetOperator(ctx, sess.OperatorID)
	if errors.Is(err, store.ErrNotFound) {
		return sess, op, ErrUnauthenticated
	}
	if err != nil {
		return sess, op, fmt.Errorf("authenticate: %w", err)
	}
	if op.Disabled || !(op.TOTPConfirmed || op.SSOSubject != "") {
		return sess, op, ErrUnauthenticated
	}
	return sess, op, nil
}

func (s *Service) authToken(ctx context.Context, r *http.Request, tok string) (admin.Principal, error) {
	t, err := s.st.APITokenByHash(ctx, hashOf(tok))
	if errors.Is(err, store.ErrNotFound) {
		return admin.Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return admin.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	now := s.now()
	if !t.RevokedAt.IsZero() || !now.Before(t.ExpiresAt) {
		return admin.Principal{}, ErrUnauthenticated
	}
	creator, err := s.st.GetOperator(ctx, t.CreatedBy)
	if errors.Is(err, store.ErrNotFound) {
		return admin.Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return admin.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	// A token never holds more than its creator holds now: a demoted,
	// rescoped or disabled creator's tokens stop working.
	if creator.Disabled || !roleWithin(admin.Role(t.Role), admin.Role(creator.Role)) || !botsWithin(t.Bots, creator.Bots) {
		return admin.Principal{}, ErrUnauthenticated
	}
	if err := s.admit(string(admin.KindToken)+":"+t.ID, creator.ID); err != nil {
		return admin.Principal{}, err
	}
	p := admin.Principal{Kind: admin.KindToken, ID: t.ID, Name: t.Name, Role: admin.Role(t.Role), Bots: t.Bots,
		Client: s.client(r), SessionID: t.ID, Operator: creator.ID}
	if t.LastUsedAt.IsZero() || now.Sub(t.LastUsedAt) > time.Minute {
		_ = s.st.TouchAPIToken(ctx, t.ID, now)
	}
	if stateChanging(r.Method) {
		s.record(ctx, audit.Event{Actor: p.Label(), Role: t.Role, Action: "token.use", Target: "token:" + t.ID, Outcome: audit.Success,
			Client: p.Client, Detail: map[string]string{"method": r.Method, "path": r.URL.Path, "created_by": t.CreatedBy}})
	}
	return p, nil
}

// Reauthenticated reports whether p is a console session re-authenticated
// within the configured window. API tokens never are.
func (s *Service) Reauthenticated(p admin.Principal) bool {
	if p.Kind != admin.KindOperator {
		return false
	}
	h, err := hex.DecodeString(p.SessionID)
	if err != nil || len(h) != sha256.Size {
		return false
	}
	sess, err := s.st.GetAdminSession(context.Background(), h)
	if err != nil || sess.OperatorID != p.ID || sess.ReauthAt.IsZero() {
		return false
	}
	now := s.now()
	return now.Before(sess.ReauthAt.Add(time.Duration(s.settings().ReauthWindow))) && now.Before(sess.ExpiresAt)
}

// rank orders roles: owner 4 ... auditor 1.
func rank(r admin.Role) int {
	i := slices.Index(admin.Roles, r)
	if i < 0 {
		return 0
	}
	return len(admin.Roles) - i
}

// roleWithin reports whether role r is at most limit. The roles form a
// chain except that auditor is not below operator in rights (it reads
// the audit log, which operators cannot): an operator may not grant
// auditor, an auditor only auditor.
func roleWithin(r, limit admin.Role) bool {
	if rank(r) == 0 || rank(limit) == 0 {
		return false
	}
	for _, a := range admin.Actions() {
		if admin.Grants(r, a) && !admin.Grants(limit, a) {
			return false
		}
	}
	return true
}

// botsWithin reports whether scope bots is within limit (empty: every bot).
func botsWithin(bots, limit []string) bool {
	if len(limit) == 0 {
		return true
	}
	if len(bots) == 0 {
		return false
	}
	for _, b := range bots {
		if !slices.Contains(limit, b) {
			return false
		}
	}
	return true
}

// startSession creates a session for op and sets its cookie; it returns
// the session view (with the CSRF token).
func (s *Service) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, op store.Operator) (sessionView, error) {
	return s.newSession(ctx, w, r, op, time.Time{})
}

// newSession is startSession with the session re-authenticated at
// reauthAt (zero: not).
func (s *Service) newSession(ctx context.Context, w http.ResponseWriter, r *http.Request, op store.Operator, reauthAt time.Time) (sessionView, error) {
	v := randomString(32)
	now := s.now()
	sess := store.AdminSession{IDHash: hashOf(v), OperatorID: op.ID, CreatedAt: now, LastSeen: now,
		ExpiresAt: now.Add(time.Duration(s.settings().SessionMax)), Client: s.client(r), ReauthAt: reauthAt}
	if err := s.st.CreateAdminSession(ctx, sess); err != nil {
		return sessionView{}, fmt.Errorf("start session: %w", err)
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: v, Path: "/", HttpOnly: true, Secure: s.cfg.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(time.Duration(s.settings().SessionMax).Seconds())})
	return s.view(op, sess, v), nil
}

func (s *Service) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: "", Path: "/", HttpOnly: true, Secure: s.cfg.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// sessionView is the session part of the sign-in and GET /session answers.
type sessionView struct {
	Operator      operatorRef `json:"operator"`
	Kind          string      `json:"kind"`
	CSRFToken     string      `json:"csrfToken"`
	ExpiresAt     string      `json:"expiresAt"`
	IdleExpiresAt string      `json:"idleExpiresAt"`
	ReauthUntil   string      `json:"reauthUntil"`
}

type operatorRef struct {
	ID   string   `json:"id"`
	Name string   `json:"name"`
	Role string   `json:"role"`
	Bots []string `json:"bots"`
}

func ref(op store.Operator) operatorRef {
	return operatorRef{ID: op.ID, Name: op.Name, Role: op.Role, Bots: nonNil(op.Bots)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (s *Service) view(op store.Operator, sess store.AdminSession, cookie string) sessionView {
	v := sessionView{Operator: ref(op), Kind: string(admin.KindOperator), CSRFToken: csrfToken(cookie),
		ExpiresAt:     ts(sess.ExpiresAt),
		IdleExpiresAt: ts(minTime(sess.LastSeen.Add(time.Duration(s.settings().SessionIdle)), sess.ExpiresAt))}
	if !sess.ReauthAt.IsZero() {
		if until := sess.ReauthAt.Add(time.Duration(s.settings().ReauthWindow)); s.now().Before(until) {
			v.ReauthUntil = ts(until)
		}
	}
	return v
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
