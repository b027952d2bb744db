package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/store"
)

// Keys are the keys a process needs to read and write content: the
// master-key keyring (signing keys) and envelope encryption (content).
type Keys struct {
	Keyring  *keyring.Keyring
	Envelope *keyring.Envelope
	Codec    conversation.Codec
}

// MasterKey reads the master key: PARLEY_MASTER_KEY when set, else the
// key file (created on first use).
func MasterKey(cfg config.Config) ([]byte, error) {
	if cfg.MasterKey != "" {
		k, err := keyring.ParseKey(cfg.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("PARLEY_MASTER_KEY: %w", err)
		}
		return k, nil
	}
	k, err := keyring.LoadOrCreateFile(cfg.MasterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return k, nil
}

// OpenKeys opens the configured key provider and envelope encryption
// over st (creating the first key-encryption keys on first use).
func OpenKeys(ctx context.Context, cfg config.Config, st keyring.EnvelopeStore) (Keys, error) {
	master, err := MasterKey(cfg)
	if err != nil {
		return Keys{}, err
	}
	kr, err := keyring.New(master)
	if err != nil {
		return Keys{}, err
	}
	prov, err := keyring.NewLocalProvider(filepath.Join(cfg.DataDir, "keys"), master)
	if err != nil {
		return Keys{}, err
	}
	env, err := keyring.NewEnvelope(ctx, keyring.EnvelopeConfig{Store: st, Provider: prov,
		CacheSize: cfg.Keys.DataKeyCache, RefreshEvery: time.Duration(cfg.Bots.KeyReload)})
	if err != nil {
		return Keys{}, fmt.Errorf("envelope encryption: %w", err)
	}
	return Keys{Keyring: kr, Envelope: env, Codec: conversation.SealedCodec{S: env}}, nil
}

// rewrapLoop keeps key-encryption-key rotation online: it re-reads the
// active KEK and moves data keys still wrapped by a retired KEK under it
// (those this server wrapped before it saw a rotation made elsewhere),
// every key_reload.
func (s *Server) rewrapLoop(ctx context.Context) {
	t := time.NewTicker(time.Duration(s.cfg.Bots.KeyReload))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.envelope.Reload(ctx); err != nil {
			s.logger.Error("reload key-encryption keys failed", "err", err)
			continue
		}
		if n, err := s.envelope.Rewrap(ctx); err != nil {
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
	for _, kind := range []string{store.LegacyActivity, store.LegacyOutbox, store.LegacyDeadLetter, store.LegacyAttachment} {
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
				if kind == store.LegacyAttachment {
					sealed, err = codec.EncodeFile(ctx, b.ConversationID, b.ID, b.Body[1:])
				} else {
					sealed, err = codec.Encode(ctx, b.ConversationID, b.Body[1:])
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
	logger.Info("sealed content stored before encryption at rest", "items", n)
	return n, nil
}
