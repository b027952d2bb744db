package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// PurposeCheckpoint is the key purpose that signs audit checkpoints
// (Ed25519, never published). Its retired keys stay usable until destroyed,
// so checkpoints signed before a rotation keep verifying by their key id.
const PurposeCheckpoint = "audit-checkpoint"

// CheckpointKeyPurpose describes the audit-checkpoint keys for the key set
// (one lifecycle with every other purpose: parley keys rotate|destroy).
func CheckpointKeyPurpose() keyring.Purpose {
	return keyring.Purpose{
		Name: PurposeCheckpoint, Algorithm: "Ed25519 (EdDSA)",
		Overlap:     keyring.KeepUntilDestroyed,
		RotateNote:  "new audit checkpoints are signed by the new key; checkpoints signed before keep verifying (a retired key is kept until destroyed)",
		DestroyNote: "audit checkpoints it signed can no longer be verified: 'parley audit verify' counts them as unverifiable and they stop anchoring the chain",
		Generate: func() (string, []byte, error) {
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return "", nil, fmt.Errorf("generate Ed25519 key: %w", err)
			}
			sum := sha256.Sum256(pub)
			return "ac-" + base64.RawURLEncoding.EncodeToString(sum[:18]), priv.Seed(), nil
		},
		Parse: func(b []byte) (any, error) {
			if len(b) != ed25519.SeedSize {
				return nil, errors.New("not an Ed25519 seed")
			}
			return ed25519.NewKeyFromSeed(b), nil
		},
	}
}

// Keys is what the log needs of the key set (*keyring.KeySet).
type Keys interface {
	Active(purpose string) (*keyring.Key, error)
	View(purpose string) (*keyring.View, error)
}

// Checkpoint is a signed head of the chain: entry Seq has Hash. Anyone
// who can write the database but does not hold the master key cannot make
// one that verifies.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      []byte    `json:"-"`
	Time      time.Time `json:"-"`
	KeyID     string    `json:"keyId"`
	Signature []byte    `json:"-"`
}

type checkpointJSON struct {
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
	Time      string `json:"time"`
	KeyID     string `json:"keyId"`
	Signature string `json:"signature"`
}

// MarshalJSON writes the checkpoint as one anchor-file line holds it.
func (c Checkpoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(checkpointJSON{Seq: c.Seq, Hash: hex.EncodeToString(c.Hash), Time: c.Time.UTC().Format(time.RFC3339Nano),
		KeyID: c.KeyID, Signature: base64.RawURLEncoding.EncodeToString(c.Signature)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Checkpoint) UnmarshalJSON(b []byte) error {
	var j checkpointJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	h, err := hex.DecodeString(j.Hash)
	if err != nil {
		return fmt.Errorf("checkpoint hash: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return fmt.Errorf("checkpoint time: %w", err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(j.Signature)
	if err != nil {
		return fmt.Errorf("checkpoint signature: %w", err)
	}
	*c = Checkpoint{Seq: j.Seq, Hash: h, Time: t.UTC(), KeyID: j.KeyID, Signature: sig}
	return nil
}

const checkpointDomain = "parley-audit-checkpoint-v1\x00"

// signed is the message a checkpoint's signature covers (length-prefixed
// like an entry's canonical encoding).
func (c Checkpoint) signed() []byte {
	b := append([]byte(nil), checkpointDomain...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time.UnixNano()))
	b = appendString(b, string(c.Hash))
	return appendString(b, c.KeyID)
}

func checkpointOf(c store.AuditCheckpoint) Checkpoint {
	return Checkpoint{Seq: c.Seq, Hash: c.Hash, Time: c.CreatedAt, KeyID: c.KeyID, Signature: c.Signature}
}

// sign makes a checkpoint of (seq, hash) at now with the active key.
func sign(keys Keys, seq int64, hash []byte, now time.Time) (Checkpoint, error) {
	k, err := keys.Active(PurposeCheckpoint)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("sign audit checkpoint: %w", err)
	}
	priv, ok := k.Value.(ed25519.PrivateKey)
	if !ok {
		return Checkpoint{}, fmt.Errorf("sign audit checkpoint: key %s is not an Ed25519 key", k.ID)
	}
	c := Checkpoint{Seq: seq, Hash: hash, Time: now.UTC(), KeyID: k.ID}
	c.Signature = ed25519.Sign(priv, c.signed())
	return c, nil
}

const macDomain = "parley-audit-entry-mac-v1\x00"

// macKey derives an entry-MAC key from an audit-checkpoint key: HMAC-SHA256
// of its Ed25519 seed over a domain string (the seed is used for nothing
// else outside Ed25519, which hashes it with SHA-512).
func macKey(k *keyring.Key) ([]byte, error) {
	priv, ok := k.Value.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key %s is not an Ed25519 key", k.ID)
	}
	m := hmac.New(sha256.New, priv.Seed())
	m.Write([]byte(macDomain))
	return m.Sum(nil), nil
}

// entryMAC is HMAC-SHA256 under key of the domain and an entry's hash.
func entryMAC(key, hash []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(macDomain))
	m.Write(hash)
	return m.Sum(nil)
}

// errUnverifiable: the checkpoint names a key that was destroyed.
var errUnverifiable = errors.New("signed by a destroyed key")

// verifySig checks c's signature against the key it names.
func verifySig(keys Keys, c Checkpoint) error {
	v, err := keys.View(PurposeCheckpoint)
	if err != nil {
		return err
	}
	k := v.Accepted(c.KeyID)
	if k == nil {
		if s, ok := v.Unusable(c.KeyID); ok && s == keyring.StateDestroyed {
			return fmt.Errorf("key %s: %w", c.KeyID, errUnverifiable)
		}
		return fmt.Errorf("signed by key %q, which is not an audit-checkpoint key of this deployment", c.KeyID)
	}
	priv, ok := k.Value.(ed25519.PrivateKey)
	if !ok {
		return fmt.Errorf("key %s is not an Ed25519 key", k.ID)
	}
	if !ed25519.Verify(priv.Public().(ed25519.PublicKey), c.signed(), c.Signature) {
		return errors.New("bad signature")
	}
	return nil
}

// appendAnchor appends c as one JSON line to path (created 0600), synced
// before it returns.
func appendAnchor(path string, c Checkpoint) error {
	line, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open audit anchor file: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		_ = f.Close()
		return fmt.Errorf("write audit anchor file: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync audit anchor file: %w", err)
	}
	return f.Close()
}

// anchorLine is one checkpoint of an anchor file, or why it could not be read.
type anchorLine struct {
	line int
	c    Checkpoint
	err  error
}

// readAnchor reads an anchor file: one checkpoint per line (blank lines
// skipped).
func readAnchor(r io.Reader) ([]anchorLine, error) {
	var out []anchorLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var c Checkpoint
		err := json.Unmarshal(b, &c)
		out = append(out, anchorLine{line: n, c: c, err: err})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read audit anchor file: %w", err)
	}
	return out, nil
}

// Head is a chain head the operator kept elsewhere: entry Seq has Hash.
type Head struct {
	Seq  int64
	Hash []byte
}

// ParseHead reads "SEQ:HASH" (the hash in hex), as 'parley audit verify'
// prints a head.
func ParseHead(s string) (Head, error) {
	seqS, hashS, ok := strings.Cut(s, ":")
	if !ok {
		return Head{}, fmt.Errorf("head %q: want SEQ:HASH (the hash in hex)", s)
	}
	seq, err := strconv.ParseInt(seqS, 10, 64)
	if err != nil || seq < 1 {
		return Head{}, fmt.Errorf("head %q: SEQ must be a positive integer", s)
	}
	h, err := hex.DecodeString(hashS)
	if err != nil || len(h) != sha256.Size {
		return Head{}, fmt.Errorf("head %q: HASH must be %d hex digits", s, 2*sha256.Size)
	}
	return Head{Seq: seq, Hash: h}, nil
}

// String is "SEQ:HASH".
func (h Head) String() string { return strconv.FormatInt(h.Seq, 10) + ":" + hex.EncodeToString(h.Hash) }
