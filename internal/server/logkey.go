package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/redact"
	"github.com/parley-gw/parley/internal/store"
)

// logPseudonymizer loads the deployment's log pseudonym key: the newest
// active store.Key row of purpose redact.KeyPurpose, its 32 random bytes
// sealed by the keyring with associated data "log-pseudonym:" + id (as
// identity seals its token key). The first start creates it.
//
// The key-set type (internal/keyring) takes over this purpose's lifecycle
// and rotation; this loader only reads its newest active row.
func logPseudonymizer(ctx context.Context, st store.Store, kr *keyring.Keyring) (*redact.Pseudonymizer, error) {
	for attempt := 0; attempt < 2; attempt++ {
		keys, err := st.ListKeys(ctx, redact.KeyPurpose)
		if err != nil {
			return nil, fmt.Errorf("load log pseudonym key: %w", err)
		}
		for i := len(keys) - 1; i >= 0; i-- { // oldest first: the newest active wins
			k := keys[i]
			if k.ActivatedAt.IsZero() || !k.RetiredAt.IsZero() || !k.DestroyedAt.IsZero() || len(k.Sealed) == 0 {
				continue
			}
			raw, err := kr.Open(k.Sealed, []byte(redact.KeyPurpose+":"+k.ID))
			if err != nil {
				return nil, fmt.Errorf("open log pseudonym key %s (wrong master key?): %w", k.ID, err)
			}
			return redact.NewPseudonymizer(k.ID, raw)
		}
		if attempt > 0 {
			break
		}
		raw := make([]byte, redact.MinKeySize)
		id := make([]byte, 8)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("generate log pseudonym key: %w", err)
		}
		if _, err := rand.Read(id); err != nil {
			return nil, fmt.Errorf("generate log pseudonym key id: %w", err)
		}
		kid := "lp-" + hex.EncodeToString(id)
		sealed, err := kr.Seal(raw, []byte(redact.KeyPurpose+":"+kid))
		if err != nil {
			return nil, fmt.Errorf("seal log pseudonym key: %w", err)
		}
		now := time.Now().UTC()
		if err := st.PutKey(ctx, store.Key{ID: kid, Purpose: redact.KeyPurpose, Sealed: sealed, CreatedAt: now, ActivatedAt: now}); err != nil && !errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("save log pseudonym key: %w", err)
		}
	}
	return nil, errors.New("load log pseudonym key: no active key after creating one")
}
