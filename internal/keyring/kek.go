package keyring

import (
	"context"
	"errors"
	"fmt"

	"github.com/parley-gw/parley/internal/store"
)

// RotateKEK rotates the key-encryption keys through the key set (the next
// KEK becomes active, the active one retires, a new next KEK is made); the
// purpose's Rotated hook (AfterRotation) then re-wraps every data key
// still under a retired KEK. Readers keep working throughout: a data key
// is readable under its old KEK until its rewrap commits, and under the
// new one after.
func (e *Envelope) RotateKEK(ctx context.Context) (Rotation, error) {
	return e.keys.Rotate(ctx, PurposeKEK, RotateOptions{})
}

// AfterRotation is the Rotated hook of the kek purpose: it re-wraps.
func (e *Envelope) AfterRotation(ctx context.Context, _ Rotation) error {
	_, err := e.Rewrap(ctx)
	return err
}

// Rewrap moves every data key wrapped by a retired KEK under the active
// one, in pages. It is safe to run while the server runs and to run again
// (a server that had not yet seen a rotation may have wrapped a few new
// data keys under the old KEK).
func (e *Envelope) Rewrap(ctx context.Context) (int, error) {
	// A rotation made meanwhile by another process retires the KEK this
	// one re-wraps under (the store refuses it): reload and go on under
	// the new active KEK.
	total := 0
	for attempt := 0; ; attempt++ {
		n, err := e.rewrap(ctx)
		total += n
		if !errors.Is(err, store.ErrKEKRetired) || attempt == 4 {
			return total, err
		}
		if err := e.keys.Reload(ctx); err != nil {
			return total, fmt.Errorf("rewrap data keys: %w", err)
		}
	}
}

func (e *Envelope) rewrap(ctx context.Context) (int, error) {
	v, err := e.keys.View(PurposeKEK)
	if err != nil {
		return 0, fmt.Errorf("rewrap data keys: %w", err)
	}
	act, err := e.activeKEK()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range v.AcceptedKeys() {
		if k.ID == act.id || k.State != StateRetired {
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

// KEKGuard is the kek purpose's BeforeDestroy check: a KEK that still
// wraps data keys is destroyed only when forced (their data is lost).
func KEKGuard(ctx context.Context, st store.Store, k store.Key, force bool) error {
	n, err := st.CountDataKeys(ctx, k.ID)
	if err != nil {
		return err
	}
	if n > 0 && !force {
		return fmt.Errorf("%w: %d data keys; wait for the running server to re-wrap them (every bots.key_reload) or run `parley keys rewrap`, or pass --force to make their data unrecoverable", ErrKEKInUse, n)
	}
	return nil
}

// DestroyKEK destroys a retired key-encryption key (through the key set:
// the provider's material, then the row's). A KEK that still wraps data
// keys is refused unless force is set.
func (e *Envelope) DestroyKEK(ctx context.Context, id string, force bool) (Destruction, error) {
	return e.keys.Destroy(ctx, id, DestroyOptions{Force: force})
}
