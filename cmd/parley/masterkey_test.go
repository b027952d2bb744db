package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A data directory whose keys are sealed under a master key never gets a
// new one: with the key file gone (moved to PARLEY_MASTER_KEY or an HSM,
// lost, or a mistyped path) every command refuses, says how out, and
// creates no key file. With the key back, everything works again.
func TestMissingMasterKeyIsNeverReplaced(t *testing.T) {
	data := t.TempDir()
	b := createBot(t, data, "help desk", "--endpoint", "https://bot.example.com/api/messages", "--public-url", "https://chat.example.com")
	keyFile := filepath.Join(data, "master.key")
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatalf("the first command made no master key: %v", err)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"bot", "list", "--data", data},
		{"erase", "--data", data, "--conversation", "c1", "--yes"},
		{"keys", "list", "--data", data},
		{"bot", "secret", "regenerate", "--data", data, "--bot", b.ID, "--slot", "1"},
	} {
		_, _, err := run(t, nil, args...)
		if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "PARLEY_MASTER_KEY") {
			t.Errorf("%s without the master key: %v; want a refusal that says how out", strings.Join(args[:2], " "), err)
		}
		if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s created a new master key file (%v)", strings.Join(args[:2], " "), err)
		}
	}
	// The key given in the environment instead: works, creates nothing.
	env := map[string]string{"PARLEY_MASTER_KEY": strings.TrimSpace(string(key))}
	if out, _, err := run(t, env, "bot", "list", "--data", data); err != nil || !strings.Contains(out, b.ID) {
		t.Errorf("bot list with PARLEY_MASTER_KEY: %v\n%s", err, out)
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a command with PARLEY_MASTER_KEY created a key file (%v)", err)
	}
	// Put back: works.
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(t, nil, "bot", "list", "--data", data); err != nil || !strings.Contains(out, b.ID) {
		t.Errorf("bot list with the key back: %v\n%s", err, out)
	}
}
