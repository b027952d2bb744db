//go:build pkcs11

// Package pkcs11 keeps Parley's key-encryption keys (KEKs) in a hardware
// security module reached over PKCS#11. Each KEK is an AES-256 token object
// generated inside the HSM as sensitive and non-extractable: its value
// never leaves the device. Data keys are wrapped and unwrapped by AES-GCM
// running inside the HSM (CKM_AES_GCM), so Parley's database holds only
// key handles (labels) and wrapped data keys.
//
// The package needs cgo (github.com/miekg/pkcs11 loads the vendor's
// library with dlopen), so it is compiled only with the build tag pkcs11:
// the default binary stays static and cgo-free.
package pkcs11

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/parley-gw/parley/internal/keyring"
)

// Options say which token to use and how to log in to it.
type Options struct {
	// Module is the path of the vendor's PKCS#11 library.
	Module string
	// TokenLabel names the token (the slot is found by its label, since
	// slot numbers change when tokens are added).
	TokenLabel string
	// PIN is the token's user PIN. It is never logged nor put in errors.
	PIN string
	// Sessions caps the sessions open at once (PKCS#11 sessions are used
	// by one operation at a time); 0 means 1.
	Sessions int
}

// String leaves the PIN out, so Options can be printed.
func (o Options) String() string {
	return fmt.Sprintf("{Module:%s TokenLabel:%s PIN:[redacted] Sessions:%d}", o.Module, o.TokenLabel, o.Sessions)
}

// GoString is String, for %#v.
func (o Options) GoString() string { return o.String() }

// Provider is a keyring.Provider whose KEKs live in a PKCS#11 token. It is
// safe for concurrent use: each operation takes a session of its own from
// a small pool.
type Provider struct {
	module string
	token  string
	ctx    *pkcs11.Ctx
	slot   uint
	// login stays open for the provider's life: the user's login belongs
	// to the application and ends when its last session closes.
	login pkcs11.SessionHandle
	// seats holds one token per session that may be open; idle keeps the
	// open sessions no operation uses.
	seats chan struct{}
	idle  chan pkcs11.SessionHandle
	done  chan struct{}
	once  sync.Once
}

var _ keyring.Provider = (*Provider)(nil)

// Open loads the module, finds the token by its label and logs in with
// the user PIN. Close releases it all.
func Open(ctx context.Context, o Options) (*Provider, error) {
	if o.Module == "" {
		return nil, errors.New("open pkcs11 provider: no module (set keys.pkcs11.module)")
	}
	if o.TokenLabel == "" {
		return nil, errors.New("open pkcs11 provider: no token label (set keys.pkcs11.token_label)")
	}
	if o.PIN == "" {
		return nil, errors.New("open pkcs11 provider: no user PIN (set keys.pkcs11.pin_file or PARLEY_PKCS11_PIN)")
	}
	n := max(o.Sessions, 1)
	c, err := openModule(o.Module)
	if err != nil {
		return nil, err
	}
	p := &Provider{module: o.Module, token: o.TokenLabel, ctx: c,
		seats: make(chan struct{}, n), idle: make(chan pkcs11.SessionHandle, n), done: make(chan struct{})}
	if err := p.open(ctx, o.PIN); err != nil {
		closeModule(o.Module)
		return nil, err
	}
	return p, nil
}

func (p *Provider) open(ctx context.Context, pin string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("open pkcs11 provider: %w", err)
	}
	slot, err := p.findSlot()
	if err != nil {
		return err
	}
	p.slot = slot
	sh, err := p.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("open session on token %q: %w", p.token, err)
	}
	err = p.ctx.Login(sh, pkcs11.CKU_USER, pin)
	switch {
	case err == nil, is(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
		p.login = sh
		countLogin(p.module, slot, +1)
		return nil
	case is(err, pkcs11.CKR_PIN_INCORRECT):
		err = fmt.Errorf("log in to token %q: the user PIN is incorrect; check keys.pkcs11.pin_file or PARLEY_PKCS11_PIN (tokens lock the PIN after a few wrong tries): %w", p.token, err)
	case is(err, pkcs11.CKR_PIN_LOCKED):
		err = fmt.Errorf("log in to token %q: the user PIN is locked; the token's security officer must unlock or reset it: %w", p.token, err)
	case is(err, pkcs11.CKR_USER_PIN_NOT_INITIALIZED):
		err = fmt.Errorf("log in to token %q: the token has no user PIN yet; initialize it (SoftHSM2: softhsm2-util --init-token ... --pin): %w", p.token, err)
	default:
		err = fmt.Errorf("log in to token %q: %w", p.token, err)
	}
	_ = p.ctx.CloseSession(sh)
	return err
}

// findSlot returns the slot whose token has the configured label.
func (p *Provider) findSlot() (uint, error) {
	slots, err := p.ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("list PKCS#11 slots: %w", err)
	}
	var labels []string
	for _, s := range slots {
		ti, err := p.ctx.GetTokenInfo(s)
		if err != nil || ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		label := strings.TrimRight(ti.Label, " \x00")
		if label == p.token {
			return s, nil
		}
		labels = append(labels, fmt.Sprintf("%q", label))
	}
	sort.Strings(labels)
	have := "none"
	if len(labels) > 0 {
		have = strings.Join(labels, ", ")
	}
	return 0, fmt.Errorf("find token %q in %s: no initialized token has that label (tokens present: %s); set keys.pkcs11.token_label, or create the token (SoftHSM2: softhsm2-util --init-token --free --label %q)", p.token, p.module, have, p.token)
}

// Close waits for running operations, closes every session, logs out and
// unloads the module when no other provider uses it.
func (p *Provider) Close() error {
	p.once.Do(func() {
		close(p.done)
		for range cap(p.seats) {
			p.seats <- struct{}{}
		}
		for len(p.idle) > 0 {
			_ = p.ctx.CloseSession(<-p.idle)
		}
		if countLogin(p.module, p.slot, -1) == 0 {
			_ = p.ctx.Logout(p.login)
		}
		_ = p.ctx.CloseSession(p.login)
		closeModule(p.module)
	})
	return nil
}

// session runs f on a session of its own. A session whose operation failed
// is closed rather than reused, so no half-done operation stays on it.
func (p *Provider) session(ctx context.Context, f func(pkcs11.SessionHandle) error) error {
	select {
	case p.seats <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
		return ErrClosed
	}
	defer func() { <-p.seats }()
	select {
	case <-p.done:
		return ErrClosed
	default:
	}
	for {
		var sh pkcs11.SessionHandle
		reused := true
		select {
		case sh = <-p.idle:
		default:
			reused = false
			var err error
			if sh, err = p.ctx.OpenSession(p.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
				return fmt.Errorf("open session on token %q: %w", p.token, err)
			}
		}
		err := f(sh)
		if err == nil {
			p.idle <- sh
			return nil
		}
		_ = p.ctx.CloseSession(sh)
		// An idle session the token closed (a network HSM's timeout, a
		// reset) is replaced once by a fresh one.
		if !reused || !is(err, pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED) {
			return err
		}
	}
}

// Name is "pkcs11".
func (p *Provider) Name() string { return "pkcs11" }

const labelPrefix = "parley-kek-"

var handleRE = regexp.MustCompile(`^parley-kek-[0-9a-f]{32}$`)

// CreateKEK generates an AES-256 key inside the token: a token object,
// private, sensitive, never extractable, usable only to encrypt and
// decrypt, its attributes not modifiable. Its handle is its CKA_LABEL,
// "parley-kek-" and the hex of its random 16-byte CKA_ID.
func (p *Provider) CreateKEK(ctx context.Context) (string, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", fmt.Errorf("create KEK: %w", err)
	}
	label := labelPrefix + hex.EncodeToString(id)
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
	}
	err := p.session(ctx, func(sh pkcs11.SessionHandle) error {
		_, err := p.ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, tmpl)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create KEK in token %q: %w", p.token, err)
	}
	return label, nil
}

// find returns the objects of the secret key labelled handle.
func (p *Provider) find(ctx context.Context, handle string) ([]pkcs11.ObjectHandle, error) {
	var found []pkcs11.ObjectHandle
	err := p.session(ctx, func(sh pkcs11.SessionHandle) error {
		found = found[:0]
		if err := p.ctx.FindObjectsInit(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, handle),
		}); err != nil {
			return err
		}
		for {
			objs, _, err := p.ctx.FindObjects(sh, 8)
			if err != nil {
				return err
			}
			if len(objs) == 0 {
				break
			}
			found = append(found, objs...)
		}
		return p.ctx.FindObjectsFinal(sh)
	})
	if err != nil {
		return nil, fmt.Errorf("find key %s in token %q: %w", handle, p.token, err)
	}
	return found, nil
}

// lookup returns the one object of a KEK.
func (p *Provider) lookup(ctx context.Context, handle string) (pkcs11.ObjectHandle, error) {
	objs, err := p.find(ctx, handle)
	if err != nil {
		return 0, err
	}
	switch len(objs) {
	case 0:
		// Private objects are invisible to a session that is not logged
		// in: that is no proof the key is gone.
		if err := p.loggedIn(ctx); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("key %s in token %q: %w", handle, p.token, ErrKeyNotFound)
	case 1:
		return objs[0], nil
	default:
		return 0, fmt.Errorf("key %s in token %q: %d objects carry that label; remove the copies made outside Parley", handle, p.token, len(objs))
	}
}

// loggedIn fails unless the provider's sessions see the token's private
// objects.
func (p *Provider) loggedIn(ctx context.Context) error {
	return p.session(ctx, func(sh pkcs11.SessionHandle) error {
		info, err := p.ctx.GetSessionInfo(sh)
		if err != nil {
			return fmt.Errorf("session state of token %q: %w", p.token, err)
		}
		if info.State != pkcs11.CKS_RW_USER_FUNCTIONS && info.State != pkcs11.CKS_RO_USER_FUNCTIONS {
			return fmt.Errorf("token %q: %w", p.token, ErrNotLoggedIn)
		}
		return nil
	})
}

func checkHandle(handle string) error {
	if !handleRE.MatchString(handle) {
		return fmt.Errorf("key %q: not a pkcs11 provider handle (parley-kek-<32 hex digits>): %w", handle, ErrKeyNotFound)
	}
	return nil
}

// AEAD returns the AES-GCM primitive of the KEK handle names; it fails
// with ErrKeyNotFound when the token does not hold that key.
func (p *Provider) AEAD(ctx context.Context, handle string) (tink.AEAD, error) {
	if err := checkHandle(handle); err != nil {
		return nil, err
	}
	obj, err := p.lookup(ctx, handle)
	if err != nil {
		return nil, err
	}
	a := &aead{p: p, label: handle}
	a.obj.Store(uint64(obj))
	return a, nil
}

// DestroyKEK destroys the KEK's object (every copy under its label): data
// wrapped by it becomes unrecoverable. An unknown handle is not an error.
func (p *Provider) DestroyKEK(ctx context.Context, handle string) error {
	if err := checkHandle(handle); err != nil {
		return err
	}
	objs, err := p.find(ctx, handle)
	if err != nil {
		return fmt.Errorf("destroy KEK: %w", err)
	}
	if len(objs) == 0 {
		// Not seen is destroyed only when the session could see it.
		if err := p.loggedIn(ctx); err != nil {
			return fmt.Errorf("destroy KEK %s: %w", handle, err)
		}
	}
	for _, o := range objs {
		err := p.session(ctx, func(sh pkcs11.SessionHandle) error { return p.ctx.DestroyObject(sh, o) })
		if err != nil && !staleHandle(err) {
			return fmt.Errorf("destroy KEK %s in token %q: %w", handle, p.token, err)
		}
	}
	return nil
}
