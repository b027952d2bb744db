package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// Scopes of Direct Line tokens: a conversation token works on the REST
// routes of one conversation; a stream token only opens that
// conversation's WebSocket.
const (
	ScopeConversation = "conversation"
	ScopeStream       = "stream"
	ScopeAttachment   = "attachment"
)

// keyPurpose names Direct Line token keys in the store.
const keyPurpose = keyring.PurposeDirectLineToken

// MaxTokenLifetime bounds every Direct Line credential's lifetime (the
// longest token_ttl the configuration accepts, and attachment links).
// NewIssuer keeps retired keys verifying this long plus Leeway.
const MaxTokenLifetime = 24 * time.Hour

// Leeway tolerates small clock differences between replicas.
const Leeway = 30 * time.Second

// Claims are what a Direct Line token binds. The official clients read
// only "user"; everything else is for Parley.
type Claims struct {
	jwt.Claims
	Scope   string   `json:"scp"`
	Bot     string   `json:"bot"`
	Site    string   `json:"site"`
	Conv    string   `json:"conv"`
	User    string   `json:"user,omitempty"`
	Origins []string `json:"origins,omitempty"`
	// Watermark is where a stream token starts replay (-1: everything).
	Watermark *int64 `json:"wm,omitempty"`
	// Attachment is the file a download capability is for.
	Attachment string `json:"att,omitempty"`
}

// Errors from Verify.
var (
	ErrTokenExpired = errors.New("token expired")
	ErrTokenInvalid = errors.New("token invalid")
)

// Issuer mints and verifies Direct Line tokens with Ed25519 keys of the
// gateway's key set: sealed in the store, so tokens survive restarts and
// work on every replica. The active key signs; the next key and retired
// keys within their overlap verify; a destroyed key's tokens are refused.
type Issuer struct {
	issuer string
	now    func() time.Time
	keys   *keyring.KeySet

	mu     sync.Mutex
	signer *tokenSigner // for the active key last seen

	// verified caches conversation tokens whose signature checked out
	// (SHA-256 of the token -> Claims and kid), so a client's repeated
	// calls with one token cost one signature verification. Lifetime,
	// scope and that the key is still accepted are checked on every use.
	// One-shot credentials (stream, download) are not cached. A token is
	// cached on its second use: many are used once (a conversation start
	// and nothing after), and an idle open conversation should not hold
	// its token's claims.
	cacheMu  sync.Mutex
	verified map[[32]byte]verifiedToken
	seenOnce map[[32]byte]struct{}
}

type tokenSigner struct {
	kid string
	s   jose.Signer
}

type verifiedToken struct {
	c   Claims
	kid string
}

// maxVerified bounds the verified-token cache; it is emptied when full.
const maxVerified = 50_000

// NewIssuer loads the token keys from st into a key set of their own
// (creating them on first run), retired keys verifying for
// MaxTokenLifetime plus Leeway. issuer is the gateway's public base URL.
// A server uses NewIssuerWithKeys with its own key set (reloaded).
func NewIssuer(ctx context.Context, st store.Store, kr *keyring.Keyring, issuer string) (*Issuer, error) {
	keys := keyring.NewKeySet(keyring.KeySetConfig{Store: st, Keyring: kr, Purposes: []keyring.Purpose{
		keyring.DirectLineTokenPurpose(keyring.PurposeRules{TokenOverlap: MaxTokenLifetime + Leeway}),
	}})
	if err := keys.Load(ctx); err != nil {
		return nil, fmt.Errorf("load token keys: %w", err)
	}
	return NewIssuerWithKeys(keys, issuer)
}

// NewIssuerWithKeys mints and verifies with the directline-token keys of
// keys (loaded already); keys.Reload makes rotations and destructions
// take effect.
func NewIssuerWithKeys(keys *keyring.KeySet, issuer string) (*Issuer, error) {
	is := &Issuer{issuer: issuer, now: time.Now, keys: keys, verified: map[[32]byte]verifiedToken{}, seenOnce: map[[32]byte]struct{}{}}
	if _, err := is.current(); err != nil {
		return nil, err
	}
	return is, nil
}

// Reload re-reads the key set (every purpose in it).
func (is *Issuer) Reload(ctx context.Context) error {
	if err := is.keys.Reload(ctx); err != nil {
		return err
	}
	_, err := is.current()
	return err
}

// current is the signer of the active key, built once per key.
func (is *Issuer) current() (*tokenSigner, error) {
	k, err := is.keys.Active(keyPurpose)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.signer != nil && is.signer.kid == k.ID {
		return is.signer, nil
	}
	priv, ok := k.Value.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("token key %s: not an Ed25519 key", k.ID)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.ID))
	if err != nil {
		return nil, fmt.Errorf("token signer: %w", err)
	}
	is.signer = &tokenSigner{kid: k.ID, s: s}
	return is.signer, nil
}

// accepted reports whether the token key kid still verifies.
func (is *Issuer) accepted(kid string) bool {
	v, err := is.keys.View(keyPurpose)
	return err == nil && v.Accepted(kid) != nil
}

// publicKey is the accepted token key with kid, or nil.
func (is *Issuer) publicKey(kid string) ed25519.PublicKey {
	v, err := is.keys.View(keyPurpose)
	if err != nil {
		return nil
	}
	k := v.Accepted(kid)
	if k == nil {
		return nil
	}
	priv, ok := k.Value.(ed25519.PrivateKey)
	if !ok {
		return nil
	}
	return priv.Public().(ed25519.PublicKey)
}

// Issue signs c with the given lifetime, filling in the registered claims.
func (is *Issuer) Issue(c Claims, ttl time.Duration) (string, time.Time, error) {
	now := is.now()
	exp := now.Add(ttl)
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", time.Time{}, fmt.Errorf("token id: %w", err)
	}
	c.Issuer = is.issuer
	c.Audience = jwt.Audience{is.issuer}
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.Expiry = jwt.NewNumericDate(exp)
	c.ID = base64.RawURLEncoding.EncodeToString(jti)
	signer, err := is.current()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	tok, err := jwt.Signed(signer.s).Claims(c).Serialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return tok, exp, nil
}

// LooksLikeToken reports whether s has the three-part shape of a JWT.
func LooksLikeToken(s string) bool { return strings.Count(s, ".") == 2 }

// Verify checks signature, algorithm, issuer, audience, lifetime and
// scope. It returns ErrTokenExpired for a genuine but expired token and
// ErrTokenInvalid for everything else.
func (is *Issuer) Verify(tok, scope string) (Claims, error) {
	var c Claims
	if len(tok) > 8192 {
		return c, fmt.Errorf("%w: too long", ErrTokenInvalid)
	}
	key := sha256.Sum256([]byte(tok))
	is.cacheMu.Lock()
	v, cached := is.verified[key]
	is.cacheMu.Unlock()
	if cached && !is.accepted(v.kid) {
		// Its key was withdrawn (destroyed, or past its overlap) since.
		return Claims{}, fmt.Errorf("%w: unknown key", ErrTokenInvalid)
	}
	c, kid := v.c, v.kid
	if !cached {
		var err error
		if c, kid, err = is.verifySignature(tok); err != nil {
			return c, err
		}
	}
	err := c.ValidateWithLeeway(jwt.Expected{Issuer: is.issuer, AnyAudience: jwt.Audience{is.issuer}, Time: is.now()}, Leeway)
	if errors.Is(err, jwt.ErrExpired) {
		return Claims{}, ErrTokenExpired
	}
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	if c.Expiry == nil || c.NotBefore == nil {
		return Claims{}, fmt.Errorf("%w: no lifetime", ErrTokenInvalid)
	}
	if c.Conv == "" || c.Bot == "" || c.Site == "" {
		return Claims{}, fmt.Errorf("%w: missing binding", ErrTokenInvalid)
	}
	if !cached && c.Scope == ScopeConversation {
		is.cacheMu.Lock()
		if _, again := is.seenOnce[key]; again {
			delete(is.seenOnce, key)
			if len(is.verified) >= maxVerified {
				clear(is.verified)
			}
			is.verified[key] = verifiedToken{c: c, kid: kid}
		} else {
			if len(is.seenOnce) >= maxVerified {
				clear(is.seenOnce)
			}
			is.seenOnce[key] = struct{}{}
		}
		is.cacheMu.Unlock()
	}
	if c.Scope != scope {
		return Claims{}, fmt.Errorf("%w: scope %q where %q is required", ErrTokenInvalid, c.Scope, scope)
	}
	return c, nil
}

// verifySignature checks algorithm, key and signature and decodes claims;
// it returns the kid of the key that verified.
func (is *Issuer) verifySignature(tok string) (Claims, string, error) {
	var c Claims
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return c, "", fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	if len(parsed.Headers) != 1 {
		return c, "", fmt.Errorf("%w: want one signature", ErrTokenInvalid)
	}
	kid := parsed.Headers[0].KeyID
	pub := is.publicKey(kid)
	if pub == nil {
		return c, "", fmt.Errorf("%w: unknown key", ErrTokenInvalid)
	}
	if err := parsed.Claims(pub, &c); err != nil {
		return c, "", fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	return c, kid, nil
}
