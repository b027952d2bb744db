package operator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/store"
)

// ssoCookie binds an SSO sign-in to the browser that started it.
const ssoCookie = "parley_admin_sso"

// ssoTTL bounds an SSO sign-in from start to callback.
const ssoTTL = 10 * time.Minute

// maxPendingSSO caps sign-ins started and not finished (memory bound).
const maxPendingSSO = 10000

type ssoPending struct {
	nonce, verifier string
	until           time.Time
}

type ssoClient struct {
	cfg config.SSO

	mu       sync.Mutex
	provider *oidc.Provider
	pending  map[string]ssoPending // by state hash
}

// oidcContext carries the HTTP client for talking to the provider.
func (s *Service) oidcContext(ctx context.Context) context.Context {
	if s.cfg.HTTPClient != nil {
		return oidc.ClientContext(ctx, s.cfg.HTTPClient)
	}
	return ctx
}

// msgSSOUnreachable answers a sign-in while the provider cannot be reached.
const msgSSOUnreachable = "the single sign-on provider cannot be reached: try again in a few minutes, or sign in with name, password and code"

// oauth discovers the provider (once it answers) and returns its OAuth2
// config and ID token verifier. Discovery runs without the lock, within
// the provider timeout: while the provider is down or hangs, each sign-in
// waits at most that long, never behind another's attempt.
func (s *Service) oauth(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	c := s.sso
	c.mu.Lock()
	p := c.provider
	c.mu.Unlock()
	if p == nil {
		dctx, cancel := context.WithTimeout(s.oidcContext(ctx), time.Duration(s.cfg.Settings.SSO.Timeout))
		defer cancel()
		found, err := oidc.NewProvider(dctx, c.cfg.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("discover SSO provider %s: %w", c.cfg.Issuer, err)
		}
		c.mu.Lock()
		if c.provider == nil {
			c.provider = found
		}
		p = c.provider
		c.mu.Unlock()
	}
	oc := &oauth2.Config{ClientID: c.cfg.ClientID, ClientSecret: string(c.cfg.ClientSecret), Endpoint: p.Endpoint(),
		RedirectURL: c.cfg.RedirectURL, Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
	return oc, p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID, Now: s.now}), nil
}

// unreachable answers 503 when the provider could not be reached, and
// logs why (the provider's address and the network error: no secret).
func (s *Service) unreachable(w http.ResponseWriter, what string, err error) {
	s.log.Warn(what+": the SSO provider cannot be reached", "err", err)
	w.Header().Set("Retry-After", "60")
	admin.WriteError(w, http.StatusServiceUnavailable, admin.CodeUnavailable, msgSSOUnreachable)
}

func (s *Service) ssoLogin(w http.ResponseWriter, r *http.Request) {
	if s.sso == nil {
		admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, "single sign-on is not configured: sign in with name, password and code")
		return
	}
	oc, _, err := s.oauth(r.Context())
	if err != nil {
		s.unreachable(w, "start SSO", err)
		return
	}
	state, nonce, verifier := randomString(32), randomString(32), oauth2.GenerateVerifier()
	now := s.now()
	c := s.sso
	c.mu.Lock()
	if c.pending == nil {
		c.pending = map[string]ssoPending{}
	}
	for k, p := range c.pending {
		if now.After(p.until) {
			delete(c.pending, k)
		}
	}
	if len(c.pending) >= maxPendingSSO {
		c.mu.Unlock()
		tooMany(w, time.Minute, "too many single sign-ons in progress: try again in a minute")
		return
	}
	c.pending[string(hashOf(state))] = ssoPending{nonce: nonce, verifier: verifier, until: now.Add(ssoTTL)}
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: state, Path: admin.Prefix + "/sso/", HttpOnly: true, Secure: s.cfg.Secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(ssoTTL.Seconds())}) // Lax: the provider's redirect back is a cross-site top-level GET
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if r.URL.Query().Get("reauth") == "1" {
		// Re-authentication: the provider must sign the person in again
		// (the new session counts as re-authenticated when auth_time is
		// fresh).
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0"))
	}
	http.Redirect(w, r, oc.AuthCodeURL(state, opts...), http.StatusFound)
}

func (s *Service) ssoCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.sso == nil {
		admin.WriteError(w, http.StatusNotFound, admin.CodeNotFound, "single sign-on is not configured")
		return
	}
	fail := func(reason, msg string, target string) {
		s.record(ctx, audit.Event{Actor: "anonymous", Action: "session.sso", Target: target, Outcome: audit.Failure, Client: s.client(r),
			Detail: map[string]string{"reason": reason}})
		admin.WriteError(w, http.StatusUnauthorized, admin.CodeUnauthenticated, msg)
	}
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: "", Path: admin.Prefix + "/sso/", HttpOnly: true, Secure: s.cfg.Secure, MaxAge: -1})
	c, err := r.Cookie(ssoCookie)
	state := r.URL.Query().Get("state")
	if err != nil || state == "" || c.Value != state {
		fail("state", "this sign-in was not started in this browser: start again", "")
		return
	}
	s.sso.mu.Lock()
	p, ok := s.sso.pending[string(hashOf(state))]
	delete(s.sso.pending, string(hashOf(state)))
	s.sso.mu.Unlock()
	if !ok || s.now().After(p.until) {
		fail("state", "this sign-in expired or was already used: start again", "")
		return
	}
	if e := r.URL.Query().Get("error"); e != "" {
		fail("provider error", "the identity provider refused the sign-in", "")
		return
	}
	oc, verifier, err := s.oauth(ctx)
	if err != nil {
		s.unreachable(w, "finish SSO", err)
		return
	}
	pctx, cancel := context.WithTimeout(s.oidcContext(ctx), time.Duration(s.cfg.Settings.SSO.Timeout))
	defer cancel()
	tok, err := oc.Exchange(pctx, r.URL.Query().Get("code"), oauth2.VerifierOption(p.verifier))
	var refused *oauth2.RetrieveError
	if err != nil && !errors.As(err, &refused) {
		// Not the provider's answer: it could not be reached.
		s.record(ctx, audit.Event{Actor: "anonymous", Action: "session.sso", Outcome: audit.Failure, Client: s.client(r),
			Detail: map[string]string{"reason": "provider unreachable"}})
		s.unreachable(w, "finish SSO", err)
		return
	}
	if err != nil {
		fail("code exchange", "the identity provider did not confirm the sign-in: start again", "")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(pctx, raw)
	if err != nil || idt.Nonce != p.nonce {
		fail("id token", "the identity provider's answer could not be verified: start again", "")
		return
	}
	var claims struct {
		Email         string   `json:"email"`
		EmailVerified bool     `json:"email_verified"`
		AMR           []string `json:"amr"`
		ACR           string   `json:"acr"`
		AuthTime      int64    `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil {
		fail("claims", "the identity provider's answer could not be read", "")
		return
	}
	subject := idt.Subject
	if s.sso.cfg.Match == "email" {
		if !claims.EmailVerified || claims.Email == "" {
			fail("email not verified", "your identity provider account has no verified e-mail address", "")
			return
		}
		subject = claims.Email
	}
	op, err := s.st.OperatorBySSOSubject(ctx, subject)
	if errors.Is(err, store.ErrNotFound) || (err == nil && op.Disabled) {
		fail("no operator", "no operator is registered for this identity: ask an owner to add you", "")
		return
	}
	if err != nil {
		s.internalError(w, "finish SSO", err)
		return
	}
	if need := s.sso.cfg.RequireAMR; len(need) > 0 && !slices.ContainsFunc(claims.AMR, func(a string) bool { return slices.Contains(need, a) }) {
		fail("amr", "your sign-in at the identity provider did not use multi-factor authentication: sign in there with MFA", "operator:"+op.ID)
		return
	}
	if need := s.sso.cfg.RequireACR; need != "" && claims.ACR != need {
		fail("acr", "your sign-in at the identity provider is not at the required assurance level", "operator:"+op.ID)
		return
	}
	// A sign-in the provider made just now (auth_time within the
	// re-authentication window, as ?reauth=1 asks) re-authenticates.
	var reauthAt time.Time
	if at := time.Unix(claims.AuthTime, 0); claims.AuthTime > 0 && s.now().Sub(at) < time.Duration(s.settings().ReauthWindow) && !at.After(s.now().Add(time.Minute)) {
		reauthAt = minTime(at, s.now())
	}
	if _, err := s.newSession(ctx, w, r, op, reauthAt); err != nil {
		s.internalError(w, "finish SSO", err)
		return
	}
	s.record(ctx, audit.Event{Actor: "operator:" + op.ID, Role: op.Role, Action: "session.login", Target: "operator:" + op.ID, Outcome: audit.Success,
		Client: s.client(r), Detail: map[string]string{"mfa": "sso", "amr": fmt.Sprint(claims.AMR), "acr": claims.ACR}})
	http.Redirect(w, r, "/admin/", http.StatusFound)
}
