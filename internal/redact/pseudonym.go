package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// MinKeySize is the shortest pseudonym key accepted (256 bits).
const MinKeySize = 32

// Pseudonymizer maps user ids and client addresses to stable pseudonyms
// with HMAC-SHA256 under a per-deployment key: the same id gives the same
// pseudonym while the key lasts (so one user's lines can be followed), and
// without the key a pseudonym cannot be linked back to an id, not even by
// hashing candidate ids (which a plain hash would allow). Rotating the key
// unlinks old pseudonyms from new ones.
type Pseudonymizer struct {
	cur atomic.Pointer[pseudoKey]
	// src, when set, says which key is current (a key set's active key):
	// a rotation takes effect at the next pseudonym.
	src func() (id string, key []byte, err error)
}

type pseudoKey struct {
	id   string
	key  []byte
	macs sync.Pool // of hash.Hash: HMAC-SHA256 under key
}

func newPseudoKey(id string, key []byte) (*pseudoKey, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("pseudonym key %s: %d bytes, want at least %d", id, len(key), MinKeySize)
	}
	k := &pseudoKey{id: id, key: append([]byte(nil), key...)}
	k.macs.New = func() any { return hmac.New(sha256.New, k.key) }
	return k, nil
}

// NewPseudonymizer builds a pseudonymizer from a key of at least 32 bytes;
// keyID names the key (it is never logged with each pseudonym).
func NewPseudonymizer(keyID string, key []byte) (*Pseudonymizer, error) {
	k, err := newPseudoKey(keyID, key)
	if err != nil {
		return nil, err
	}
	p := &Pseudonymizer{}
	p.cur.Store(k)
	return p, nil
}

// NewRotatingPseudonymizer builds a pseudonymizer that follows src, the
// current key (id and bytes; a key set's active key): when src names
// another key, pseudonyms are made with it from then on. src is called
// for every pseudonym and must be cheap; when it fails, or gives a key
// that is too short, the key in use stays.
func NewRotatingPseudonymizer(src func() (id string, key []byte, err error)) (*Pseudonymizer, error) {
	id, key, err := src()
	if err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	p, err := NewPseudonymizer(id, key)
	if err != nil {
		return nil, err
	}
	p.src = src
	return p, nil
}

// key is the key to use now.
func (p *Pseudonymizer) key() *pseudoKey {
	k := p.cur.Load()
	if p.src == nil {
		return k
	}
	id, key, err := p.src()
	if err != nil || id == k.id {
		return k
	}
	nk, err := newPseudoKey(id, key)
	if err != nil {
		return k
	}
	p.cur.CompareAndSwap(k, nk)
	return p.cur.Load()
}

// KeyID names the key pseudonyms are made with.
func (p *Pseudonymizer) KeyID() string { return p.key().id }

// User is the pseudonym of a user id: "u_" and 16 hex digits (64 bits of
// the HMAC).
func (p *Pseudonymizer) User(id string) string { return p.sum("u_", "user\x00", id) }

// Addr is the pseudonym of a client address: "a_" and 16 hex digits. A
// port is dropped first, so one client's connections share a pseudonym.
func (p *Pseudonymizer) Addr(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	addr = strings.Trim(addr, "[]")
	return p.sum("a_", "addr\x00", addr)
}

func (p *Pseudonymizer) sum(prefix, domain, v string) string {
	k := p.key()
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	io.WriteString(m, domain)
	io.WriteString(m, v)
	var sum [sha256.Size]byte
	var out [2 + 16]byte
	copy(out[:], prefix)
	hex.Encode(out[2:], m.Sum(sum[:0])[:8])
	k.macs.Put(m)
	return string(out[:])
}

// What a pseudonymized field becomes when no key is available (a command
// that logs before the store is open): the id never appears in the clear.
const (
	NoKeyUser = "[user]"
	NoKeyAddr = "[addr]"
)

// pseudoKind says how a field is pseudonymized.
type pseudoKind uint8

const (
	notPseudo pseudoKind = iota
	pseudoUser
	pseudoAddr
)

// userKeys and addrKeys are the attribute keys (compared without case)
// whose values are pseudonymized: the names Parley's log calls use for
// user ids and client addresses, and the usual variants.
var userKeys = []string{"user", "user_id", "userid", "from", "from_id", "recipient", "recipient_id", "member", "member_id"}
var addrKeys = []string{"client", "client_addr", "client_ip", "ip", "addr", "remote", "remote_addr", "remote_ip", "peer", "x_forwarded_for", "forwarded"}

// PseudonymizedKeys lists the attribute keys whose values are replaced by
// pseudonyms (for the documentation).
func PseudonymizedKeys() (user, addr []string) {
	return append([]string(nil), userKeys...), append([]string(nil), addrKeys...)
}

func kindOfKey(k string) pseudoKind {
	if len(k) > 16 || len(k) < 2 {
		return notPseudo
	}
	for _, u := range userKeys {
		if strings.EqualFold(k, u) {
			return pseudoUser
		}
	}
	for _, a := range addrKeys {
		if strings.EqualFold(k, a) {
			return pseudoAddr
		}
	}
	return notPseudo
}

// Pseudo is a value the redacting handler pseudonymizes whatever its
// attribute's key. Through any other handler it shows as a placeholder,
// never the id itself.
type Pseudo struct {
	kind pseudoKind
	v    string
}

// LogValue is what a handler other than the redacting one shows.
func (p Pseudo) LogValue() slog.Value {
	if p.kind == pseudoAddr {
		return slog.StringValue(NoKeyAddr)
	}
	return slog.StringValue(NoKeyUser)
}

// User is a log attribute "user" carrying a user id, logged as its
// pseudonym.
func User(id string) slog.Attr { return slog.Any("user", Pseudo{pseudoUser, id}) }

// Client is a log attribute "client_addr" carrying a client address,
// logged as its pseudonym.
func Client(addr string) slog.Attr { return slog.Any("client_addr", Pseudo{pseudoAddr, addr}) }
