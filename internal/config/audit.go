package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Audit configures the tamper-evident audit log (internal/audit).
type Audit struct {
	// AnchorFile, when set, receives every signed checkpoint of the chain
	// head as one JSON line (appended, synced). Put it on another volume
	// or on WORM storage: 'parley audit verify --anchor FILE' then detects
	// a truncated tail even when the checkpoints in the database were
	// removed with it. It must lie outside data_dir.
	AnchorFile string `yaml:"anchor_file"`
	// CheckpointEvery is how often the chain head is signed (checkpoints
	// are also made on demand: parley audit checkpoint). Entries after
	// the last checkpoint are anchored only by an anchor kept elsewhere.
	CheckpointEvery Duration `yaml:"checkpoint_every"`
	// FollowPoll is how often an export that follows (parley audit export
	// --follow, GET /admin/v1/audit/export?follow=1) looks for entries
	// another process appended.
	FollowPoll Duration `yaml:"follow_poll"`
}

// DefaultAudit is Audit before the file and environment apply.
func DefaultAudit() Audit {
	return Audit{CheckpointEvery: Duration(time.Minute), FollowPoll: Duration(time.Second)}
}

func (a *Audit) applyEnv(env func(string) (string, bool)) error {
	if v, ok := env("PARLEY_AUDIT_ANCHOR_FILE"); ok {
		a.AnchorFile = v
	}
	if v, ok := env("PARLEY_AUDIT_CHECKPOINT_EVERY"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("PARLEY_AUDIT_CHECKPOINT_EVERY: %q is not a duration", v)
		}
		a.CheckpointEvery = Duration(d)
	}
	return nil
}

func (c Config) validateAudit() []error {
	var errs []error
	a := c.Audit
	if d := time.Duration(a.CheckpointEvery); d < time.Second || d > 24*time.Hour {
		errs = append(errs, fmt.Errorf("audit.checkpoint_every: %v is out of range (1s to 24h; the default is 1m): entries after the last checkpoint are not anchored", d))
	}
	if d := time.Duration(a.FollowPoll); d < 10*time.Millisecond || d > time.Minute {
		errs = append(errs, fmt.Errorf("audit.follow_poll: %v is out of range (10ms to 1m; the default is 1s)", d))
	}
	if a.AnchorFile != "" {
		switch {
		case strings.ContainsAny(a.AnchorFile, "\x00\n"):
			errs = append(errs, fmt.Errorf("audit.anchor_file: is not a file path"))
		case c.DataDir != "" && within(a.AnchorFile, c.DataDir):
			errs = append(errs, fmt.Errorf("audit.anchor_file: %s is inside data_dir (%s): whoever can change the database could change the anchor too; put it on another volume or WORM storage", a.AnchorFile, c.DataDir))
		}
	}
	return errs
}

// within reports whether path lies inside dir (after making both absolute).
func within(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
