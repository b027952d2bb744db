package server

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/parley-gw/parley/internal/config"
	"github.com/parley-gw/parley/internal/conversation"
	"github.com/parley-gw/parley/internal/keyring"
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
