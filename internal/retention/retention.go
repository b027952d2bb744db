// Package retention enforces each site's retention policy: a sweeper
// deletes whole conversations once their policy says so (content, data
// key and all, in one store transaction each: crypto-shredding), prunes
// the content of ephemeral sites' conversations as soon as the bot and
// the client have had it, and scrubs the store's files after deleting.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/parley-gw/parley/internal/store"
)

// Store is what the sweeper needs of the store.
type Store interface {
	ListSites(ctx context.Context, botID string) ([]store.Site, error)
	ExpiredConversations(ctx context.Context, siteID string, idleBefore time.Time, ended bool, afterID string, limit int) ([]string, error)
	DeleteConversation(ctx context.Context, id string, now time.Time) (store.Erased, error)
	PruneActivities(ctx context.Context, id string, deliveredBefore, hardBefore time.Time) (int, error)
	PruneTombstones(ctx context.Context, before time.Time) error
	Scrub(ctx context.Context) error
}

// Config tunes a Sweeper; the values come from config.Retention.
type Config struct {
	// Default is the retention of a site without a policy (and the cap of
	// an end-of-conversation policy without a period).
	Default time.Duration
	// Every is the sweep interval.
	Every time.Duration
	// EphemeralHold and EphemeralMax: see config.Retention.
	EphemeralHold, EphemeralMax time.Duration
	// TombstonesFor is how long deleted conversation ids stay refused.
	TombstonesFor time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// OnDeleted, when set, is told about each deleted conversation after
	// its transaction committed (e.g. to drop caches keyed by it).
	OnDeleted func(store.Erased)
}

// Sweeper runs the sweeps.
type Sweeper struct {
	st     Store
	cfg    Config
	logger *slog.Logger
	// deleted and pruned count conversations deleted and activities
	// pruned since start (metrics).
	deleted, pruned atomic.Int64
}

// Totals reports the conversations deleted and the ephemeral activities
// pruned since the sweeper was built.
func (s *Sweeper) Totals() (deleted, pruned int64) { return s.deleted.Load(), s.pruned.Load() }

// New builds a sweeper.
func New(st Store, cfg Config, logger *slog.Logger) *Sweeper {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sweeper{st: st, cfg: cfg, logger: logger}
}

// Result is what one sweep did.
type Result struct {
	// Deleted lists the conversations deleted whole.
	Deleted []store.Erased
	// Pruned counts the activities removed from ephemeral conversations.
	Pruned int
}

// page bounds the conversations listed per query.
const page = 200

// Run sweeps every cfg.Every until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.logger.Error("retention sweep failed; the next sweep retries", "err", err)
		}
	}
}

// Policy is a site's effective policy: conversations idle since before
// now-Idle are deleted, and so are ended ones when Ended.
type Policy struct {
	Idle      time.Duration
	Ended     bool
	Ephemeral bool
}

// Effective resolves a site's stored policy against the defaults.
func (s *Sweeper) Effective(r store.Retention) Policy {
	switch r.Mode {
	case store.RetentionAfter:
		return Policy{Idle: r.After}
	case store.RetentionOnEnd:
		if r.After == 0 {
			return Policy{Idle: s.cfg.Default, Ended: true}
		}
		return Policy{Idle: r.After, Ended: true}
	case store.RetentionEphemeral:
		return Policy{Idle: s.cfg.EphemeralMax, Ended: true, Ephemeral: true}
	}
	return Policy{Idle: s.cfg.Default}
}

// Sweep applies every site's policy once. It goes on past a failing site
// or conversation and returns the errors joined; whatever it deleted is
// in the result either way, and the store is scrubbed when anything was.
func (s *Sweeper) Sweep(ctx context.Context) (Result, error) {
	var res Result
	now := s.cfg.Now()
	sites, err := s.st.ListSites(ctx, "")
	if err != nil {
		return res, fmt.Errorf("sweep: %w", err)
	}
	var errs []error
	for _, site := range sites {
		if err := s.sweepSite(ctx, site, now, &res); err != nil {
			errs = append(errs, fmt.Errorf("sweep site %s: %w", site.ID, err))
		}
	}
	if err := s.st.PruneTombstones(ctx, now.Add(-s.cfg.TombstonesFor)); err != nil {
		errs = append(errs, fmt.Errorf("sweep: %w", err))
	}
	s.deleted.Add(int64(len(res.Deleted)))
	s.pruned.Add(int64(res.Pruned))
	if len(res.Deleted) > 0 || res.Pruned > 0 {
		if err := s.st.Scrub(ctx); err != nil {
			errs = append(errs, fmt.Errorf("sweep: %w", err))
		}
		// Retention wins over delivery: a conversation past its policy goes
		// with the activities its bot has not received yet. Said loudly,
		// with how many, so an operator can lengthen the policy or fix the
		// bot (never silently "delivered or dead-lettered").
		dropped, dead := 0, 0
		for _, e := range res.Deleted {
			dropped += e.OutboxItems
			dead += e.DeadLetters
		}
		if dropped > 0 {
			s.logger.Warn("retention deleted conversations with deliveries still queued: their bots never received these activities; lengthen the retention policy or fix the bot",
				"conversations_deleted", len(res.Deleted), "deliveries_dropped", dropped, "dead_letters_deleted", dead, "activities_pruned", res.Pruned)
		} else {
			s.logger.Info("retention sweep", "conversations_deleted", len(res.Deleted), "dead_letters_deleted", dead, "activities_pruned", res.Pruned)
		}
	}
	return res, errors.Join(errs...)
}

func (s *Sweeper) sweepSite(ctx context.Context, site store.Site, now time.Time, res *Result) error {
	p := s.Effective(site.Retention)
	var errs []error
	after := ""
	for {
		// The recorded last activity may lag by ActivityGranularity: add
		// it, so that nothing is deleted before its time.
		ids, err := s.st.ExpiredConversations(ctx, site.ID, now.Add(-p.Idle-store.ActivityGranularity), p.Ended, after, page)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, id := range ids {
			e, err := s.st.DeleteConversation(ctx, id, now)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted meanwhile (parley erase)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			res.Deleted = append(res.Deleted, e)
			if s.cfg.OnDeleted != nil {
				s.cfg.OnDeleted(e)
			}
		}
		if len(ids) < page {
			break
		}
		after = ids[len(ids)-1]
	}
	if p.Ephemeral {
		errs = append(errs, s.pruneEphemeral(ctx, site.ID, now, res))
	}
	return errors.Join(errs...)
}

// pruneEphemeral prunes every conversation left on an ephemeral site:
// after the deletion above they are the ones active within EphemeralMax.
func (s *Sweeper) pruneEphemeral(ctx context.Context, siteID string, now time.Time, res *Result) error {
	var errs []error
	after := ""
	for {
		// Every conversation idle since before the far future: all of them.
		ids, err := s.st.ExpiredConversations(ctx, siteID, now.Add(store.MaxRetention), false, after, page)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, id := range ids {
			n, err := s.st.PruneActivities(ctx, id, now.Add(-s.cfg.EphemeralHold), now.Add(-s.cfg.EphemeralMax))
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
			}
			res.Pruned += n
		}
		if len(ids) < page {
			return errors.Join(errs...)
		}
		after = ids[len(ids)-1]
	}
}
