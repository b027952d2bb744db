// Command idp is the OpenID provider of the end-to-end sign-in tests: a
// real ory/fosite provider (authorization code with PKCE, refresh tokens,
// OpenID Connect discovery, userinfo) on loopback TLS, with one client and
// one test user who signs in through an HTML login form. It prints
// {"issuer": ...} on its first stdout line once it serves. Test use only:
// in-memory storage, a fresh signing key each start.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/storage"
	fjwt "github.com/ory/fosite/token/jwt"
	"golang.org/x/crypto/bcrypt"
)

type idp struct {
	issuer   string
	provider fosite.OAuth2Provider
	user     string
	password string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "idp:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	cert := flag.String("cert", "", "TLS certificate (PEM)")
	key := flag.String("key", "", "TLS key (PEM)")
	host := flag.String("host", "127.0.0.1", "host name in the issuer URL (the certificate must cover it)")
	redirect := flag.String("redirect-uri", "", "the client's exact redirect URI")
	clientID := flag.String("client-id", "parley-e2e", "the client id")
	secretFile := flag.String("client-secret-file", "", "file holding the client secret")
	user := flag.String("user", "alice", "the test user's name (the subject)")
	password := flag.String("password", "alice-password-1", "the test user's password")
	flag.Parse()
	if *cert == "" || *key == "" || *redirect == "" || *secretFile == "" {
		return errors.New("-cert, -key, -redirect-uri and -client-secret-file are required")
	}
	secret, err := os.ReadFile(*secretFile)
	if err != nil {
		return fmt.Errorf("read client secret: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	issuer := fmt.Sprintf("https://%s:%d", *host, ln.Addr().(*net.TCPAddr).Port)
	signing, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(strings.TrimSpace(string(secret))), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("hash secret: %w", err)
	}
	store := storage.NewMemoryStore()
	store.Clients[*clientID] = &fosite.DefaultClient{ID: *clientID, Secret: hash, RedirectURIs: []string{*redirect},
		ResponseTypes: []string{"code"}, GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "offline", "offline_access", "profile"}}
	global := make([]byte, 32)
	if _, err := rand.Read(global); err != nil {
		return fmt.Errorf("generate secret: %w", err)
	}
	cfg := &fosite.Config{AccessTokenLifespan: time.Hour, AuthorizeCodeLifespan: 5 * time.Minute, GlobalSecret: global, EnforcePKCE: true,
		IDTokenIssuer: issuer, TokenURL: issuer + "/token", HashCost: bcrypt.MinCost}
	p := &idp{issuer: issuer, provider: compose.ComposeAllEnabled(cfg, store, signing), user: *user, password: *password}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("/auth", p.authorize)
	mux.HandleFunc("/token", p.token)
	mux.HandleFunc("/userinfo", p.userinfo)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	out, _ := json.Marshal(map[string]string{"issuer": issuer})
	fmt.Println(string(out))
	slog.Info("idp serving", "issuer", issuer)
	if err := srv.ServeTLS(ln, *cert, *key); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func (p *idp) discovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer": p.issuer, "authorization_endpoint": p.issuer + "/auth", "token_endpoint": p.issuer + "/token",
		"userinfo_endpoint": p.issuer + "/userinfo", "jwks_uri": p.issuer + "/jwks", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported": []string{"S256"},
	})
}

func (p *idp) session(user string) *openid.DefaultSession {
	return &openid.DefaultSession{Claims: &fjwt.IDTokenClaims{Issuer: p.issuer, Subject: user, IssuedAt: time.Now(), AuthTime: time.Now()},
		Headers: &fjwt.Headers{}, Subject: user, Username: user}
}

const loginPage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test IdP sign-in</title></head><body>
<h1>Test identity provider</h1><p>%s</p>
<form method="post"><label>User <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button></form></body></html>`

// authorize shows the login form (GET, or a wrong password) and signs the
// test user in (POST with the right credentials).
func (p *idp) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := p.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		p.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	if r.Method != http.MethodPost || r.PostForm.Get("username") != p.user || r.PostForm.Get("password") != p.password {
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
	resp, err := p.provider.NewAuthorizeResponse(ctx, ar, p.session(p.user))
	if err != nil {
		p.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	p.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

func (p *idp) token(w http.ResponseWriter, r *http.Request) {
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

// userinfo answers {"sub"} for an active access token (Bearer), 401 otherwise.
func (p *idp) userinfo(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", "Bearer")
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	_, ar, err := p.provider.IntrospectToken(r.Context(), tok, fosite.AccessToken, p.session(""))
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"sub": ar.GetSession().GetSubject()})
}
