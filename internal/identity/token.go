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
const keyPurpose = "directline-token"

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

// Issuer mints and verifies Direct Line tokens with an Ed25519 key that
// persists (sealed) in the store, so tokens survive restarts and work on
// every replica.
type Issuer struct {
	issuer string
	now    func() time.Time

	mu      sync.RWMutex
	signer  jose.Signer
	kid     string
	publics map[string]ed25519.PublicKey

	// verified caches conversation tokens whose signature checked out
	// (SHA-256 of the token -> Claims), so a client's repeated calls with
	// one token cost one signature verification. Lifetime and scope are
	// still checked on every use. One-shot credentials (stream, download)
	// are not cached. A token is cached on its second use: many are used
	// once (a conversation start and nothing after), and an idle open
	// conversation should not hold its token's claims.
	cacheMu  sync.Mutex
	verified map[[32]byte]Claims
	seenOnce map[[32]byte]struct{}
}

// maxVerified bounds the verified-token cache; it is emptied when full.
const maxVerified = 50_000

// NewIssuer loads the newest token key from st (creating one on first run).
// issuer is the gateway's public base URL.
func NewIssuer(ctx context.Context, st store.Store, kr *keyring.Keyring, issuer string) (*Issuer, error) {
	keys, err := st.ListKeys(ctx, keyPurpose)
	if err != nil {
		return nil, fmt.Errorf("load token keys: %w", err)
	}
	if len(keys) == 0 {
		k, err := newTokenKey(kr)
		if err != nil {
			return nil, err
		}
		if err := st.PutKey(ctx, k); err != nil && !errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("save token key: %w", err)
		}
		if keys, err = st.ListKeys(ctx, keyPurpose); err != nil {
			return nil, fmt.Errorf("load token keys: %w", err)
		}
	}
	is := &Issuer{issuer: issuer, now: time.Now, publics: map[string]ed25519.PublicKey{}, verified: map[[32]byte]Claims{}, seenOnce: map[[32]byte]struct{}{}}
	var newest ed25519.PrivateKey
	for _, k := range keys {
		seed, err := kr.Open(k.Sealed, []byte(keyPurpose+":"+k.ID))
		if err != nil {
			return nil, fmt.Errorf("open token key %s (wrong master key?): %w", k.ID, err)
		}
		if len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("token key %s: bad length", k.ID)
		}
		priv := ed25519.NewKeyFromSeed(seed)
		is.publics[k.ID] = priv.Public().(ed25519.PublicKey)
		newest, is.kid = priv, k.ID
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: newest},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", is.kid))
	if err != nil {
		return nil, fmt.Errorf("token signer: %w", err)
	}
	is.signer = signer
	return is, nil
}

func newTokenKey(kr *keyring.Keyring) (store.Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return store.Key{}, fmt.Errorf("generate token key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(cryptoSHA256)
	if err != nil {
		return store.Key{}, fmt.Errorf("token key thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	sealed, err := kr.Seal(priv.Seed(), []byte(keyPurpose+":"+kid))
	if err != nil {
		return store.Key{}, fmt.Errorf("seal token key: %w", err)
	}
	return store.Key{ID: kid, Purpose: keyPurpose, Sealed: sealed, CreatedAt: time.Now().UTC()}, nil
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
	is.mu.RLock()
	signer := is.signer
	is.mu.RUnlock()
	tok, err := jwt.Signed(signer).Claims(c).Serialize()
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
	c, cached := is.verified[key]
	is.cacheMu.Unlock()
	if !cached {
		var err error
		if c, err = is.verifySignature(tok); err != nil {
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
			is.verified[key] = c
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

// verifySignature checks algorithm, key and signature and decodes claims.
func (is *Issuer) verifySignature(tok string) (Claims, error) {
	var c Claims
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	if len(parsed.Headers) != 1 {
		return c, fmt.Errorf("%w: want one signature", ErrTokenInvalid)
	}
	is.mu.RLock()
	pub, ok := is.publics[parsed.Headers[0].KeyID]
	is.mu.RUnlock()
	if !ok {
		return c, fmt.Errorf("%w: unknown key", ErrTokenInvalid)
	}
	if err := parsed.Claims(pub, &c); err != nil {
		return c, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	return c, nil
}
