package keyring

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // registers SHA-256 for thumbprints
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/parley-gw/parley/internal/store"
)

// Key purposes. Every key Parley holds is a store.Key row of one of them.
const (
	// PurposeDirectLineToken signs Direct Line tokens (Ed25519, never
	// published: only Parley verifies them).
	PurposeDirectLineToken = "directline-token"
	// PurposeChannel signs what Parley sends to bots (RSA, published in
	// the channel JWKS).
	PurposeChannel = "channel"
	// PurposeSTS signs the access tokens of the bots' token service (RSA,
	// published in the token service's JWKS).
	PurposeSTS = "sts"
	// PurposeLogPseudonym keys the HMAC that pseudonymizes user ids and
	// client addresses in logs (32 bytes, never published).
	PurposeLogPseudonym = "log-pseudonym"
	// PurposeKEK is a key-encryption key: its material lives in a
	// Provider, the row keeps the provider's handle.
	PurposeKEK = "kek"
)

// Publication rules of the bot-facing (channel, sts) keys.
const (
	// PublishedNextLead is how long a next key is published before a
	// rotation may sign with it without force: the Bot Framework SDKs
	// refresh their key cache every 24 hours.
	PublishedNextLead = 24 * time.Hour
	// PublishedRetiredOverlap is how long a retired key stays published
	// and accepted: a key-cache refresh, plus a token lifetime and margin.
	PublishedRetiredOverlap = 25 * time.Hour
)

// KeepUntilDestroyed as a Purpose's Overlap keeps a retired key usable
// until it is destroyed (key-encryption keys: data keys not yet re-wrapped
// still need it).
const KeepUntilDestroyed time.Duration = -1

// State is where a key is in its lifecycle.
type State string

// The lifecycle: next → active → retired → expired → destroyed. A key is
// destroyed only on request (from retired or expired).
const (
	// StateNext: created ahead of use; published where the purpose
	// publishes, accepted, not yet signing.
	StateNext State = "next"
	// StateActive: signs (or wraps, or keys the HMAC).
	StateActive State = "active"
	// StateRetired: no longer signs; still accepted and published for
	// the purpose's overlap.
	StateRetired State = "retired"
	// StateExpired: retired and past its overlap: neither published nor
	// accepted; its material is kept until destroyed on request.
	StateExpired State = "expired"
	// StateDestroyed: material gone; the row stays as a tombstone.
	StateDestroyed State = "destroyed"
)

// Purpose is what differs between keys of different uses: how material is
// made and read, whether it is published, and how long it overlaps.
type Purpose struct {
	Name string
	// Algorithm is shown in listings ("Ed25519", "RSA 2048 (RS256)").
	Algorithm string
	// Published: the next, active and retired keys appear in a JWKS.
	Published bool
	// Overlap is how long a retired key stays accepted (and published);
	// 0 ends it at retirement, KeepUntilDestroyed never.
	Overlap time.Duration
	// MinNextAge is how old the next key must be before a rotation
	// without force signs with it.
	MinNextAge time.Duration
	// EarlyRisk says what a rotation before MinNextAge risks.
	EarlyRisk string
	// RotateNote says what a rotation changes (for operators).
	RotateNote string
	// DestroyNote says what destroying a retired key makes unusable.
	DestroyNote string
	// MinRetiredAge is how long ago a key must have retired before it is
	// destroyed without force (KEKs: every running Parley has reloaded its
	// keys, so none still wraps under it, and re-wrapped what it had);
	// EarlyDestroyRisk says what destroying it sooner risks.
	MinRetiredAge    time.Duration
	EarlyDestroyRisk string

	// Generate makes new material and its key id. Material is sealed by
	// the master key before it reaches the store.
	Generate func() (id string, material []byte, err error)
	// Parse turns opened material into the value users of the purpose
	// want (a private key); nil keeps the bytes.
	Parse func(material []byte) (any, error)
	// AAD binds sealed material to its purpose and id.
	AAD func(id string) []byte

	// External, when set, means the material lives outside the store (a
	// Provider); the row's Sealed holds the provider's handle instead.
	External *External
	// Rotated runs after a rotation committed (KEKs: re-wrap the data
	// keys of the retired KEKs under the new active one). Its error is
	// reported, the rotation stays.
	Rotated func(ctx context.Context, r Rotation) error
	// Impact adds to DestroyNote what destroying k affects now (KEKs: how
	// many data keys it still wraps).
	Impact func(ctx context.Context, st store.Store, k store.Key) (string, error)
	// BeforeDestroy, when set, may refuse to destroy k (KEKs: while data
	// keys still need it, unless forced).
	BeforeDestroy func(ctx context.Context, st store.Store, k store.Key, force bool) error
}

// DestroyOptions change a destruction.
type DestroyOptions struct {
	// Force destroys a key its purpose's BeforeDestroy refuses (what it
	// still protects is lost).
	Force bool
}

// External is a purpose whose material a Provider holds.
type External struct {
	// Create makes new material in the provider and returns its handle;
	// nil: the purpose can be listed but not rotated here.
	Create func(ctx context.Context) (handle string, err error)
	// Destroy destroys the material behind handle; nil: the purpose's
	// keys cannot be destroyed here.
	Destroy func(ctx context.Context, handle string) error
}

// Handle is the provider handle a row of an external purpose holds.
func Handle(k store.Key) string { return string(k.Sealed) }

func (p Purpose) aad(id string) []byte {
	if p.AAD != nil {
		return p.AAD(id)
	}
	return []byte("parley-" + p.Name + "-key:" + id)
}

// StateOf places k in its lifecycle at now.
func (p Purpose) StateOf(k store.Key, now time.Time) State {
	switch {
	case !k.DestroyedAt.IsZero():
		return StateDestroyed
	case k.ActivatedAt.IsZero():
		return StateNext
	case k.RetiredAt.IsZero():
		return StateActive
	case p.Overlap == KeepUntilDestroyed || now.Before(k.RetiredAt.Add(p.Overlap)):
		return StateRetired
	default:
		return StateExpired
	}
}

// accepted reports whether a key in state s verifies (or unwraps).
func accepted(s State) bool { return s == StateNext || s == StateActive || s == StateRetired }

// PurposeRules are the deployment's figures the purposes depend on.
type PurposeRules struct {
	// TokenOverlap is how long a retired Direct Line token key keeps
	// verifying: the longest token lifetime plus leeway.
	TokenOverlap time.Duration
	// ReloadEvery is how often a running Parley re-reads its keys: the
	// age a next key needs before every replica has it.
	ReloadEvery time.Duration
}

// SigningPurposes are the purposes whose material Parley makes and seals
// itself: Direct Line tokens, channel and token-service signing, and the
// log pseudonym key.
func SigningPurposes(r PurposeRules) []Purpose {
	return []Purpose{DirectLineTokenPurpose(r), RSAPurpose(PurposeChannel), RSAPurpose(PurposeSTS), LogPseudonymPurpose()}
}

// DirectLineTokenPurpose: Ed25519, not published. A retired key verifies
// for TokenOverlap, so tokens minted before a rotation stay valid; the
// next key is loaded by every replica before it signs.
func DirectLineTokenPurpose(r PurposeRules) Purpose {
	return Purpose{
		Name: PurposeDirectLineToken, Algorithm: "Ed25519 (EdDSA)",
		Overlap: r.TokenOverlap, MinNextAge: r.ReloadEvery,
		EarlyRisk:   fmt.Sprintf("a Parley replica that has not re-read its keys yet (every %v) refuses the Direct Line tokens the new key signs until it does", r.ReloadEvery),
		RotateNote:  fmt.Sprintf("new Direct Line tokens are signed by the new key; tokens signed before keep working for %v", r.TokenOverlap),
		DestroyNote: "Direct Line tokens it signed are refused at once; clients holding one need a new token from the site's backend",
		Generate: func() (string, []byte, error) {
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return "", nil, fmt.Errorf("generate Ed25519 key: %w", err)
			}
			id, err := thumbprint(pub)
			return id, priv.Seed(), err
		},
		Parse: func(b []byte) (any, error) {
			if len(b) != ed25519.SeedSize {
				return nil, errors.New("not an Ed25519 seed")
			}
			return ed25519.NewKeyFromSeed(b), nil
		},
		// The format Parley has always sealed these keys with.
		AAD: func(id string) []byte { return []byte(PurposeDirectLineToken + ":" + id) },
	}
}

// RSAPurpose: RSA 2048 for RS256, published in a JWKS with a 24-hour
// next-key lead and 25 hours of retired publication.
func RSAPurpose(name string) Purpose {
	// Bots verify channel tokens against their cached copy of the JWKS;
	// Parley verifies the token service's tokens itself.
	destroyed := "it leaves the JWKS at once; bots stop accepting what it signed when they next refresh their key cache (within 24 hours)"
	if name == PurposeSTS {
		destroyed = "it leaves the JWKS and Parley refuses every bot access token it signed at once; bots fetch a new one"
	}
	return Purpose{
		Name: name, Algorithm: "RSA 2048 (RS256)", Published: true,
		Overlap: PublishedRetiredOverlap, MinNextAge: PublishedNextLead,
		EarlyRisk:   "the next key was published less than 24 hours ago; bots may not have fetched it yet: those that cached the keys before it appeared refuse what it signs until they refetch (at most once an hour, on the unknown kid)",
		RotateNote:  "signing moves to the key published since the previous rotation; the retired key stays published and accepted for 25 hours",
		DestroyNote: destroyed,
		Generate: func() (string, []byte, error) {
			priv, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				return "", nil, fmt.Errorf("generate RSA key: %w", err)
			}
			id, err := thumbprint(&priv.PublicKey)
			if err != nil {
				return "", nil, err
			}
			der, err := x509.MarshalPKCS8PrivateKey(priv)
			if err != nil {
				return "", nil, fmt.Errorf("encode RSA key: %w", err)
			}
			return id, der, nil
		},
		Parse: func(b []byte) (any, error) {
			k, err := x509.ParsePKCS8PrivateKey(b)
			if err != nil {
				return nil, err
			}
			priv, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, errors.New("not an RSA key")
			}
			return priv, nil
		},
	}
}

// LogPseudonymPurpose: a 32-byte HMAC key, not published, no overlap
// (pseudonyms are only ever computed with the active key).
func LogPseudonymPurpose() Purpose {
	return Purpose{
		Name: PurposeLogPseudonym, Algorithm: "HMAC-SHA256 (32 bytes)",
		RotateNote:  "log lines from now on carry new pseudonyms: they cannot be linked to lines written before by pseudonym",
		DestroyNote: "pseudonyms in logs written under it can no longer be recomputed from a user id or address, so those lines cannot be tied to a person any more",
		Generate: func() (string, []byte, error) {
			b := make([]byte, 32+12)
			if _, err := rand.Read(b); err != nil {
				return "", nil, fmt.Errorf("generate HMAC key: %w", err)
			}
			return "lp-" + base64.RawURLEncoding.EncodeToString(b[32:]), b[:32], nil
		},
	}
}

// KEKPurpose describes key-encryption keys: material in a Provider, never
// published, retired keys kept usable until destroyed (data keys not yet
// re-wrapped still need them). With a nil provider the purpose is listed
// but cannot be rotated or destroyed here.
//
// KEK rotation hook: rewrap runs after the store has made the next KEK
// active and retired the previous one; it re-wraps every data key wrapped
// by a KEK in r.Retired under r.Activated (store.RewrapDataKey is a
// compare-and-swap, so it runs online).
func KEKPurpose(p Provider, rewrap func(ctx context.Context, r Rotation) error) Purpose {
	pu := Purpose{
		Name: PurposeKEK, Algorithm: "provider AEAD", Overlap: KeepUntilDestroyed,
		RotateNote:  "new data keys are wrapped by the new key-encryption key; existing ones are re-wrapped online",
		DestroyNote: "every data key it still wraps becomes unrecoverable, and with it the conversations and bot secrets sealed under them (backups included)",
		EarlyDestroyRisk: "a running Parley that has not re-read its keys since the rotation still wraps new data keys under it, and those conversations would be lost; " +
			"wait, then destroy it (or pass --force and accept that loss)",
		External:      &External{},
		Rotated:       rewrap,
		BeforeDestroy: KEKGuard,
		Impact: func(ctx context.Context, st store.Store, k store.Key) (string, error) {
			n, err := st.CountDataKeys(ctx, k.ID)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("it still wraps %d data key(s)", n), nil
		},
	}
	if p != nil {
		pu.Algorithm = p.Name() + " AEAD"
		pu.External.Create = p.CreateKEK
		pu.External.Destroy = p.DestroyKEK
	}
	return pu
}

func thumbprint(pub any) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// Key is one key as loaded: its row's times and state, never the sealed
// bytes; Value (and Material) only for keys that are accepted.
type Key struct {
	ID          string
	Purpose     string
	State       State
	CreatedAt   time.Time
	ActivatedAt time.Time
	RetiredAt   time.Time
	DestroyedAt time.Time
	// Handle is the provider's handle (external purposes).
	Handle string
	// Material is the opened secret; Value is Purpose.Parse of it.
	Material []byte
	Value    any
}

// View is a purpose's keys at one reload: immutable.
type View struct {
	purpose  Purpose
	active   *Key
	accepted []*Key // oldest first
	byID     map[string]*Key
	// unusable are the purpose's other keys (expired, destroyed) by id.
	unusable map[string]State
}

// Active is the key that signs now.
func (v *View) Active() *Key { return v.active }

// Accepted returns the key with id if it verifies now (next, active or
// retired within its overlap), else nil.
func (v *View) Accepted(id string) *Key { return v.byID[id] }

// Unusable reports the state of key id when the purpose has it but it is
// not accepted (expired or destroyed); ok is false for an unknown id.
func (v *View) Unusable(id string) (s State, ok bool) {
	s, ok = v.unusable[id]
	return s, ok
}

// AcceptedKeys are the keys that verify now, oldest first.
func (v *View) AcceptedKeys() []*Key { return v.accepted }

// Published are the keys to publish: the accepted keys where the purpose
// publishes, none elsewhere.
func (v *View) Published() []*Key {
	if !v.purpose.Published {
		return nil
	}
	return v.accepted
}

// Errors of the key set.
var (
	ErrUnknownPurpose = errors.New("unknown key purpose")
	ErrTooSoon        = errors.New("rotation too soon")
	// ErrTooSoonToDestroy refuses to destroy, without force, a key that
	// retired less than its purpose's MinRetiredAge ago.
	ErrTooSoonToDestroy = errors.New("too soon to destroy")
	ErrNotRetired       = errors.New("only a retired key can be destroyed")
	ErrKeyNotFound      = errors.New("no such key")
	ErrUnsupported      = errors.New("not available for this purpose here")
)

// TooSoonError refuses a rotation whose next key is younger than its
// purpose's MinNextAge; it matches ErrTooSoon.
type TooSoonError struct {
	Purpose  string
	Age, Min time.Duration
	Risk     string
}

func (e *TooSoonError) Error() string {
	return fmt.Sprintf("%s: the next key is %v old, younger than %v: %s", e.Purpose, e.Age.Round(time.Second), e.Min, e.Risk)
}

// Is makes errors.Is(err, ErrTooSoon) true.
func (e *TooSoonError) Is(target error) bool { return target == ErrTooSoon }

// KeySetConfig builds a KeySet.
type KeySetConfig struct {
	Store store.Store
	// Keyring seals and opens the material of non-external purposes.
	Keyring  *Keyring
	Purposes []Purpose
	// Now defaults to time.Now.
	Now func() time.Time
}

// KeySet is every key Parley holds, of every configured purpose, with one
// lifecycle over store.Key rows.
type KeySet struct {
	st       store.Store
	kr       *Keyring
	purposes map[string]Purpose
	names    []string
	now      func() time.Time

	mu    sync.RWMutex
	views map[string]*View
}

// NewKeySet builds a key set; it reads nothing until Load.
func NewKeySet(c KeySetConfig) *KeySet {
	ks := &KeySet{st: c.Store, kr: c.Keyring, purposes: map[string]Purpose{}, now: c.Now, views: map[string]*View{}}
	if ks.now == nil {
		ks.now = time.Now
	}
	for _, p := range c.Purposes {
		ks.purposes[p.Name] = p
		ks.names = append(ks.names, p.Name)
	}
	sort.Strings(ks.names)
	return ks
}

// Purposes names the configured purposes, sorted.
func (ks *KeySet) Purposes() []string { return append([]string(nil), ks.names...) }

// Purpose returns a purpose's description, or an error naming the valid
// purposes.
func (ks *KeySet) Purpose(name string) (Purpose, error) {
	p, ok := ks.purposes[name]
	if !ok {
		return Purpose{}, fmt.Errorf("%w %q; valid purposes: %s", ErrUnknownPurpose, name, strings.Join(ks.names, ", "))
	}
	return p, nil
}

// Load makes sure every purpose that can make keys has an active and a
// next key (creating them on first run) and reads them all.
func (ks *KeySet) Load(ctx context.Context) error {
	for _, name := range ks.names {
		if err := ks.ensure(ctx, ks.purposes[name]); err != nil {
			return err
		}
	}
	return ks.Reload(ctx)
}

func (p Purpose) canCreate() bool { return p.External == nil || p.External.Create != nil }

// ensure creates an active key and a next key if there are none.
func (ks *KeySet) ensure(ctx context.Context, p Purpose) error {
	if !p.canCreate() {
		return nil
	}
	keys, err := ks.st.ListKeys(ctx, p.Name)
	if err != nil {
		return fmt.Errorf("load %s keys: %w", p.Name, err)
	}
	var active, next bool
	for _, k := range keys {
		switch p.StateOf(k, ks.now()) {
		case StateNext:
			next = true
		case StateActive:
			active = true
		}
	}
	now := ks.now()
	if !active {
		// Made a moment earlier than the next key, so listings (oldest
		// first) show it first.
		k, err := ks.newKey(ctx, p, now.Add(-time.Millisecond))
		if err != nil {
			return err
		}
		k.ActivatedAt = now
		if err := ks.st.PutKey(ctx, k); err != nil {
			return fmt.Errorf("save %s key: %w", p.Name, err)
		}
	}
	if !next {
		k, err := ks.newKey(ctx, p, now)
		if err != nil {
			return err
		}
		if err := ks.st.PutKey(ctx, k); err != nil {
			return fmt.Errorf("save next %s key: %w", p.Name, err)
		}
	}
	return nil
}

// newKey makes a key row (not activated) for p.
func (ks *KeySet) newKey(ctx context.Context, p Purpose, now time.Time) (store.Key, error) {
	if p.External != nil {
		if p.External.Create == nil {
			return store.Key{}, fmt.Errorf("create %s key: %w", p.Name, ErrUnsupported)
		}
		h, err := p.External.Create(ctx)
		if err != nil {
			return store.Key{}, fmt.Errorf("create %s key: %w", p.Name, err)
		}
		id := make([]byte, 12)
		if _, err := rand.Read(id); err != nil {
			return store.Key{}, fmt.Errorf("create %s key id: %w", p.Name, err)
		}
		// The row keeps the handle (a reference, not material).
		return store.Key{ID: p.Name + "-" + base64.RawURLEncoding.EncodeToString(id), Purpose: p.Name, Sealed: []byte(h), CreatedAt: now}, nil
	}
	id, material, err := p.Generate()
	if err != nil {
		return store.Key{}, fmt.Errorf("create %s key: %w", p.Name, err)
	}
	if ks.kr == nil {
		return store.Key{}, fmt.Errorf("create %s key: no master key", p.Name)
	}
	sealed, err := ks.kr.Seal(material, p.aad(id))
	clear(material)
	if err != nil {
		return store.Key{}, fmt.Errorf("seal %s key: %w", p.Name, err)
	}
	return store.Key{ID: id, Purpose: p.Name, Sealed: sealed, CreatedAt: now}, nil
}

// Reload reads every purpose's keys from the store: a rotation or a
// destruction made by another process (the CLI) or replica takes effect
// here. On error the previous keys stay in use.
func (ks *KeySet) Reload(ctx context.Context) error {
	views := make(map[string]*View, len(ks.names))
	for _, name := range ks.names {
		v, err := ks.load(ctx, ks.purposes[name])
		if err != nil {
			return err
		}
		views[name] = v
	}
	ks.mu.Lock()
	ks.views = views
	ks.mu.Unlock()
	return nil
}

func (ks *KeySet) load(ctx context.Context, p Purpose) (*View, error) {
	rows, err := ks.st.ListKeys(ctx, p.Name)
	if err != nil {
		return nil, fmt.Errorf("load %s keys: %w", p.Name, err)
	}
	now := ks.now()
	v := &View{purpose: p, byID: map[string]*Key{}, unusable: map[string]State{}}
	for _, r := range rows {
		k := keyOf(p, r, now)
		if !accepted(k.State) {
			v.unusable[k.ID] = k.State
			continue
		}
		if p.External == nil {
			material, err := ks.kr.Open(r.Sealed, p.aad(r.ID))
			if err != nil {
				return nil, fmt.Errorf("open %s key %s (wrong master key?): %w", p.Name, r.ID, err)
			}
			k.Material, k.Value = material, material
			if p.Parse != nil {
				if k.Value, err = p.Parse(material); err != nil {
					return nil, fmt.Errorf("%s key %s: %w", p.Name, r.ID, err)
				}
			}
		}
		v.accepted = append(v.accepted, k)
		v.byID[k.ID] = k
		// The most recently activated key signs (two processes starting
		// on an empty store may each have made one).
		if k.State == StateActive && (v.active == nil || !k.ActivatedAt.Before(v.active.ActivatedAt)) {
			v.active = k
		}
	}
	if v.active == nil && p.canCreate() {
		return nil, fmt.Errorf("no active %s key", p.Name)
	}
	return v, nil
}

func keyOf(p Purpose, r store.Key, now time.Time) *Key {
	k := &Key{ID: r.ID, Purpose: p.Name, State: p.StateOf(r, now), CreatedAt: r.CreatedAt,
		ActivatedAt: r.ActivatedAt, RetiredAt: r.RetiredAt, DestroyedAt: r.DestroyedAt}
	if p.External != nil {
		k.Handle = Handle(r)
	}
	return k
}

// View is purpose's keys as last loaded.
func (ks *KeySet) View(purpose string) (*View, error) {
	ks.mu.RLock()
	v, ok := ks.views[purpose]
	ks.mu.RUnlock()
	if ok {
		return v, nil
	}
	if _, err := ks.Purpose(purpose); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s keys not loaded", purpose)
}

// Active is the key of purpose that signs now.
func (ks *KeySet) Active(purpose string) (*Key, error) {
	v, err := ks.View(purpose)
	if err != nil {
		return nil, err
	}
	if v.active == nil {
		return nil, fmt.Errorf("no active %s key", purpose)
	}
	return v.active, nil
}

// HMACKey is the active key of a purpose whose material is a secret used
// as is (log-pseudonym): its id and bytes. Callers must not keep the
// bytes past a reload: a rotation replaces them.
func (ks *KeySet) HMACKey(purpose string) (id string, key []byte, err error) {
	k, err := ks.Active(purpose)
	if err != nil {
		return "", nil, err
	}
	b, ok := k.Value.([]byte)
	if !ok {
		return "", nil, fmt.Errorf("%s key %s: %w (not a secret used as is)", purpose, k.ID, ErrUnsupported)
	}
	return k.ID, b, nil
}

// Info is a key as listed: never material.
type Info struct {
	ID          string     `json:"id"`
	Purpose     string     `json:"purpose"`
	State       State      `json:"state"`
	Algorithm   string     `json:"algorithm"`
	Published   bool       `json:"published"`
	CreatedAt   time.Time  `json:"createdAt"`
	ActivatedAt *time.Time `json:"activatedAt,omitempty"`
	RetiredAt   *time.Time `json:"retiredAt,omitempty"`
	DestroyedAt *time.Time `json:"destroyedAt,omitempty"`
	// Handle is the provider's handle of a key-encryption key.
	Handle string `json:"handle,omitempty"`
}

func opt(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// List lists the keys of purpose ("" for every purpose), by purpose and
// age. It needs only the store.
func (ks *KeySet) List(ctx context.Context, purpose string) ([]Info, error) {
	names := ks.names
	if purpose != "" {
		if _, err := ks.Purpose(purpose); err != nil {
			return nil, err
		}
		names = []string{purpose}
	}
	out := []Info{}
	now := ks.now()
	for _, name := range names {
		p := ks.purposes[name]
		rows, err := ks.st.ListKeys(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("list %s keys: %w", name, err)
		}
		for _, r := range rows {
			k := keyOf(p, r, now)
			out = append(out, Info{ID: k.ID, Purpose: name, State: k.State, Algorithm: p.Algorithm,
				Published: p.Published && accepted(k.State), CreatedAt: r.CreatedAt,
				ActivatedAt: opt(r.ActivatedAt), RetiredAt: opt(r.RetiredAt), DestroyedAt: opt(r.DestroyedAt), Handle: k.Handle})
		}
	}
	return out, nil
}

// RotateOptions change a rotation.
type RotateOptions struct {
	// Force rotates even when the next key is younger than the
	// purpose's MinNextAge.
	Force bool
	// PurgeRetired destroys every retired key of the purpose (the one
	// just retired too): for a key that may be compromised.
	PurgeRetired bool
}

// Rotation is what a rotation did.
type Rotation struct {
	Purpose string `json:"purpose"`
	// Activated signs from now on (the previous next key).
	Activated string `json:"activated"`
	// Retired are the keys that signed until now.
	Retired []string `json:"retired"`
	// Next is the new next key.
	Next string `json:"next"`
	// Destroyed are the keys PurgeRetired destroyed.
	Destroyed []string `json:"destroyed,omitempty"`
}

// Rotate switches purpose to its next key, retires the active one and
// makes a new next key. Retired keys stay (accepted for the purpose's
// overlap, then kept until destroyed on request). Unless opt.Force is
// set, a rotation to a next key younger than the purpose's MinNextAge is
// refused with a *TooSoonError.
func (ks *KeySet) Rotate(ctx context.Context, purpose string, opt RotateOptions) (Rotation, error) {
	r := Rotation{Purpose: purpose}
	p, err := ks.Purpose(purpose)
	if err != nil {
		return r, err
	}
	if !p.canCreate() {
		return r, fmt.Errorf("rotate %s keys: %w (its key provider is not configured)", purpose, ErrUnsupported)
	}
	if opt.PurgeRetired && p.Overlap == KeepUntilDestroyed {
		return r, fmt.Errorf("rotate %s keys: purging retired keys would make what they still protect unreadable; destroy them one by one once nothing needs them: %w", purpose, ErrUnsupported)
	}
	if err := ks.ensure(ctx, p); err != nil {
		return r, err
	}
	rows, err := ks.st.ListKeys(ctx, purpose)
	if err != nil {
		return r, fmt.Errorf("rotate %s keys: %w", purpose, err)
	}
	now := ks.now()
	var next *store.Key
	for i, k := range rows {
		switch p.StateOf(k, now) {
		case StateNext:
			if next == nil {
				next = &rows[i]
			}
		case StateActive:
			r.Retired = append(r.Retired, k.ID)
		}
	}
	if next == nil {
		return r, fmt.Errorf("rotate %s keys: no next key", purpose)
	}
	if age := now.Sub(next.CreatedAt); !opt.Force && age < p.MinNextAge {
		return r, &TooSoonError{Purpose: purpose, Age: age, Min: p.MinNextAge, Risk: p.EarlyRisk}
	}
	nk, err := ks.newKey(ctx, p, now)
	if err != nil {
		return r, err
	}
	// Nothing is deleted: keys are destroyed only on request.
	if err := ks.st.RotateKeys(ctx, purpose, next.ID, nk, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return r, fmt.Errorf("rotate %s keys: another rotation of %s ran at the same time and won; see `parley keys list --purpose %s` before rotating again: %w", purpose, purpose, purpose, err)
		}
		return r, fmt.Errorf("rotate %s keys: %w", purpose, err)
	}
	r.Activated, r.Next = next.ID, nk.ID
	if opt.PurgeRetired {
		if rows, err = ks.st.ListKeys(ctx, purpose); err != nil {
			return r, fmt.Errorf("purge retired %s keys: %w", purpose, err)
		}
		for _, k := range rows {
			if s := p.StateOf(k, now); s == StateRetired || s == StateExpired {
				if err := ks.destroy(ctx, p, k); err != nil {
					return r, fmt.Errorf("purge retired %s keys: %w", purpose, err)
				}
				r.Destroyed = append(r.Destroyed, k.ID)
			}
		}
	}
	if ks.loaded(purpose) {
		if err := ks.Reload(ctx); err != nil {
			return r, err
		}
	}
	// The hook sees the rotation done (KEKs: it re-wraps under the key
	// just activated).
	if p.Rotated != nil {
		if err := p.Rotated(ctx, r); err != nil {
			return r, fmt.Errorf("rotated %s keys, then: %w", purpose, err)
		}
	}
	return r, nil
}

// Find returns the row of key id, of any configured purpose.
func (ks *KeySet) Find(ctx context.Context, id string) (store.Key, Purpose, error) {
	for _, name := range ks.names {
		rows, err := ks.st.ListKeys(ctx, name)
		if err != nil {
			return store.Key{}, Purpose{}, fmt.Errorf("find key %s: %w", id, err)
		}
		for _, k := range rows {
			if k.ID == id {
				return k, ks.purposes[name], nil
			}
		}
	}
	return store.Key{}, Purpose{}, fmt.Errorf("find key %q: %w", id, ErrKeyNotFound)
}

// Destruction says what destroying a key does.
type Destruction struct {
	Key Info `json:"key"`
	// Effect says what becomes unverifiable or unreadable.
	Effect string `json:"effect"`
	// AlreadyDestroyed: the key was destroyed before; nothing changed.
	AlreadyDestroyed bool `json:"alreadyDestroyed,omitempty"`
}

// PlanDestroy checks that key id may be destroyed (it is retired) and says
// what destroying it would do, without doing it.
func (ks *KeySet) PlanDestroy(ctx context.Context, id string, opts ...DestroyOptions) (Destruction, store.Key, Purpose, error) {
	var o DestroyOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	k, p, err := ks.Find(ctx, id)
	if err != nil {
		return Destruction{}, k, p, err
	}
	now := ks.now()
	info := keyOf(p, k, now)
	d := Destruction{Key: Info{ID: k.ID, Purpose: p.Name, State: info.State, Algorithm: p.Algorithm, CreatedAt: k.CreatedAt,
		ActivatedAt: opt(k.ActivatedAt), RetiredAt: opt(k.RetiredAt), DestroyedAt: opt(k.DestroyedAt), Handle: info.Handle}}
	switch info.State {
	case StateDestroyed:
		d.AlreadyDestroyed = true
		d.Effect = "nothing: the key was destroyed already"
		return d, k, p, nil
	case StateNext, StateActive:
		return d, k, p, fmt.Errorf("destroy %s key %s: it is the %s key: %w", p.Name, id, info.State, ErrNotRetired)
	}
	if p.External != nil && p.External.Destroy == nil {
		return d, k, p, fmt.Errorf("destroy %s key %s: %w (its key provider is not configured)", p.Name, id, ErrUnsupported)
	}
	if age := now.Sub(k.RetiredAt); !o.Force && age < p.MinRetiredAge {
		return d, k, p, fmt.Errorf("destroy %s key %s: %w: it retired %v ago, less than %v: %s", p.Name, id, ErrTooSoonToDestroy, age.Round(time.Second), p.MinRetiredAge, p.EarlyDestroyRisk)
	}
	d.Effect = p.DestroyNote
	if p.Impact != nil {
		more, err := p.Impact(ctx, ks.st, k)
		if err != nil {
			return d, k, p, fmt.Errorf("destroy %s key %s: %w", p.Name, id, err)
		}
		d.Effect += " (" + more + ")"
	}
	if p.BeforeDestroy != nil {
		if err := p.BeforeDestroy(ctx, ks.st, k, o.Force); err != nil {
			return d, k, p, fmt.Errorf("destroy %s key %s: %w", p.Name, id, err)
		}
	}
	return d, k, p, nil
}

// Destroy destroys retired key id's material; the row stays as a
// tombstone. The active and next keys are refused (ErrNotRetired).
func (ks *KeySet) Destroy(ctx context.Context, id string, opts ...DestroyOptions) (Destruction, error) {
	d, k, p, err := ks.PlanDestroy(ctx, id, opts...)
	if err != nil || d.AlreadyDestroyed {
		return d, err
	}
	if err := ks.destroy(ctx, p, k); err != nil {
		return d, err
	}
	now := ks.now()
	d.Key.State, d.Key.DestroyedAt = StateDestroyed, &now
	if ks.loaded(p.Name) {
		if err := ks.Reload(ctx); err != nil {
			return d, err
		}
	}
	return d, nil
}

// loaded reports whether Load (or Reload) has read purpose's keys.
func (ks *KeySet) loaded(purpose string) bool {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	_, ok := ks.views[purpose]
	return ok
}

func (ks *KeySet) destroy(ctx context.Context, p Purpose, k store.Key) error {
	if p.External != nil {
		if p.External.Destroy == nil {
			return fmt.Errorf("destroy %s key %s: %w", p.Name, k.ID, ErrUnsupported)
		}
		if err := p.External.Destroy(ctx, Handle(k)); err != nil {
			return fmt.Errorf("destroy %s key %s: %w", p.Name, k.ID, err)
		}
	}
	if err := ks.st.DestroyKey(ctx, k.ID, ks.now()); err != nil {
		return fmt.Errorf("destroy %s key %s: %w", p.Name, k.ID, err)
	}
	return nil
}
