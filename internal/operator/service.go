// Package operator is operator identity for the admin API and console
// (issue 13): operators with roles and bot scopes, passwords (argon2id)
// with TOTP and recovery codes, one-time enrollment codes (the first
// owner's printed at start), console sessions with CSRF protection and
// re-authentication, API tokens for automation, and OpenID Connect
// sign-in. Authorization (role, scope, re-authentication per route) is
// the admin API's middleware; this package authenticates (Authenticate,
// Reauthenticated) and serves the session, enrollment, SSO, me,
// operators and tokens routes (Handlers).
package operator

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/guard"
	"github.com/parley-gw/parley/internal/store"
)

// Recorder appends an event to the audit log (internal/audit's Log).
type Recorder interface {
	Record(ctx context.Context, e audit.Event) error
}

// Sealer is the keyring envelope (keyring.Envelope): TOTP secrets are
// sealed under the data key of scope TOTPScope.
type Sealer interface {
	Prepare(ctx context.Context, scope string) error
	Seal(ctx context.Context, scope string, plaintext, aad []byte) ([]byte, error)
	Open(ctx context.Context, scope string, ciphertext, aad []byte) ([]byte, error)
}

// TOTPScope is the data-key scope of the operators' TOTP secrets.
const TOTPScope = "operators"

// Errors of Authenticate.
var (
	// ErrUnauthenticated: no credential, or a bad, expired or revoked one
	// (401 unauthenticated).
	ErrUnauthenticated = errors.New("not signed in, or the session or token is no longer valid")
	// ErrCSRF: a cookie-authenticated state-changing request without the
	// session's X-CSRF-Token, or from another origin (403 csrf).
	ErrCSRF = errors.New("missing or wrong X-CSRF-Token, or a request from another site")
)

// Store is what the service works on: the operators' tables, and the bots
// a bot scope names.
type Store interface {
	store.OperatorStore
	GetBot(ctx context.Context, id string) (store.Bot, error)
}

// Config builds a Service.
type Config struct {
	Store  Store
	Sealer Sealer
	Audit  Recorder
	Log    *slog.Logger
	// Settings are config.Operators (defaults from config.DefaultOperators).
	Settings config.Operators
	// Secure: the admin listener is HTTPS, so the cookie is
	// __Host-parley_admin with Secure. False only for plain-HTTP loopback:
	// the cookie is then parley_admin without Secure.
	Secure bool
	// Origin is the admin listener's own origin (scheme://host[:port]) for
	// the Origin check; empty: the request's scheme and Host.
	Origin string
	// ClientAddr finds the client address (guard.Proxies.ClientAddr);
	// default: the TCP peer.
	ClientAddr func(*http.Request) netip.Addr
	// Pseudonymize turns a client address into the pseudonym kept in
	// sessions and the audit log (redact.Pseudonymizer.Addr). Default: a
	// keyed hash with a key made at start.
	Pseudonymize func(addr string) string
	// Issuer labels TOTP entries in authenticator apps (default "Parley").
	Issuer string
	// Announce receives the bootstrap enrollment code line (default
	// os.Stderr). The code goes there only: never to Log.
	Announce io.Writer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// HTTPClient talks to the SSO provider (default: a client that gives
	// up after Settings.SSO.Timeout, which bounds every call to it).
	HTTPClient *http.Client
}

// Service is operator identity.
type Service struct {
	cfg       Config
	st        Store
	log       *slog.Logger
	now       func() time.Time
	limiter   *guard.Memory
	loginRule guard.Rule
	// requestRule is operators.request_rate: every authenticated admin
	// request, per credential; operatorRule operatorShare times it, per
	// operator (admit).
	requestRule, operatorRule guard.Rule
	guesses                   *guard.Guesses
	dummyHash                 string
	sso                       *ssoClient
	// hashing bounds the argon2id computations running at once (each
	// takes memory_kib): a burst of sign-ins from many addresses queues
	// instead of exhausting memory.
	hashing chan struct{}
	// guessing counts, by operator name, the sign-ins being checked now
	// (see guessSlot).
	guessing inflight
	// passkeys is the configured WebAuthn relying party (nil: derived per
	// loopback request); ceremonies the begun passkey ceremonies of known
	// operators, anonymous those of passwordless sign-ins (begun by
	// anyone: kept apart so that filling them starves no other).
	passkeys   *webauthn.WebAuthn
	ceremonies ceremonies
	anonymous  ceremonies
}

// New builds the Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Sealer == nil || cfg.Audit == nil {
		return nil, errors.New("new operator service: store, sealer and audit recorder are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "Parley"
	}
	if cfg.Settings.SSO.Issuer != "" && cfg.Settings.SSO.Timeout <= 0 {
		return nil, errors.New("new operator service: operators.sso.timeout is not set (start from config.DefaultOperators)")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: time.Duration(cfg.Settings.SSO.Timeout)}
	}
	if cfg.Announce == nil {
		cfg.Announce = os.Stderr
	}
	if cfg.ClientAddr == nil {
		cfg.ClientAddr = guard.Proxies{}.ClientAddr
	}
	if cfg.Pseudonymize == nil {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("new operator service: %w", err)
		}
		cfg.Pseudonymize = func(addr string) string {
			m := hmac.New(sha256.New, key)
			m.Write([]byte(addr))
			return "c_" + hex.EncodeToString(m.Sum(nil)[:8])
		}
	}
	if cfg.Settings.Argon2.MemoryKiB == 0 {
		cfg.Settings = config.DefaultOperators()
	}
	perSec, burst, err := cfg.Settings.LoginRate.Parse()
	if err != nil {
		return nil, fmt.Errorf("new operator service: login rate: %w", err)
	}
	reqPerSec, reqBurst, err := cfg.Settings.RequestRate.Parse()
	if err != nil {
		return nil, fmt.Errorf("new operator service: request rate: %w", err)
	}
	dummy, err := HashPassword("not a password: equalises the time of an unknown name", argonParams(cfg.Settings))
	if err != nil {
		return nil, fmt.Errorf("new operator service: %w", err)
	}
	s := &Service{cfg: cfg, st: cfg.Store, log: cfg.Log, now: cfg.Now, dummyHash: dummy, hashing: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		limiter:      guard.NewMemory(guard.MemoryConfig{Now: cfg.Now}),
		loginRule:    guard.Rule{Name: "admin-public/address", PerSecond: perSec, Burst: burst},
		requestRule:  guard.Rule{Name: "admin/credential", PerSecond: reqPerSec, Burst: reqBurst},
		operatorRule: guard.Rule{Name: "admin/operator", PerSecond: operatorShare * reqPerSec, Burst: operatorShare * reqBurst},
		guesses:      guard.NewGuesses(guard.GuessConfig{Budget: 2 * cfg.Settings.MaxFailures, Window: time.Duration(cfg.Settings.LockoutFor), Now: cfg.Now}),
	}
	if cfg.Settings.SSO.Issuer != "" {
		s.sso = &ssoClient{cfg: cfg.Settings.SSO}
	}
	if s.passkeys, err = newPasskeys(cfg.Settings.WebAuthn); err != nil {
		return nil, fmt.Errorf("new operator service: %w", err)
	}
	return s, nil
}

// verify is VerifyPassword with the current parameters, at most
// cap(hashing) at once.
func (s *Service) verify(phc, password string) (ok, rehash bool) {
	s.hashing <- struct{}{}
	defer func() { <-s.hashing }()
	return VerifyPassword(phc, password, argonParams(s.settings()))
}

// hash is HashPassword with the current parameters, bounded as verify.
func (s *Service) hash(password string) (string, error) {
	s.hashing <- struct{}{}
	defer func() { <-s.hashing }()
	return HashPassword(password, argonParams(s.settings()))
}

func argonParams(o config.Operators) Argon2Params {
	return Argon2Params{MemoryKiB: o.Argon2.MemoryKiB, Iterations: o.Argon2.Iterations, Parallelism: o.Argon2.Parallelism}
}

func (s *Service) settings() config.Operators { return s.cfg.Settings }

// record appends to the audit log; a failure to record is logged (never
// with a secret) and does not change the answer.
func (s *Service) record(ctx context.Context, e audit.Event) {
	if err := s.cfg.Audit.Record(ctx, e); err != nil {
		s.log.Error("record audit event", "action", e.Action, "err", err)
	}
}

// client is the pseudonymized client address of r.
func (s *Service) client(r *http.Request) string {
	a := s.cfg.ClientAddr(r)
	if !a.IsValid() {
		return ""
	}
	return s.cfg.Pseudonymize(a.String())
}

func (s *Service) addrKey(r *http.Request) string { return guard.AddrKey(s.cfg.ClientAddr(r)) }

// --- secrets ---

// randomString is n random bytes, base64url without padding.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashOf(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func newID(prefix string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return prefix + hex.EncodeToString(b)
}

// Prefixes of the secrets this package hands out (so secret scanners and
// people recognise them).
const (
	TokenPrefix      = "ptk_" // API token
	EnrollPrefix     = "pec_" // enrollment code
	enrollStepPrefix = "pen_" // enrollment handle between the two steps
)
