package operator_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
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

	"github.com/parley-gw/parley/internal/admin"
	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/operator"
	"github.com/parley-gw/parley/internal/store"
)

// ssoIdP is a real OpenID Connect provider (ory/fosite, in-memory
// storage) on loopback TLS, as internal/server's tests start one, whose
// ID tokens carry the amr the test sets.
type ssoIdP struct {
	srv      *httptest.Server
	provider fosite.OAuth2Provider
	key      *rsa.PrivateKey
	mu       sync.Mutex
	user     string
	amr      []string
}

const ssoClientID, ssoSecret = "parley-admin", "sso-client-secret-for-tests"

func newSSOIdP(t *testing.T, redirectURI string) *ssoIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &ssoIdP{key: key, user: "sub-alice"}
	idp.srv = httptest.NewUnstartedServer(nil)
	idp.srv.StartTLS()
	t.Cleanup(idp.srv.Close)
	hash, _ := bcrypt.GenerateFromPassword([]byte(ssoSecret), bcrypt.MinCost)
	st := storage.NewMemoryStore()
	st.Clients[ssoClientID] = &fosite.DefaultClient{ID: ssoClientID, Secret: hash, RedirectURIs: []string{redirectURI},
		ResponseTypes: []string{"code"}, GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "email", "profile"}}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	cfg := &fosite.Config{AccessTokenLifespan: time.Hour, AuthorizeCodeLifespan: 5 * time.Minute, GlobalSecret: secret, EnforcePKCE: true,
		IDTokenIssuer: idp.srv.URL, TokenURL: idp.srv.URL + "/token", HashCost: bcrypt.MinCost}
	idp.provider = compose.ComposeAllEnabled(cfg, st, key)
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": idp.srv.URL, "authorization_endpoint": idp.srv.URL + "/auth", "token_endpoint": idp.srv.URL + "/token",
			"jwks_uri": idp.srv.URL + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("/auth", idp.authorize)
	mux.HandleFunc("/token", idp.token)
	idp.srv.Config.Handler = mux
	return idp
}

func (idp *ssoIdP) session() *openid.DefaultSession {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return &openid.DefaultSession{Claims: &fjwt.IDTokenClaims{Issuer: idp.srv.URL, Subject: idp.user, IssuedAt: time.Now(), AuthTime: time.Now(),
		AuthenticationMethodsReferences: idp.amr}, Headers: &fjwt.Headers{}, Subject: idp.user}
}

// authorize signs the configured user in at once (the user's password
// step is the provider's business, not under test here).
func (idp *ssoIdP) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := idp.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		idp.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	resp, err := idp.provider.NewAuthorizeResponse(ctx, ar, idp.session())
	if err != nil {
		idp.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	idp.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

func (idp *ssoIdP) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, err := idp.provider.NewAccessRequest(ctx, r, new(openid.DefaultSession))
	if err != nil {
		idp.provider.WriteAccessError(ctx, w, req, err)
		return
	}
	resp, err := idp.provider.NewAccessResponse(ctx, req)
	if err != nil {
		idp.provider.WriteAccessError(ctx, w, req, err)
		return
	}
	idp.provider.WriteAccessResponse(ctx, w, req, resp)
}

// ssoSignIn runs the browser's part: start, the provider, the callback.
// It returns the callback's answer and the session cookie, if any.
func ssoSignIn(t *testing.T, h *harness, idp *ssoIdP, dropState bool) (*http.Response, string) {
	t.Helper()
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	plain := &http.Client{CheckRedirect: noRedirect}
	res, err := plain.Get(h.srv.URL + admin.Prefix + "/sso/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("sso/login: %d", res.StatusCode)
	}
	var state *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "parley_admin_sso" {
			state = c
		}
	}
	tlsClient := idp.srv.Client()
	tlsClient.CheckRedirect = noRedirect
	res, err = tlsClient.Get(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	back := res.Header.Get("Location")
	if !strings.HasPrefix(back, h.srv.URL+admin.Prefix+"/sso/callback?") {
		t.Fatalf("provider answered %d to %q", res.StatusCode, back)
	}
	req, _ := http.NewRequest("GET", back, nil)
	if state != nil && !dropState {
		req.AddCookie(state)
	}
	res, err = plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, c := range res.Cookies() {
		if c.Name == operator.CookieLoopback && c.Value != "" {
			return res, c.Value
		}
	}
	return res, ""
}

func TestSSOSignInWithRequiredAMR(t *testing.T) {
	var idp *ssoIdP
	h := newHarness(t, func(h *harness) {
		h.clock.t = time.Now()
		idp = newSSOIdP(t, h.srv.URL+admin.Prefix+"/sso/callback")
		h.httpClient = idp.srv.Client()
		h.settings.SSO.Issuer, h.settings.SSO.ClientID, h.settings.SSO.ClientSecret = idp.srv.URL, ssoClientID, ssoSecret
		h.settings.SSO.RedirectURL = h.srv.URL + admin.Prefix + "/sso/callback"
		h.settings.SSO.RequireAMR = []string{"mfa", "otp", "hwk"}
	})
	ctx := t.Context()
	now := h.clock.Now()
	if err := h.st.CreateOperator(ctx, store.Operator{ID: "op_sso", Name: "alice", Role: "auditor", SSOSubject: "sub-alice", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	// The provider says password only: refused, audited.
	idp.amr = []string{"pwd"}
	res, cookie := ssoSignIn(t, h, idp, false)
	if res.StatusCode != 401 || cookie != "" {
		t.Fatalf("amr [pwd]: %d, cookie %v", res.StatusCode, cookie != "")
	}
	if f := h.rec.find("session.sso", audit.Failure); len(f) != 1 || f[0].Detail["reason"] != "amr" {
		t.Fatalf("audit: %+v", f)
	}
	// With MFA: signed in as the pre-registered operator.
	idp.amr = []string{"pwd", "otp"}
	res, cookie = ssoSignIn(t, h, idp, false)
	if res.StatusCode != http.StatusFound || cookie == "" {
		t.Fatalf("amr [pwd otp]: %d, cookie %v", res.StatusCode, cookie != "")
	}
	r := h.do(&client{cookie: cookie}, "GET", "/session", nil)
	h.want(r, 200, "")
	if op := r.body["operator"].(map[string]any); op["id"] != "op_sso" || op["role"] != "auditor" {
		t.Fatalf("session: %s", r.raw)
	}
	// The provider authenticated just now (auth_time): the session counts
	// as re-authenticated for the window.
	if r.body["reauth_until"] == "" {
		t.Fatalf("SSO session not re-authenticated: %s", r.raw)
	}
	// A callback without the browser's state cookie: refused.
	res, cookie = ssoSignIn(t, h, idp, true)
	if res.StatusCode != 401 || cookie != "" {
		t.Fatalf("no state cookie: %d", res.StatusCode)
	}
	// An identity with no operator: refused.
	idp.user = "sub-mallory"
	res, cookie = ssoSignIn(t, h, idp, false)
	if res.StatusCode != 401 || cookie != "" {
		t.Fatalf("unknown subject: %d", res.StatusCode)
	}
}
