package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/parley-gw/parley/internal/keyring"
	"github.com/parley-gw/parley/internal/threat"
)

// ListKeys lists every key of every purpose (or of purpose) and its
// state, never key material.
func (s *Service) ListKeys(ctx context.Context, p Principal, purpose string) ([]keyring.Info, error) {
	o := s.op(p, KeysRead, "list", "keys")
	if err := o.allow(ctx); err != nil {
		return nil, err
	}
	if s.d.KeyList == nil {
		return nil, o.done(ctx, errors.New("list keys: no key set"))
	}
	list, err := s.d.KeyList.List(ctx, purpose)
	if errors.Is(err, keyring.ErrUnknownPurpose) {
		err = invalid(err)
	}
	return list, o.done(ctx, err)
}

// RotateKeys switches purpose to its next key, retires the active one and
// makes a new next key.
func (s *Service) RotateKeys(ctx context.Context, p Principal, purpose string, opt keyring.RotateOptions) (keyring.Rotation, keyring.Purpose, error) {
	o := s.op(p, KeysManage, "rotate", "keys:"+purpose)
	o.detail = map[string]string{"force": fmt.Sprint(opt.Force), "purge_retired": fmt.Sprint(opt.PurgeRetired)}
	if err := o.allow(ctx); err != nil {
		return keyring.Rotation{}, keyring.Purpose{}, err
	}
	keys, err := s.openKeys(ctx)
	if err != nil {
		return keyring.Rotation{}, keyring.Purpose{}, o.done(ctx, err)
	}
	defer keys.close()
	pp, err := keys.Set.Purpose(purpose)
	if err != nil {
		return keyring.Rotation{}, pp, o.done(ctx, invalidf("--purpose: %w", err))
	}
	r, err := keys.Set.Rotate(ctx, purpose, opt)
	var early *keyring.TooSoonError
	if errors.As(err, &early) {
		err = conflict(fmt.Errorf("rotation refused: %w.\nWait until the next key is %v old, or rotate now with --force and accept that risk", err, early.Min))
	}
	return r, pp, o.done(ctx, err)
}

// Rewrap re-wraps every data key still under a retired key-encryption
// key under the active one (it finishes an interrupted kek rotation) and
// returns how many it moved. Safe while a server runs, and to repeat.
func (s *Service) Rewrap(ctx context.Context, p Principal) (int, error) {
	o := s.op(p, KeysManage, "rewrap", "keys:kek")
	if err := o.allow(ctx); err != nil {
		return 0, err
	}
	keys, err := s.openKeys(ctx)
	if err != nil {
		return 0, o.done(ctx, err)
	}
	defer keys.close()
	if keys.Envelope == nil {
		return 0, o.done(ctx, errors.New("rewrap: no envelope to re-wrap under"))
	}
	n, err := keys.Envelope.Rewrap(ctx)
	if err != nil {
		return n, o.done(ctx, fmt.Errorf("rewrap: %w", err))
	}
	o.detail = map[string]string{"rewrapped": fmt.Sprint(n)}
	return n, o.done(ctx, nil)
}

type openedKeys struct{ KeyHandle }

func (k openedKeys) close() {
	if k.Close != nil {
		k.Close()
	}
}

func (s *Service) openKeys(ctx context.Context) (openedKeys, error) {
	if s.d.OpenKeys == nil {
		return openedKeys{}, errors.New("open keys: no key provider")
	}
	k, err := s.d.OpenKeys(ctx)
	return openedKeys{k}, err
}

// PlanDestroyKey says what destroying key id would do, changing nothing.
func (s *Service) PlanDestroyKey(ctx context.Context, p Principal, id string, opt keyring.DestroyOptions) (keyring.Destruction, keyring.Purpose, error) {
	return s.destroyKey(ctx, p, id, opt, false)
}

// DestroyKey destroys a retired key's material (the row stays, marked
// destroyed); it cannot be undone.
func (s *Service) DestroyKey(ctx context.Context, p Principal, id string, opt keyring.DestroyOptions) (keyring.Destruction, keyring.Purpose, error) {
	return s.destroyKey(ctx, p, id, opt, true)
}

func (s *Service) destroyKey(ctx context.Context, p Principal, id string, opt keyring.DestroyOptions, really bool) (keyring.Destruction, keyring.Purpose, error) {
	verb := "plan_destroy"
	if really {
		verb = "destroy"
	}
	o := s.op(p, KeysManage, verb, "key:"+id)
	o.detail = map[string]string{"force": fmt.Sprint(opt.Force)}
	if err := o.allow(ctx); err != nil {
		return keyring.Destruction{}, keyring.Purpose{}, err
	}
	keys, err := s.openKeys(ctx)
	if err != nil {
		return keyring.Destruction{}, keyring.Purpose{}, o.done(ctx, err)
	}
	defer keys.close()
	plan, _, pp, err := keys.Set.PlanDestroy(ctx, id, opt)
	if errors.Is(err, keyring.ErrNotRetired) {
		return plan, pp, o.done(ctx, conflict(fmt.Errorf("%w; to retire it: parley keys rotate --purpose %s", err, pp.Name)))
	}
	if err != nil {
		return plan, pp, o.done(ctx, &Error{Kind: kindOf(err), Err: err})
	}
	if !really || plan.AlreadyDestroyed {
		return plan, pp, o.done(ctx, nil)
	}
	d, err := keys.Set.Destroy(ctx, id, opt)
	return d, pp, o.done(ctx, err)
}

// SecurityReport is the top offenders by authentication failures since
// (a duration, 1m to 8784h) limited to top (1..1000): gateway-wide, so
// never to a scoped principal.
func (s *Service) SecurityReport(ctx context.Context, p Principal, since, top string) (threat.Report, error) {
	o := s.op(p, SecurityRead, "report", "security")
	if err := o.allow(ctx); err != nil {
		return threat.Report{}, err
	}
	d, n, err := threat.ReportParams(since, top)
	if err != nil {
		return threat.Report{}, o.done(ctx, invalidf("--%w", err))
	}
	now := s.d.Now()
	rep, err := threat.BuildReport(ctx, s.d.Store, now, now.Add(-d), n)
	return rep, o.done(ctx, err)
}
