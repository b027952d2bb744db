// Package testidp is a real OAuth 2.0 / OpenID Connect provider for
// tests: ory/fosite (authorization code with PKCE S256, refresh tokens,
// discovery, JWKS, userinfo) over in-memory storage, with one client and
// one test user.
//
// TEST USE ONLY. It keeps everything in memory, makes a fresh signing
// key each time, and its login form is a test fixture. The tests of
// internal/server and internal/operator and the e2e command e2e/idp use
// it; no package of the gateway may import it (TestNotImportedByTheGateway
// checks).
package testidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/storage"
	fjwt "github.com/ory/fosite/token/jwt"
	"golang.org/x/crypto/bcrypt"
)

// Options of a provider. The zero values of the optional ones are in
// brackets.
type Options struct {
	// Issuer is the provider's https URL (scheme, host, port), which its
	// endpoints are under. Start sets it.
	Issuer string
	// ClientID and ClientSecret of the one client.
	ClientID, ClientSecret string
	// RedirectURIs are the client's exact redirect URIs.
	RedirectURIs []string
	// Scopes the client may ask for [openid offline profile].
	Scopes []string
	// GrantTypes of the client [authorization_code refresh_token].
	GrantTypes []string
	// AccessTTL is the access tokens' lifetime [an hour].
	AccessTTL time.Duration
	// User is the test user's name, the tokens' subject.
	User string
	// Password of the test user: the authorization endpoint shows a login
	// form until it is posted with User and Password. Empty: the user is
	// signed in at once, without a form.
	Password string
}

// Provider is the provider; Handler serves it.
type Provider struct {
	opt      Options
	provider fosite.OAuth2Provider
	key      *rsa.PrivateKey

	mu   sync.Mutex
	user string
	amr  []string
	acr  string
}

// New makes a provider.
func New(o Options) (*Provider, error) {
	if o.Issuer == "" || o.ClientID == "" || len(o.RedirectURIs) == 0 {
		return nil, errors.New("new test idp: Issuer, ClientID and RedirectURIs are required")
	}
	if o.Scopes == nil {
		o.Scopes = []string{"openid", "offline", "profile"}
	}
	if o.GrantTypes == nil {
		o.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	if o.AccessTTL == 0 {
		o.AccessTTL = time.Hour
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(o.ClientSecret), bcrypt.MinCost)
	if err != nil {
		return nil, fmt.Errorf("hash client secret: %w", err)
	}
	st := storage.NewMemoryStore()
	st.Clients[o.ClientID] = &fosite.DefaultClient{ID: o.ClientID, Secret: hash, RedirectURIs: o.RedirectURIs,
		ResponseTypes: []string{"code"}, GrantTypes: o.GrantTypes, Scopes: o.Scopes}
	global := make([]byte, 32)
	if _, err := rand.Read(global); err != nil {
		return nil, fmt.Errorf("generate secret: %w", err)
	}
	cfg := &fosite.Config{AccessTokenLifespan: o.AccessTTL, AuthorizeCodeLifespan: 5 * time.Minute, GlobalSecret: global, EnforcePKCE: true,
		IDTokenIssuer: o.Issuer, TokenURL: o.Issuer + "/token", HashCost: bcrypt.MinCost}
	return &Provider{opt: o, provider: compose.ComposeAllEnabled(cfg, st, key), key: key, user: o.User}, nil
}

// Server is a Provider on loopback TLS (httptest); its Client trusts it.
type Server struct {
	*Provider
	*httptest.Server
}

// Start starts a provider on loopback TLS, closed when the test ends.
// It sets o.Issuer.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	o.Issuer = srv.URL
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p.Handler()
	return &Server{Provider: p, Server: srv}
}

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.opt.Issuer }

// SetUser changes the subject of the next sign-ins.
func (p *Provider) SetUser(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user = user
}

// SetAMR sets the amr claim of the next ID tokens (none by default).
func (p *Provider) SetAMR(amr ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.amr = amr
}

// SetACR sets the acr claim of the next ID tokens (none by default).
func (p *Provider) SetACR(acr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acr = acr
}

// Handler serves discovery, /jwks, /auth, /token and /userinfo.
func (p *Provider) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("/jwks", p.jwks)
	mux.HandleFunc("/auth", p.authorize)
	mux.HandleFunc("/token", p.token)
	mux.HandleFunc("/userinfo", p.userinfo)
	return mux
}

// Introspect reports whether token is an active access token of the
// provider, and whose.
func (p *Provider) Introspect(ctx context.Context, token string) (active bool, subject string) {
	_, ar, err := p.provider.IntrospectToken(ctx, token, fosite.AccessToken, p.session(""))
	if err != nil {
		return false, ""
	}
	return true, ar.GetSession().GetSubject()
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	is := p.opt.Issuer
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer": is, "authorization_endpoint": is + "/auth", "token_endpoint": is + "/token",
		"userinfo_endpoint": is + "/userinfo", "jwks_uri": is + "/jwks", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported": []string{"S256"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, Algorithm: "RS256", Use: "sig"}}})
}

// session is an ID token session of user with the amr and acr set.
func (p *Provider) session(user string) *openid.DefaultSession {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	return &openid.DefaultSession{Claims: &fjwt.IDTokenClaims{Issuer: p.opt.Issuer, Subject: user, IssuedAt: now, AuthTime: now,
		AuthenticationMethodsReferences: p.amr, AuthenticationContextClassReference: p.acr},
		Headers: &fjwt.Headers{}, Subject: user, Username: user}
}

func (p *Provider) currentUser() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.user
}

const loginPage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test IdP sign-in</title></head><body>
<h1>Test identity provider</h1><p>%s</p>
<form method="post"><label>User <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button></form></body></html>`

// authorize shows the login form (GET, or a wrong password) and signs the
// test user in (POST with the right credentials, or at once without a
// Password).
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := p.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		p.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	user := p.currentUser()
	if p.opt.Password != "" && (r.Method != http.MethodPost || r.PostForm.Get("username") != user || r.PostForm.Get("password") != p.opt.Password) {
		msg := "Sign in to continue."
		if r.Method == http.MethodPost {
			msg = "Wrong user name or password."
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, loginPage, html.EscapeString(msg))
		return
	}
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	resp, err := p.provider.NewAuthorizeResponse(ctx, ar, p.session(user))
	if err != nil {
		p.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	p.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, err := p.provider.NewAccessRequest(ctx, r, p.session(""))
	if err != nil {
		p.provider.WriteAccessError(ctx, w, req, err)
		return
	}
	resp, err := p.provider.NewAccessResponse(ctx, req)
	if err != nil {
		p.provider.WriteAccessError(ctx, w, req, err)
		return
	}
	p.provider.WriteAccessResponse(ctx, w, req, resp)
}

// userinfo answers {"sub"} for an active access token (Bearer), 401
// otherwise.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", "Bearer")
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	active, sub := p.Introspect(r.Context(), tok)
	if !active {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"sub": sub})
}
