package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/connector"
	"github.com/parley-gw/parley/internal/store"
	"github.com/parley-gw/parley/internal/usertoken"
)

// OAuthConnection is a connection as shown: never its secret.
type OAuthConnection struct {
	BotID       string    `json:"botId"`
	Name        string    `json:"name"`
	Provider    string    `json:"provider"`
	Issuer      string    `json:"issuer,omitempty"`
	AuthURL     string    `json:"authUrl,omitempty"`
	TokenURL    string    `json:"tokenUrl,omitempty"`
	Tenant      string    `json:"tenant,omitempty"`
	ClientID    string    `json:"clientId"`
	Scopes      []string  `json:"scopes"`
	MaxLogin    string    `json:"maxLogin"`
	RedirectURI string    `json:"redirectUri"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// ToOAuthConnection is c as shown, with Parley's redirect URI.
func ToOAuthConnection(c store.OAuthConnection, redirect string) OAuthConnection {
	scopes := c.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return OAuthConnection{BotID: c.BotID, Name: c.Name, Provider: c.Kind, Issuer: c.Issuer, AuthURL: c.AuthURL, TokenURL: c.TokenURL, Tenant: c.Tenant,
		ClientID: c.ClientID, Scopes: scopes, MaxLogin: c.MaxLogin.String(), RedirectURI: redirect, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// RedirectURI is Parley's OAuth redirect URI, to register at providers.
func (s *Service) RedirectURI() string {
	pub, err := PublicURL("", s.d.Config.PublicURL)
	if err != nil {
		pub = strings.TrimRight(s.d.Config.PublicURL, "/")
	}
	return pub + "/api/oauth/callback"
}

func oauthTarget(bot, name string) string { return "oauth:" + bot + "/" + name }

// OAuthInput is a connection's fields; for an update, nil fields stay.
type OAuthInput struct {
	Provider, Issuer, AuthURL, TokenURL, Tenant, ClientID *string
	Scopes                                                *[]string
	MaxLogin                                              *time.Duration
	// Secret returns the client secret (read when the rest is valid); nil
	// keeps the current one (update).
	Secret func() (string, error)
}

// ErrConnectionExists: the bot has a connection of that name.
var ErrConnectionExists = errors.New("connection exists")

// ListOAuthConnections lists bot's connections, never their secrets.
func (s *Service) ListOAuthConnections(ctx context.Context, p Principal, bot string) ([]store.OAuthConnection, error) {
	o := s.op(p, OAuthRead, "list", botTarget(bot))
	if err := o.allow(ctx); err != nil {
		return nil, err
	}
	if _, err := o.bot(ctx, bot); err != nil {
		return nil, err
	}
	conns, err := s.d.Store.ListOAuthConnections(ctx, bot)
	return conns, o.done(ctx, err)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// CreateOAuthConnection adds connection name to bot; its client secret
// is sealed under the bot's data key.
func (s *Service) CreateOAuthConnection(ctx context.Context, p Principal, bot, name string, in OAuthInput) (store.OAuthConnection, error) {
	o := s.op(p, OAuthWrite, "create", oauthTarget(bot, name))
	if err := o.allow(ctx); err != nil {
		return store.OAuthConnection{}, err
	}
	if in.Secret == nil {
		return store.OAuthConnection{}, o.done(ctx, invalidf("the client secret is required"))
	}
	if _, err := o.bot(ctx, bot); err != nil {
		return store.OAuthConnection{}, err
	}
	now := s.d.Now().UTC()
	c := store.OAuthConnection{BotID: bot, Name: name, MaxLogin: usertoken.DefaultMaxLogin, CreatedAt: now, UpdatedAt: now}
	s.apply(&c, in)
	c, err := s.seal(ctx, c, in)
	if err == nil {
		err = s.checkOAuthURLs(ctx, p, c)
	}
	if err != nil {
		return c, o.done(ctx, err)
	}
	if err := s.d.Store.CreateOAuthConnection(ctx, c); errors.Is(err, store.ErrExists) {
		return c, o.done(ctx, conflict(fmt.Errorf("%w: bot %s already has a connection named %q: change it with 'parley oauth connection update'", ErrConnectionExists, c.BotID, c.Name)))
	} else if err != nil {
		return c, o.done(ctx, err)
	}
	return c, o.done(ctx, nil)
}

func (s *Service) apply(c *store.OAuthConnection, in OAuthInput) {
	set(&c.Kind, in.Provider)
	if in.Issuer != nil {
		c.Issuer = strings.TrimRight(*in.Issuer, "/")
	}
	set(&c.AuthURL, in.AuthURL)
	set(&c.TokenURL, in.TokenURL)
	set(&c.Tenant, in.Tenant)
	set(&c.ClientID, in.ClientID)
	set(&c.Scopes, in.Scopes)
	set(&c.MaxLogin, in.MaxLogin)
}

// seal validates c and seals the secret in.Secret gives, if any.
func (s *Service) seal(ctx context.Context, c store.OAuthConnection, in OAuthInput) (store.OAuthConnection, error) {
	if err := usertoken.ValidateConnection(c); err != nil {
		return c, invalid(err)
	}
	if in.Secret == nil {
		return c, nil
	}
	secret, err := in.Secret()
	if err != nil {
		return c, invalid(err)
	}
	if s.d.OpenKeys == nil {
		return c, errors.New("seal client secret: no keys")
	}
	keys, err := s.d.OpenKeys(ctx)
	if err != nil {
		return c, err
	}
	if keys.Close != nil {
		defer keys.Close()
	}
	if c.SealedSecret, err = usertoken.SealClientSecret(ctx, keys.Envelope, c.BotID, c.Name, secret); err != nil {
		return c, err
	}
	return c, nil
}

// UpdateOAuthConnection changes connection name of bot (the fields
// given); users' tokens are kept.
func (s *Service) UpdateOAuthConnection(ctx context.Context, p Principal, bot, name string, in OAuthInput) (store.OAuthConnection, error) {
	o := s.op(p, OAuthWrite, "update", oauthTarget(bot, name))
	if err := o.allow(ctx); err != nil {
		return store.OAuthConnection{}, err
	}
	if _, err := o.bot(ctx, bot); err != nil {
		return store.OAuthConnection{}, err
	}
	c, err := s.d.Store.GetOAuthConnection(ctx, bot, name)
	if err != nil {
		return c, o.done(ctx, asNotFound(err, "connection", name))
	}
	before := c
	s.apply(&c, in)
	moved := c.Kind != before.Kind || c.Issuer != before.Issuer || c.AuthURL != before.AuthURL || c.TokenURL != before.TokenURL || c.Tenant != before.Tenant
	if moved && in.Secret == nil && p.Kind != KindLocal {
		// The secret is write-only: sent elsewhere, it would reach a
		// server of the caller's choice at the next sign-in.
		return c, o.done(ctx, invalidf("changing the provider, issuer, URLs or tenant needs the client secret again (clientSecret): the stored one is only sent where it was set for"))
	}
	if c, err = s.seal(ctx, c, in); err != nil {
		return c, o.done(ctx, err)
	}
	if err := s.checkOAuthURLs(ctx, p, c); err != nil {
		return c, o.done(ctx, err)
	}
	c.UpdatedAt = s.d.Now().UTC()
	return c, o.done(ctx, asNotFound(s.d.Store.UpdateOAuthConnection(ctx, c), "connection", name))
}

// DeleteOAuthConnection deletes connection name of bot and every user
// token obtained through it, then scrubs the store's files.
func (s *Service) DeleteOAuthConnection(ctx context.Context, p Principal, bot, name string) error {
	o := s.op(p, OAuthWrite, "delete", oauthTarget(bot, name))
	if err := o.allow(ctx); err != nil {
		return err
	}
	if _, err := o.bot(ctx, bot); err != nil {
		return err
	}
	if err := s.d.Store.DeleteOAuthConnection(ctx, bot, name); err != nil {
		return o.done(ctx, asNotFound(err, "connection", name))
	}
	return o.done(ctx, s.d.Store.Scrub(ctx))
}

// checkOAuthURLs applies the bot endpoint rule (connector.CheckEndpoint:
// no private, link-local or other internal address unless
// bots.allow_private_networks lists it; loopback allowed) to the URLs the
// gateway itself calls: the OIDC issuer (discovery) and the OAuth 2 token
// endpoint. Over the API an operator sets them, so they must not reach
// cloud metadata or the internal network. A host that does not resolve
// yet is accepted (as a bot endpoint's). The local CLI (its owner can
// read the data directory) is not held to it.
func (s *Service) checkOAuthURLs(ctx context.Context, p Principal, c store.OAuthConnection) error {
	if p.Kind == KindLocal {
		return nil
	}
	var urls [][2]string
	switch c.Kind {
	case store.OAuthKindOIDC:
		urls = [][2]string{{"issuer", c.Issuer}}
	case store.OAuthKindOAuth2:
		urls = [][2]string{{"tokenUrl", c.TokenURL}}
	}
	r := s.d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	for _, u := range urls {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := connector.CheckEndpoint(cctx, u[1], s.d.Config.AllowedPrivateNetworks(), r)
		cancel()
		if err != nil && !errors.Is(err, connector.ErrUnresolvedHost) {
			return invalidf("%s refused: %w", u[0], err)
		}
	}
	return nil
}
