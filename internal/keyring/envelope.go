package keyring

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/parley-gw/parley/internal/store"
)

// EnvelopeStore is what envelope encryption needs of the store.
type EnvelopeStore interface {
	PutDataKey(ctx context.Context, k store.DataKey) error
	GetDataKey(ctx context.Context, scope string) (store.DataKey, error)
	RewrapDataKey(ctx context.Context, oldKEK string, k store.DataKey) error
	ListDataKeys(ctx context.Context, kekID, afterScope string, limit int) ([]store.DataKey, error)
	CountDataKeys(ctx context.Context, kekID string) (int, error)
}

// EnvelopeConfig configures envelope encryption.
type EnvelopeConfig struct {
	Store EnvelopeStore
	// Keys holds the KEKs' lifecycle (purpose kek, KEKPurpose with
	// Provider), loaded; its reloads (every key_reload in a server) make a
	// rotation done elsewhere take effect.
	Keys     *KeySet
	Provider Provider
	// CacheSize bounds the unwrapped data keys held in memory.
	CacheSize int
	Now       func() time.Time
}

// Envelope seals data under per-scope data keys (Tink AES-256-GCM
// keysets), each wrapped by a key-encryption key from a Provider. A
// ciphertext carries Tink's key-id prefix; the scope's data key row names
// the KEK that wrapped it.
type Envelope struct {
	st   EnvelopeStore
	keys *KeySet
	prov Provider
	now  func() time.Time
	max  int

	mu      sync.Mutex
	lru     *list.List // of *dekEntry, most recent first
	byScope map[string]*list.Element
	// forgets counts Forget calls: a key loaded while one ran (it may have
	// been read before its deletion) is used once, not cached.
	forgets uint64
}

type kekRef struct {
	id, handle string
}

type dekEntry struct {
	scope string
	aead  tink.AEAD
	at    time.Time // when it was unwrapped
}

// dekTTL bounds how long an unwrapped data key stays in memory before it is
// read again from the store: a key erased by another process (`parley
// erase`, a sweeper elsewhere) leaves this one's memory within it.
const dekTTL = 5 * time.Minute

// Errors from Open.
var (
	// ErrNoDataKey means the scope's data key is gone (erased or expired):
	// what was sealed under it is unrecoverable.
	ErrNoDataKey = errors.New("no data key: the data was erased or has expired")
	// ErrTampered means a ciphertext does not authenticate under its
	// scope's key: it was modified, truncated or moved from elsewhere.
	ErrTampered = errors.New("ciphertext does not authenticate (modified, or moved from another conversation)")
)

// NewEnvelope checks that the active KEK opens in its provider.
func NewEnvelope(ctx context.Context, cfg EnvelopeConfig) (*Envelope, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheSize <= 0 {
		return nil, errors.New("envelope: cache size must be positive")
	}
	if cfg.Keys == nil || cfg.Provider == nil {
		return nil, errors.New("envelope: a key set and a key provider are required")
	}
	e := &Envelope{st: cfg.Store, keys: cfg.Keys, prov: cfg.Provider, now: cfg.Now, max: cfg.CacheSize,
		lru: list.New(), byScope: map[string]*list.Element{}}
	act, err := e.activeKEK()
	if err != nil {
		return nil, err
	}
	if _, err := e.prov.AEAD(ctx, act.handle); err != nil {
		return nil, fmt.Errorf("open active key-encryption key %s: %w", act.id, err)
	}
	return e, nil
}

func (e *Envelope) activeKEK() (kekRef, error) {
	k, err := e.keys.Active(PurposeKEK)
	if err != nil {
		return kekRef{}, err
	}
	return kekRef{id: k.ID, handle: k.Handle}, nil
}

// kekHandle finds the handle of KEK id: from the key set as loaded, or,
// for a KEK made by another process since, after a reload. A KEK the
// loaded set knows as destroyed fails at once (no reload per request).
func (e *Envelope) kekHandle(ctx context.Context, id string) (string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		v, err := e.keys.View(PurposeKEK)
		if err != nil {
			return "", err
		}
		if k := v.Accepted(id); k != nil {
			return k.Handle, nil
		}
		if s, ok := v.Unusable(id); ok {
			if s == StateDestroyed {
				return "", fmt.Errorf("key-encryption key %s: %w", id, ErrKeyDestroyed)
			}
			return "", fmt.Errorf("key-encryption key %s is %s, not usable", id, s)
		}
		if attempt == 0 {
			if err := e.keys.Reload(ctx); err != nil {
				return "", err
			}
		}
	}
	k, _, err := e.keys.Find(ctx, id)
	if err != nil {
		return "", fmt.Errorf("key-encryption key %s: %w", id, err)
	}
	if !k.DestroyedAt.IsZero() {
		return "", fmt.Errorf("key-encryption key %s: %w", id, ErrKeyDestroyed)
	}
	return "", fmt.Errorf("key-encryption key %s is not usable", id)
}

func (e *Envelope) cached(scope string) tink.AEAD {
	e.mu.Lock()
	defer e.mu.Unlock()
	if el, ok := e.byScope[scope]; ok {
		d := el.Value.(*dekEntry)
		if e.now().Sub(d.at) >= dekTTL {
			e.lru.Remove(el)
			delete(e.byScope, scope)
			return nil
		}
		e.lru.MoveToFront(el)
		return d.aead
	}
	return nil
}

// forgetMark is what remember compares: take it before reading a key from
// the store.
func (e *Envelope) forgetMark() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.forgets
}

// remember caches scope's key, unless a Forget ran since mark (the key
// may be erased: a later use reads the store again).
func (e *Envelope) remember(scope string, a tink.AEAD, mark uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.forgets != mark {
		return
	}
	if el, ok := e.byScope[scope]; ok {
		e.lru.MoveToFront(el)
		return
	}
	e.byScope[scope] = e.lru.PushFront(&dekEntry{scope: scope, aead: a, at: e.now()})
	for e.lru.Len() > e.max {
		old := e.lru.Remove(e.lru.Back()).(*dekEntry)
		delete(e.byScope, old.scope)
	}
}

// Forget drops a scope's unwrapped key from memory (after an erasure).
func (e *Envelope) Forget(scope string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.forgets++
	if el, ok := e.byScope[scope]; ok {
		e.lru.Remove(el)
		delete(e.byScope, scope)
	}
}

func dekAAD(scope string) []byte { return []byte("parley-data-key:" + scope) }

// unwrap opens a stored data key.
func (e *Envelope) unwrap(ctx context.Context, dk store.DataKey) (*keyset.Handle, error) {
	handle, err := e.kekHandle(ctx, dk.KEKID)
	if err != nil {
		return nil, fmt.Errorf("unwrap data key of %s: %w", dk.Scope, err)
	}
	kek, err := e.prov.AEAD(ctx, handle)
	if err != nil {
		return nil, fmt.Errorf("unwrap data key of %s: %w", dk.Scope, err)
	}
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(dk.Wrapped)), kek, dekAAD(dk.Scope))
	if err != nil {
		return nil, fmt.Errorf("unwrap data key of %s under %s: %w", dk.Scope, dk.KEKID, ErrTampered)
	}
	return h, nil
}

func (e *Envelope) wrap(ctx context.Context, scope string, h *keyset.Handle, kek kekRef) ([]byte, error) {
	a, err := e.prov.AEAD(ctx, kek.handle)
	if err != nil {
		return nil, fmt.Errorf("wrap data key of %s: %w", scope, err)
	}
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), a, dekAAD(scope)); err != nil {
		return nil, fmt.Errorf("wrap data key of %s: %w", scope, err)
	}
	return buf.Bytes(), nil
}

// Prepare makes sure scope has a data key, creating and storing it if it
// has none, and holds it unwrapped. Call it outside store transactions.
func (e *Envelope) Prepare(ctx context.Context, scope string) error {
	_, err := e.dek(ctx, scope, true)
	return err
}

func (e *Envelope) dek(ctx context.Context, scope string, create bool) (tink.AEAD, error) {
	if a := e.cached(scope); a != nil {
		return a, nil
	}
	mark := e.forgetMark()
	dk, err := e.st.GetDataKey(ctx, scope)
	if errors.Is(err, store.ErrNotFound) {
		if !create {
			return nil, fmt.Errorf("data key of %s: %w", scope, ErrNoDataKey)
		}
		return e.create(ctx, scope, mark)
	}
	if err != nil {
		return nil, fmt.Errorf("load data key of %s: %w", scope, err)
	}
	h, err := e.unwrap(ctx, dk)
	if err != nil {
		return nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("data key of %s: %w", scope, err)
	}
	e.remember(scope, a, mark)
	return a, nil
}

func (e *Envelope) create(ctx context.Context, scope string, mark uint64) (tink.AEAD, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("create data key of %s: %w", scope, err)
	}
	// The store refuses a KEK retired (and maybe destroyed) by another
	// process since this key set was loaded: reload, wrap under the
	// active one.
	for attempt := 0; ; attempt++ {
		kek, err := e.activeKEK()
		if err != nil {
			return nil, err
		}
		wrapped, err := e.wrap(ctx, scope, h, kek)
		if err != nil {
			return nil, err
		}
		err = e.st.PutDataKey(ctx, store.DataKey{Scope: scope, KEKID: kek.id, Wrapped: wrapped, CreatedAt: e.now()})
		if errors.Is(err, store.ErrKEKRetired) && attempt == 0 {
			if err := e.keys.Reload(ctx); err != nil {
				return nil, fmt.Errorf("create data key of %s: %w", scope, err)
			}
			continue
		}
		return e.created(ctx, scope, h, mark, err)
	}
}

func (e *Envelope) created(ctx context.Context, scope string, h *keyset.Handle, mark uint64, err error) (tink.AEAD, error) {
	if errors.Is(err, store.ErrExists) {
		return e.dek(ctx, scope, false) // another writer won: use its key
	}
	if err != nil {
		return nil, fmt.Errorf("save data key of %s: %w", scope, err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("data key of %s: %w", scope, err)
	}
	e.remember(scope, a, mark)
	return a, nil
}

// Seal encrypts plaintext under scope's data key, binding it to aad. It
// never creates the key (it may run inside a store transaction, where a
// write would wait on itself): Prepare does, before. A scope without a
// key fails with ErrNoDataKey.
func (e *Envelope) Seal(ctx context.Context, scope string, plaintext, aad []byte) ([]byte, error) {
	a, err := e.dek(ctx, scope, false)
	if err != nil {
		return nil, err
	}
	ct, err := a.Encrypt(plaintext, aad)
	if err != nil {
		return nil, fmt.Errorf("seal under %s: %w", scope, err)
	}
	return ct, nil
}

// Open decrypts what Seal made with the same scope and aad. A scope
// without a data key fails with ErrNoDataKey, a ciphertext that does not
// authenticate with ErrTampered: never garbage.
func (e *Envelope) Open(ctx context.Context, scope string, ciphertext, aad []byte) ([]byte, error) {
	a, err := e.dek(ctx, scope, false)
	if err != nil {
		return nil, err
	}
	pt, err := a.Decrypt(ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("open under %s: %w", scope, ErrTampered)
	}
	return pt, nil
}
