package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley-gw/parley/internal/audit"
	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// Keys are every key a process holds: the master-key keyring, the key
// set (every purpose's lifecycle) and envelope encryption of content.
type Keys struct {
	Keyring  *keyring.Keyring
	Set      *keyring.KeySet
	Envelope *keyring.Envelope
	Codec    conversation.Codec
	provider keyring.Provider
}

// Close releases the key provider (an HSM's sessions); the local provider
// holds nothing to release.
func (k Keys) Close() error {
	if c, ok := k.provider.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// operatorPurposes are the key purposes of the operators' features
// (issue 13), in KeyPurposes: the audit log's checkpoint signing key
// (Ed25519, never published, retired keys kept until destroyed so old
// checkpoints keep verifying by their key id).
func operatorPurposes() []keyring.Purpose {
	return []keyring.Purpose{audit.CheckpointKeyPurpose()}
}

// MasterKey reads the master key: PARLEY_MASTER_KEY when set, else the
// key file. The file is created, with a fresh random key, only while st
// holds no key yet (a new data directory). Once keys are sealed under a
// master key, a missing file is refused and nothing is created: a new key
// could not open them, and a stray key file (at a mistyped
// master_key_file, or beside a key moved to PARLEY_MASTER_KEY or an HSM)
// would only mislead.
func MasterKey(ctx context.Context, cfg config.Config, st store.Store) ([]byte, error) {
	if cfg.MasterKey != "" {
		k, err := keyring.ParseKey(cfg.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("PARLEY_MASTER_KEY: %w", err)
		}
		return k, nil
	}
	k, err := keyring.LoadFile(cfg.MasterKeyFile)
	if !errors.Is(err, os.ErrNotExist) {
		if err != nil {
			return nil, fmt.Errorf("master key: %w", err)
		}
		return k, nil
	}
	sealed, err := holdsKeys(ctx, cfg, st)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if sealed {
		return nil, fmt.Errorf("master key file %s (master_key_file) does not exist, but this data directory's keys are sealed under a master key: "+
			"put that key back at %s, point master_key_file at it, or give it in PARLEY_MASTER_KEY (nothing was created: a new key cannot open them)", cfg.MasterKeyFile, cfg.MasterKeyFile)
	}
	k, err = keyring.LoadOrCreateFile(cfg.MasterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return k, nil
}

// holdsKeys reports whether st holds a key of any purpose (sealed under
// the master key, or a key-encryption key's row).
func holdsKeys(ctx context.Context, cfg config.Config, st store.Store) (bool, error) {
	for _, p := range KeyPurposes(cfg, keyring.Purpose{Name: keyring.PurposeKEK}) {
		keys, err := st.ListKeys(ctx, p.Name)
		if err != nil {
			return false, fmt.Errorf("list %s keys: %w", p.Name, err)
		}
		if len(keys) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// masterKeyHint says, for a key the master key does not open, where that
// master key came from and what to do.
func masterKeyHint(cfg config.Config, err error) string {
	if !errors.Is(err, keyring.ErrOpen) {
		return ""
	}
	src := "the file " + cfg.MasterKeyFile + " (master_key_file)"
	if cfg.MasterKey != "" {
		src = "PARLEY_MASTER_KEY"
	}
	return "; the master key in use comes from " + src + ": use the one this data directory's keys were sealed with"
}

// OpenKeys opens the key set of every purpose, the configured key
// provider and envelope encryption over st (creating the first keys on
// first use); the server and the admin commands use the same.
func OpenKeys(ctx context.Context, cfg config.Config, st store.Store) (Keys, error) {
	master, err := MasterKey(ctx, cfg, st)
	if err != nil {
		return Keys{}, err
	}
	kr, err := keyring.New(master)
	if err != nil {
		return Keys{}, err
	}
	prov, err := NewKEKProvider(ctx, cfg, master)
	if err != nil {
		return Keys{}, err
	}
	// The kek purpose's rotation re-wraps through the envelope, which
	// needs the loaded key set: the hook reaches it once both exist.
	var env *keyring.Envelope
	rewrap := func(ctx context.Context, r keyring.Rotation) error {
		if env == nil {
			return nil
		}
		return env.AfterRotation(ctx, r)
	}
	closeOnErr := func(err error) (Keys, error) {
		_ = Keys{provider: prov}.Close()
		return Keys{}, err
	}
	set := keyring.NewKeySet(keyring.KeySetConfig{Store: st, Keyring: kr, Purposes: KeyPurposes(cfg, keyring.KEKPurpose(prov, rewrap))})
	if err := set.Load(ctx); err != nil {
		return closeOnErr(fmt.Errorf("keys: %w%s", err, masterKeyHint(cfg, err)))
	}
	env, err = keyring.NewEnvelope(ctx, keyring.EnvelopeConfig{Store: st, Keys: set, Provider: prov, CacheSize: cfg.Keys.DataKeyCache})
	if err != nil {
		return closeOnErr(fmt.Errorf("envelope encryption: %w%s", err, masterKeyHint(cfg, err)))
	}
	return Keys{Keyring: kr, Set: set, Envelope: env, Codec: conversation.SealedCodec{S: env}, provider: prov}, nil
}

// rewrapLoop keeps KEK rotations made elsewhere (the CLI, another
// replica) online: every key_reload (when the authority also re-reads
// every key) it moves data keys still wrapped by a retired KEK under the
// active one (those this server wrapped before it saw the rotation).
func (s *Server) rewrapLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(s.cfg.Bots.KeyReload))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.envelope.Rewrap(ctx); err != nil {
			if ctx.Err() != nil {
				return // shutting down
			}
			s.logger.Error("rewrap data keys failed", "err", err)
		} else if n > 0 {
			s.logger.Info("rewrapped data keys under the active key-encryption key", "count", n)
		}
	}
}

// legacyStore is what sealing legacy content needs of the store.
type legacyStore interface {
	LegacyPending(ctx context.Context) (bool, error)
	ListLegacy(ctx context.Context, kind string, after store.LegacyBlob, limit int) ([]store.LegacyBlob, error)
	ReplaceLegacy(ctx context.Context, b store.LegacyBlob, body []byte) (bool, error)
	ClearLegacyPending(ctx context.Context) error
	Scrub(ctx context.Context) error
}

// SealLegacy seals, once, the content a store held before encryption at
// rest (activities, outbox items, dead letters and attachments in the
// plain format) under its conversations' data keys. It runs at start
// before anything is served, and does nothing once done.
func SealLegacy(ctx context.Context, st legacyStore, codec conversation.Codec, logger *slog.Logger) (int, error) {
	pending, err := st.LegacyPending(ctx)
	if err != nil || !pending {
		return 0, err
	}
	logger.Info("sealing content stored before encryption at rest (once)")
	n := 0
	for _, kind := range []string{store.LegacyActivity, store.LegacyOutbox, store.LegacyDeadLetter, store.LegacyAttachment, store.LegacyAttachmentName} {
		var after store.LegacyBlob
		for {
			page, err := st.ListLegacy(ctx, kind, after, 256)
			if err != nil {
				return n, fmt.Errorf("seal legacy content: %w", err)
			}
			if len(page) == 0 {
				break
			}
			for _, b := range page {
				after = b
				if err := codec.Prepare(ctx, b.ConversationID); err != nil {
					return n, fmt.Errorf("seal legacy content: %w", err)
				}
				var sealed []byte
				switch kind {
				case store.LegacyAttachmentName:
					var name string
					name, err = conversation.SealAttachmentName(ctx, codec, b.ConversationID, b.ID, string(b.Body))
					sealed = []byte(name)
				case store.LegacyAttachment:
					sealed, err = codec.EncodeFile(ctx, b.ConversationID, b.ID, b.Body[1:])
				case store.LegacyActivity:
					sealed, err = codec.EncodeRecord(ctx, b.ConversationID, b.Seq, b.Body[1:])
				case store.LegacyOutbox, store.LegacyDeadLetter:
					sealed, err = codec.EncodeOutbox(ctx, b.ConversationID, b.Body[1:])
				default:
					err = fmt.Errorf("unknown kind %q", kind)
				}
				if err != nil {
					return n, fmt.Errorf("seal legacy %s of %s: %w", kind, b.ConversationID, err)
				}
				ok, err := st.ReplaceLegacy(ctx, b, sealed)
				if err != nil {
					return n, fmt.Errorf("seal legacy content: %w", err)
				}
				if ok {
					n++
				}
			}
		}
	}
	if err := st.ClearLegacyPending(ctx); err != nil {
		return n, err
	}
	// The plain versions must not linger in free pages or the WAL.
	if err := st.Scrub(ctx); err != nil {
		return n, fmt.Errorf("seal legacy content: %w", err)
	}
	logger.Info("sealed content stored before encryption at rest", "items", n)
	return n, nil
}

// insideDir reports whether path lies inside dir.
func insideDir(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
