package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/storage"
	fjwt "github.com/ory/fosite/token/jwt"
	"golang.org/x/crypto/bcrypt"
)

// testIdP is a real OAuth 2.0 / OpenID Connect provider (ory/fosite,
// in-memory storage) on loopback TLS, with one client and one user.
type testIdP struct {
	srv      *httptest.Server
	provider fosite.OAuth2Provider
	store    *storage.MemoryStore
	clientID string
	secret   string
	user     string
	password string
}

func newTestIdP(t *testing.T, redirectURI, clientSecret string, accessTTL time.Duration) *testIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &testIdP{clientID: "parley-test-client", secret: clientSecret, user: "alice", password: "alice-password-1"}
	idp.srv = httptest.NewUnstartedServer(nil)
	idp.srv.StartTLS()
	t.Cleanup(idp.srv.Close)
	hash, err := bcrypt.GenerateFromPassword([]byte(clientSecret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	idp.store = storage.NewMemoryStore()
	idp.store.Clients[idp.clientID] = &fosite.DefaultClient{ID: idp.clientID, Secret: hash, RedirectURIs: []string{redirectURI},
		ResponseTypes: []string{"code"}, GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "offline", "profile"}}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	cfg := &fosite.Config{AccessTokenLifespan: accessTTL, AuthorizeCodeLifespan: 5 * time.Minute, GlobalSecret: secret, EnforcePKCE: true,
		IDTokenIssuer: idp.srv.URL, TokenURL: idp.srv.URL + "/token", HashCost: bcrypt.MinCost}
	idp.provider = compose.ComposeAllEnabled(cfg, idp.store, key)
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": idp.srv.URL, "authorization_endpoint": idp.srv.URL + "/auth", "token_endpoint": idp.srv.URL + "/token",
			"jwks_uri": idp.srv.URL + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("/auth", idp.authorize)
	mux.HandleFunc("/token", idp.token)
	idp.srv.Config.Handler = mux
	return idp
}

func (idp *testIdP) session(user string) *openid.DefaultSession {
	return &openid.DefaultSession{Claims: &fjwt.IDTokenClaims{Issuer: idp.srv.URL, Subject: user, IssuedAt: time.Now(), AuthTime: time.Now()},
		Headers: &fjwt.Headers{}, Subject: user, Username: user}
}

// authorize shows a login form (GET) and signs the user in (POST).
func (idp *testIdP) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := idp.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		idp.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	if r.Method != http.MethodPost || r.PostForm.Get("username") != idp.user || r.PostForm.Get("password") != idp.password {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<form method="post"><input name="username"><input name="password" type="password"><button>Sign in</button></form>`))
		return
	}
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	resp, err := idp.provider.NewAuthorizeResponse(ctx, ar, idp.session(idp.user))
	if err != nil {
		idp.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	idp.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

func (idp *testIdP) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, err := idp.provider.NewAccessRequest(ctx, r, idp.session(""))
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

// introspect reports whether token is an active access token of the IdP
// and whose.
func (idp *testIdP) introspect(t *testing.T, token string) (bool, string) {
	t.Helper()
	_, ar, err := idp.provider.IntrospectToken(t.Context(), token, fosite.AccessToken, idp.session(""))
	if err != nil {
		return false, ""
	}
	return true, ar.GetSession().GetSubject()
}
