package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAuditConfig(t *testing.T) {
	base := "public_url: https://x.example\ntls: {cert_file: a, key_file: b}\ndata_dir: /srv/parley\n"
	c, err := Load(write(t, base), env(nil))
	if err != nil || c.Audit != DefaultAudit() || time.Duration(c.Audit.CheckpointEvery) != time.Minute {
		t.Fatalf("default audit = %+v, %v", c.Audit, err)
	}
	anchor := filepath.Join(t.TempDir(), "anchor.jsonl")
	c, err = Load(write(t, base+"audit: {anchor_file: "+anchor+", checkpoint_every: 10s}\n"), env(map[string]string{"PARLEY_AUDIT_CHECKPOINT_EVERY": "30s"}))
	if err != nil || c.Audit.AnchorFile != anchor || time.Duration(c.Audit.CheckpointEvery) != 30*time.Second {
		t.Fatalf("audit from file and environment = %+v, %v", c.Audit, err)
	}
	for yaml, field := range map[string]string{
		"audit: {checkpoint_every: 0s}":                  "audit.checkpoint_every",
		"audit: {checkpoint_every: 48h}":                 "audit.checkpoint_every",
		"audit: {follow_poll: 1ms}":                      "audit.follow_poll",
		"audit: {anchor_file: /srv/parley/anchor.jsonl}": "audit.anchor_file",
		"audit: {anchor_file: /srv/parley/sub/a.jsonl}":  "audit.anchor_file",
		"audit: {anchor_file: \"/tmp/a\\njsonl\"}":       "audit.anchor_file",
	} {
		_, err := Load(write(t, base+yaml+"\n"), env(nil))
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v; want a refusal naming %s", yaml, err, field)
		}
	}
	if _, err := Load(write(t, base), env(map[string]string{"PARLEY_AUDIT_CHECKPOINT_EVERY": "soon"})); err == nil || !strings.Contains(err.Error(), "PARLEY_AUDIT_CHECKPOINT_EVERY") {
		t.Errorf("bad env duration: %v", err)
	}
}
