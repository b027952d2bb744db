package usertoken

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/parley-gw/parley/internal/store"
)

// Sealer is the envelope encryption the token service seals client
// secrets and user tokens with (keyring.Envelope implements it).
type Sealer interface {
	Prepare(ctx context.Context, scope string) error
	Seal(ctx context.Context, scope string, plaintext, aad []byte) ([]byte, error)
	Open(ctx context.Context, scope string, ciphertext, aad []byte) ([]byte, error)
}

// BotScope is the data-key scope of a bot's token-service secrets: its
// connections' client secrets and its users' tokens.
func BotScope(botID string) string { return "bot:" + botID }

func secretAAD(botID, name string) []byte {
	return []byte("parley-oauth-client-secret\x00" + botID + "\x00" + name)
}

func tokenAAD(botID, userID, conn string) []byte {
	return []byte("parley-user-token\x00" + botID + "\x00" + userID + "\x00" + conn)
}

// SealClientSecret seals a connection's client secret under the bot's
// data key, bound to the bot and the connection name.
func SealClientSecret(ctx context.Context, s Sealer, botID, name, secret string) ([]byte, error) {
	scope := BotScope(botID)
	if err := s.Prepare(ctx, scope); err != nil {
		return nil, fmt.Errorf("seal client secret: %w", err)
	}
	b, err := s.Seal(ctx, scope, []byte(secret), secretAAD(botID, name))
	if err != nil {
		return nil, fmt.Errorf("seal client secret: %w", err)
	}
	return b, nil
}

func openClientSecret(ctx context.Context, s Sealer, c store.OAuthConnection) (string, error) {
	b, err := s.Open(ctx, BotScope(c.BotID), c.SealedSecret, secretAAD(c.BotID, c.Name))
	if err != nil {
		return "", fmt.Errorf("open client secret of %s: %w", c.Name, err)
	}
	return string(b), nil
}

// Limits on connections, and the max login duration a connection gets
// when none is given.
const (
	DefaultMaxLogin = 8 * time.Hour
	MinMaxLogin     = 5 * time.Minute
	MaxMaxLogin     = 90 * 24 * time.Hour
)

var (
	connNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	tenantPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,99}$`)
	scopePattern    = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,200}$`) // RFC 6749 scope-token
)

// ValidConnectionName reports whether name can name a connection.
func ValidConnectionName(name string) bool { return connNamePattern.MatchString(name) }

// ValidateConnection checks a connection's fields for its kind; every
// message says what to change.
func ValidateConnection(c store.OAuthConnection) error {
	if !ValidConnectionName(c.Name) {
		return errors.New("connection name must be 1-64 letters, digits or ._- (starting with a letter or digit)")
	}
	if c.ClientID == "" || len(c.ClientID) > 256 || strings.ContainsAny(c.ClientID, " \t\r\n") {
		return errors.New("client id must be 1-256 characters without spaces")
	}
	if c.MaxLogin < MinMaxLogin || c.MaxLogin > MaxMaxLogin {
		return fmt.Errorf("max login duration must be between %s and %s", MinMaxLogin, MaxMaxLogin)
	}
	if len(c.Scopes) > 50 {
		return errors.New("at most 50 scopes")
	}
	for _, s := range c.Scopes {
		if !scopePattern.MatchString(s) {
			return fmt.Errorf("scope %q: want printable ASCII without spaces, quotes or backslashes", s)
		}
	}
	switch c.Kind {
	case store.OAuthKindOIDC:
		if err := providerURL("issuer", c.Issuer); err != nil {
			return err
		}
	case store.OAuthKindOAuth2:
		if err := providerURL("authorization URL", c.AuthURL); err != nil {
			return err
		}
		if err := providerURL("token URL", c.TokenURL); err != nil {
			return err
		}
	case store.OAuthKindGitHub:
	case store.OAuthKindEntra:
		if !tenantPattern.MatchString(c.Tenant) {
			return errors.New("entra needs --tenant: the tenant id or domain (e.g. contoso.onmicrosoft.com)")
		}
	default:
		return fmt.Errorf("provider kind %q: want oidc, oauth2, github or entra", c.Kind)
	}
	return nil
}

// providerURL accepts https URLs, and http only on loopback (tests and
// local identity providers).
func providerURL(what, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%s %q: want an absolute https URL without credentials or fragment", what, s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
	}
	return fmt.Errorf("%s %q: must use https (http only on loopback)", what, s)
}

// DisplayName is what GetTokenStatus calls a connection's provider.
func DisplayName(kind string) string {
	switch kind {
	case store.OAuthKindOIDC:
		return "OpenID Connect"
	case store.OAuthKindOAuth2:
		return "OAuth 2.0"
	case store.OAuthKindGitHub:
		return "GitHub"
	case store.OAuthKindEntra:
		return "Microsoft Entra ID"
	}
	return kind
}

// endpoint resolves a connection's provider endpoints (OpenID discovery
// for oidc, cached).
func (s *Service) endpoint(ctx context.Context, c store.OAuthConnection) (oauth2.Endpoint, error) {
	switch c.Kind {
	case store.OAuthKindGitHub:
		return oauth2.Endpoint{AuthURL: "https://github.com/login/oauth/authorize", TokenURL: "https://github.com/login/oauth/access_token"}, nil
	case store.OAuthKindEntra:
		base := "https://login.microsoftonline.com/" + url.PathEscape(c.Tenant) + "/oauth2/v2.0/"
		return oauth2.Endpoint{AuthURL: base + "authorize", TokenURL: base + "token"}, nil
	case store.OAuthKindOAuth2:
		return oauth2.Endpoint{AuthURL: c.AuthURL, TokenURL: c.TokenURL}, nil
	case store.OAuthKindOIDC:
		s.mu.Lock()
		d, ok := s.discovered[c.Issuer]
		s.mu.Unlock()
		if ok && s.now().Before(d.until) {
			return d.ep, nil
		}
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, s.httpClient()), c.Issuer)
		if err != nil {
			return oauth2.Endpoint{}, fmt.Errorf("discover %s: %w", c.Issuer, err)
		}
		ep := p.Endpoint()
		s.mu.Lock()
		if len(s.discovered) > 1000 {
			clear(s.discovered)
		}
		s.discovered[c.Issuer] = discovery{ep: ep, until: s.now().Add(time.Hour)}
		s.mu.Unlock()
		return ep, nil
	}
	return oauth2.Endpoint{}, fmt.Errorf("connection %s: unknown kind %q", c.Name, c.Kind)
}

type discovery struct {
	ep    oauth2.Endpoint
	until time.Time
}

// oauthConfig is the connection's OAuth client configuration.
func (s *Service) oauthConfig(ctx context.Context, c store.OAuthConnection) (*oauth2.Config, error) {
	ep, err := s.endpoint(ctx, c)
	if err != nil {
		return nil, err
	}
	secret, err := openClientSecret(ctx, s.sealer, c)
	if err != nil {
		return nil, err
	}
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: secret, Endpoint: ep, RedirectURL: s.CallbackURL(), Scopes: c.Scopes}, nil
}
