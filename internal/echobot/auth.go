package echobot

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/parley-gw/parley/internal/botauth"
)

// Auth is the bot's Bot Framework identity on Parley: it checks Parley's
// channel token on every delivery and calls back with an access token from
// Parley's token service, like an SDK bot configured with the settings
// `parley bot create` prints.
type Auth struct {
	AppID   string
	Secret  string
	Gateway string // Parley's public URL: channel token issuer and token audience

	mu        sync.Mutex
	keys      map[string]jose.JSONWebKey
	endorse   map[string][]string
	fetchedAt time.Time
	token     string
	tokenExp  time.Time
	// verified remembers channel tokens already checked for a serviceUrl
	// and channel (Parley reuses a token for up to a minute).
	verified map[[32]byte]time.Time
}

// verify checks the channel token of a delivery as the SDK does.
func (a *Auth) verify(ctx context.Context, client *http.Client, authz, serviceURL, channelID string) error {
	tok, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok {
		return errors.New("no bearer token")
	}
	sum := sha256.Sum256([]byte(tok + "\x00" + serviceURL + "\x00" + channelID))
	a.mu.Lock()
	exp, seen := a.verified[sum]
	a.mu.Unlock()
	if seen && time.Now().Before(exp) {
		return nil
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return err
	}
	kid := parsed.Headers[0].KeyID
	key, endorsements, err := a.key(ctx, client, kid)
	if err != nil {
		return err
	}
	var c struct {
		jwt.Claims
		ServiceURL string `json:"serviceurl"`
	}
	if err := parsed.Claims(key.Key, &c); err != nil {
		return err
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: a.Gateway, AnyAudience: jwt.Audience{a.AppID}, Time: time.Now()}, 5*time.Minute); err != nil {
		return err
	}
	if c.ServiceURL != serviceURL {
		return errors.New("serviceurl claim does not match the activity")
	}
	if len(endorsements) > 0 && !slices.Contains(endorsements, channelID) {
		return fmt.Errorf("key does not endorse channel %q", channelID)
	}
	if c.Expiry != nil {
		a.mu.Lock()
		if a.verified == nil || len(a.verified) > 10_000 {
			a.verified = map[[32]byte]time.Time{}
		}
		a.verified[sum] = c.Expiry.Time()
		a.mu.Unlock()
	}
	return nil
}

// key returns a published channel key, refetching the JWKS on an unknown
// kid (at most every 10 seconds).
func (a *Auth) key(ctx context.Context, client *http.Client, kid string) (jose.JSONWebKey, []string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if k, ok := a.keys[kid]; ok {
		return k, a.endorse[kid], nil
	}
	if time.Since(a.fetchedAt) < 10*time.Second {
		return jose.JSONWebKey{}, nil, fmt.Errorf("unknown key id %q", kid)
	}
	a.fetchedAt = time.Now()
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, client, a.Gateway+botauth.ChannelMetadataPath, &meta); err != nil {
		return jose.JSONWebKey{}, nil, err
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, client, meta.JWKSURI, &set); err != nil {
		return jose.JSONWebKey{}, nil, err
	}
	a.keys, a.endorse = map[string]jose.JSONWebKey{}, map[string][]string{}
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		var extra struct {
			Endorsements []string `json:"endorsements"`
		}
		if k.UnmarshalJSON(raw) != nil || json.Unmarshal(raw, &extra) != nil {
			continue
		}
		a.keys[k.KeyID], a.endorse[k.KeyID] = k, extra.Endorsements
	}
	if k, ok := a.keys[kid]; ok {
		return k, a.endorse[kid], nil
	}
	return jose.JSONWebKey{}, nil, fmt.Errorf("unknown key id %q", kid)
}

// accessToken returns a cached token from Parley's token service.
func (a *Auth) accessToken(ctx context.Context, client *http.Client) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != "" && time.Until(a.tokenExp) > 5*time.Minute {
		return a.token, nil
	}
	var meta struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := getJSON(ctx, client, a.Gateway+botauth.STSMetadataPath, &meta); err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {a.AppID}, "client_secret": {a.Secret}, "scope": {a.Gateway + "/.default"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, meta.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token service answered %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("token service answer: %v", err)
	}
	a.token, a.tokenExp = out.AccessToken, time.Now().Add(time.Duration(out.ExpiresIn)*time.Second)
	return a.token, nil
}

func getJSON(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
