package config

import (
	"fmt"
	"time"
)

// Retention tunes the retention sweeper (internal/retention). A site's
// own policy (parley site set-retention) overrides Default.
type Retention struct {
	// Default is how long a conversation is kept after its last activity
	// on a site with no policy of its own (what the hosted Direct Line
	// service promises: 24 h).
	Default Duration `yaml:"default"`
	// SweepEvery is how often the sweeper looks for expired content.
	SweepEvery Duration `yaml:"sweep_every"`
	// EphemeralHold is how long an ephemeral site's activity stays after
	// the bot has it (its delivery completed), so the client can read it.
	EphemeralHold Duration `yaml:"ephemeral_hold"`
	// EphemeralMax is the hard cap for an ephemeral site's content:
	// anything older goes, delivered or not.
	EphemeralMax Duration `yaml:"ephemeral_max"`
	// TombstonesFor is how long a deleted conversation's id stays refused
	// (a token minted before the deletion cannot start it again).
	TombstonesFor Duration `yaml:"tombstones_for"`
}

// DefaultRetention is Retention before the file and environment apply.
func DefaultRetention() Retention {
	return Retention{
		Default:       Duration(24 * time.Hour),
		SweepEvery:    Duration(time.Minute),
		EphemeralHold: Duration(time.Minute),
		EphemeralMax:  Duration(15 * time.Minute),
		TombstonesFor: Duration(30 * 24 * time.Hour),
	}
}

func (r *Retention) applyEnv(env func(string) (string, bool)) error {
	for name, dst := range map[string]*Duration{
		"PARLEY_RETENTION_DEFAULT":     &r.Default,
		"PARLEY_RETENTION_SWEEP_EVERY": &r.SweepEvery,
	} {
		if v, ok := env(name); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration", name, v)
			}
			*dst = Duration(d)
		}
	}
	return nil
}

// validate checks Retention; the bounds of Default are those of a site's
// policy (store.MinRetention..store.MaxRetention, 1m..10y).
func (r Retention) validate() []error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("retention."+field+": "+format, a...))
	}
	if d := time.Duration(r.Default); d < time.Minute || d > 10*365*24*time.Hour {
		bad("default", "%v is outside 1m..87600h (10 years)", d)
	}
	if d := time.Duration(r.SweepEvery); d < time.Second || d > time.Hour {
		bad("sweep_every", "%v is outside 1s..1h", d)
	}
	if d := time.Duration(r.EphemeralHold); d < 10*time.Second || d > time.Hour {
		bad("ephemeral_hold", "%v is outside 10s..1h", d)
	}
	if d := time.Duration(r.EphemeralMax); d < time.Duration(r.EphemeralHold) || d > 24*time.Hour {
		bad("ephemeral_max", "%v is outside ephemeral_hold..24h", d)
	}
	if d := time.Duration(r.TombstonesFor); d < 24*time.Hour || d > 10*365*24*time.Hour {
		bad("tombstones_for", "%v is outside 24h (the longest token lifetime)..87600h", d)
	}
	return errs
}
