// Command idp is the OpenID provider of the end-to-end sign-in tests: a
// real ory/fosite provider (internal/testidp: authorization code with
// PKCE, refresh tokens, OpenID Connect discovery, userinfo) on loopback
// TLS, with one client and one test user who signs in through an HTML
// login form. It prints {"issuer": ...} on its first stdout line once it
// serves. Test use only: in-memory storage, a fresh signing key each start.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/parley-gw/parley/internal/testidp"
)

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
	p, err := testidp.New(testidp.Options{Issuer: issuer, ClientID: *clientID, ClientSecret: strings.TrimSpace(string(secret)),
		RedirectURIs: []string{*redirect}, Scopes: []string{"openid", "offline", "offline_access", "profile"},
		User: *user, Password: *password})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second}
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
