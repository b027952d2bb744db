package keyring

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// RotateKEK makes the next key-encryption key active (new data keys are
// wrapped by it), retires the active one, creates a new next key and then
// re-wraps every data key still under a retired KEK. Readers keep working
// throughout: a data key is readable under its old KEK until its rewrap
// commits, and under the new one after.
func (e *Envelope) RotateKEK(ctx context.Context) (activated string, rewrapped int, err error) {
	keys, err := e.st.ListKeys(ctx, PurposeKEK)
	if err != nil {
		return "", 0, fmt.Errorf("rotate key-encryption keys: %w", err)
	}
	for _, k := range keys {
		if k.ActivatedAt.IsZero() && k.DestroyedAt.IsZero() {
			activated = k.ID
			break
		}
	}
	if activated == "" {
		return "", 0, errors.New("rotate key-encryption keys: no next key (start the server once first)")
	}
	now := e.now()
	next, err := e.newKEKRow(ctx, now)
	if err != nil {
		return "", 0, err
	}
	// Retired KEKs are never purged by rotation: they are destroyed only on
	// request (DestroyKEK), once no data key needs them.
	if err := e.st.RotateKeys(ctx, PurposeKEK, next, now, time.Time{}); err != nil {
		return "", 0, fmt.Errorf("rotate key-encryption keys: %w", err)
	}
	if err := e.Reload(ctx); err != nil {
		return "", 0, err
	}
	n, err := e.Rewrap(ctx)
	return activated, n, err
}

// Rewrap moves every data key wrapped by a retired KEK under the active
// one, in pages. It is safe to run while the server runs and to run again
// (a server that had not yet seen a rotation may have wrapped a few new
// data keys under the old KEK).
func (e *Envelope) Rewrap(ctx context.Context) (int, error) {
	keys, err := e.st.ListKeys(ctx, PurposeKEK)
	if err != nil {
		return 0, fmt.Errorf("rewrap data keys: %w", err)
	}
	act, err := e.activeKEK(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		if k.ID == act.id || k.RetiredAt.IsZero() || !k.DestroyedAt.IsZero() {
			continue
		}
		after := ""
		for {
			page, err := e.st.ListDataKeys(ctx, k.ID, after, 256)
			if err != nil {
				return n, fmt.Errorf("rewrap data keys: %w", err)
			}
			if len(page) == 0 {
				break
			}
			for _, dk := range page {
				after = dk.Scope
				h, err := e.unwrap(ctx, dk)
				if err != nil {
					return n, err
				}
				w, err := e.wrap(ctx, dk.Scope, h, act)
				if err != nil {
					return n, err
				}
				err = e.st.RewrapDataKey(ctx, k.ID, store.DataKey{Scope: dk.Scope, KEKID: act.id, Wrapped: w})
				if errors.Is(err, store.ErrNotFound) {
					continue // erased meanwhile, or rewrapped by another process
				}
				if err != nil {
					return n, fmt.Errorf("rewrap data keys: %w", err)
				}
				n++
			}
		}
	}
	return n, nil
}

// ErrKEKInUse refuses to destroy a key-encryption key that still wraps
// data keys.
var ErrKEKInUse = errors.New("key-encryption key still wraps data keys")

// DestroyKEK destroys a retired key-encryption key's material in its
// provider and marks its row destroyed. It refuses the active and the next
// key, and a key that still wraps data keys unless force is set (the data
// under those keys becomes unrecoverable: lost is returned).
func (e *Envelope) DestroyKEK(ctx context.Context, id string, force bool) (lost int, err error) {
	keys, err := e.st.ListKeys(ctx, PurposeKEK)
	if err != nil {
		return 0, fmt.Errorf("destroy key-encryption key: %w", err)
	}
	var k *store.Key
	for i := range keys {
		if keys[i].ID == id {
			k = &keys[i]
		}
	}
	switch {
	case k == nil:
		return 0, fmt.Errorf("destroy key-encryption key %s: %w", id, store.ErrNotFound)
	case !k.DestroyedAt.IsZero():
		return 0, nil
	case k.RetiredAt.IsZero():
		return 0, fmt.Errorf("destroy key-encryption key %s: it is the active or next key; rotate first (parley keys rotate --purpose kek)", id)
	}
	n, err := e.st.CountDataKeys(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("destroy key-encryption key %s: %w", id, err)
	}
	if n > 0 && !force {
		return n, fmt.Errorf("destroy key-encryption key %s: %w: %d data keys; run `parley keys rewrap` first, or pass --force to make their data unrecoverable", id, ErrKEKInUse, n)
	}
	if err := e.prov.DestroyKEK(ctx, string(k.Sealed)); err != nil {
		return 0, fmt.Errorf("destroy key-encryption key %s: %w", id, err)
	}
	if err := e.st.DestroyKey(ctx, id, e.now()); err != nil {
		return 0, fmt.Errorf("destroy key-encryption key %s: %w", id, err)
	}
	return n, nil
}
