package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/aead/subtle"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// LocalProvider is the embedded default key provider: each key-encryption
// key is a Tink AES-256-GCM keyset in its own file under dir, encrypted by
// the master key (which never touches the disk next to it unless the
// operator put it there). Destroying a key overwrites and removes its
// file, so a copy of the database taken before cannot be unwrapped with
// the data directory as it is after.
type LocalProvider struct {
	dir    string
	master tink.AEAD

	mu    sync.Mutex
	cache map[string]tink.AEAD
	// destroyed are the handles DestroyKEK destroyed: an open that read
	// the file before it went must not cache (or return) it.
	destroyed map[string]bool
}

const localPrefix = "local:"

// NewLocalProvider keeps KEK keysets in dir (created 0700), sealed with the
// 32-byte master key.
func NewLocalProvider(dir string, master []byte) (*LocalProvider, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("local key provider: master key must be %d bytes, got %d", KeySize, len(master))
	}
	m, err := subtle.NewAESGCM(master)
	if err != nil {
		return nil, fmt.Errorf("local key provider: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	return &LocalProvider{dir: dir, master: m, cache: map[string]tink.AEAD{}, destroyed: map[string]bool{}}, nil
}

// Name is "local".
func (p *LocalProvider) Name() string { return "local" }

func (p *LocalProvider) path(handle string) (string, error) {
	id, ok := strings.CutPrefix(handle, localPrefix)
	if !ok || len(id) != 32 {
		return "", fmt.Errorf("local key provider: %q is not a local key handle", handle)
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", fmt.Errorf("local key provider: %q is not a local key handle", handle)
	}
	return filepath.Join(p.dir, "kek-"+id+".tink"), nil
}

func aadFor(handle string) []byte { return []byte("parley-local-kek:" + handle) }

// CreateKEK generates a keyset and writes it sealed (mode 0600, fsynced).
func (p *LocalProvider) CreateKEK(_ context.Context) (string, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", fmt.Errorf("create key-encryption key: %w", err)
	}
	handle := localPrefix + hex.EncodeToString(id[:])
	path, err := p.path(handle)
	if err != nil {
		return "", err
	}
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return "", fmt.Errorf("create key-encryption key: %w", err)
	}
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), p.master, aadFor(handle)); err != nil {
		return "", fmt.Errorf("seal key-encryption key: %w", err)
	}
	if err := writeFileSync(path, buf.Bytes()); err != nil {
		return "", fmt.Errorf("write key-encryption key: %w", err)
	}
	return handle, nil
}

// ErrKeyDestroyed means a key's material is gone: data under it cannot be
// recovered.
var ErrKeyDestroyed = errors.New("key destroyed")

// AEAD opens the keyset of handle (cached after the first use).
func (p *LocalProvider) AEAD(_ context.Context, handle string) (tink.AEAD, error) {
	p.mu.Lock()
	a, ok := p.cache[handle]
	gone := p.destroyed[handle]
	p.mu.Unlock()
	if gone {
		return nil, fmt.Errorf("open key-encryption key %s: %w", handle, ErrKeyDestroyed)
	}
	if ok {
		return a, nil
	}
	path, err := p.path(handle)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open key-encryption key %s: its file %s is missing (destroyed, or the data directory was restored without its keys directory: restore %s from the backup that goes with the database; without it the data under this key is unrecoverable): %w", handle, path, p.dir, ErrKeyDestroyed)
	}
	if err != nil {
		return nil, fmt.Errorf("open key-encryption key %s: %w", handle, err)
	}
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(b)), p.master, aadFor(handle))
	if err != nil {
		return nil, fmt.Errorf("open key-encryption key %s (wrong master key?): %w (%v)", handle, ErrOpen, err)
	}
	a, err = aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("open key-encryption key %s: %w", handle, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.destroyed[handle] { // destroyed while it was read
		return nil, fmt.Errorf("open key-encryption key %s: %w", handle, ErrKeyDestroyed)
	}
	p.cache[handle] = a
	return a, nil
}

// DestroyKEK overwrites the keyset file with zeros, syncs and removes it.
func (p *LocalProvider) DestroyKEK(_ context.Context, handle string) error {
	path, err := p.path(handle)
	if err != nil {
		return err
	}
	p.mu.Lock()
	delete(p.cache, handle)
	p.destroyed[handle] = true
	p.mu.Unlock()
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("destroy key-encryption key %s: %w", handle, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("destroy key-encryption key %s: %w", handle, err)
	}
	_, werr := f.Write(make([]byte, st.Size()))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("destroy key-encryption key %s: overwrite: %w", handle, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("destroy key-encryption key %s: %w", handle, err)
	}
	return syncDir(p.dir)
}

// writeFileSync creates path (never overwriting) with data, mode 0600, and
// syncs the file and its directory.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
