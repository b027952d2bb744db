package main

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An operator who keeps the master key in PARLEY_MASTER_KEY (no key file
// on disk) runs the admin commands with --data: they must use that key,
// never create a stray master.key with a new key beside the data.
func TestAdminCommandsUseMasterKeyFromEnvironment(t *testing.T) {
	data := t.TempDir()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PARLEY_MASTER_KEY": base64.StdEncoding.EncodeToString(key)}
	if _, _, err := run(t, env, "keys", "rotate", "--data", data, "--purpose", "kek", "--force"); err != nil {
		t.Fatalf("first rotation with the key from the environment: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "master.key")); err == nil {
		t.Fatal("a master.key file was created although PARLEY_MASTER_KEY is set")
	}
	// The keys made under the environment's key open again with it.
	if _, _, err := run(t, env, "keys", "rotate", "--data", data, "--purpose", "kek", "--force"); err != nil {
		t.Fatalf("second rotation with the same key: %v", err)
	}
	if _, _, err := run(t, env, "keys", "rewrap", "--data", data); err != nil {
		t.Fatalf("rewrap with the same key: %v", err)
	}
	// A malformed key in the environment is refused by name, not replaced.
	bad := map[string]string{"PARLEY_MASTER_KEY": "short"}
	_, _, err := run(t, bad, "keys", "rotate", "--data", data, "--purpose", "kek", "--force")
	if err == nil || !strings.Contains(err.Error(), "PARLEY_MASTER_KEY") {
		t.Fatalf("malformed PARLEY_MASTER_KEY: %v", err)
	}
	// The key provider chosen in the environment is honoured too.
	pk := map[string]string{"PARLEY_MASTER_KEY": env["PARLEY_MASTER_KEY"], "PARLEY_KEYS_PROVIDER": "vault"}
	if _, _, err := run(t, pk, "keys", "rotate", "--data", data, "--purpose", "kek", "--force"); err == nil {
		t.Fatal("PARLEY_KEYS_PROVIDER=vault was ignored by an admin command")
	}
}

// A master key that does not open the store's keys is reported with where
// it came from, so the operator knows which one to replace.
func TestWrongMasterKeySaysWhereItCameFrom(t *testing.T) {
	data := t.TempDir()
	if _, _, err := run(t, nil, "keys", "rotate", "--data", data, "--purpose", "kek", "--force"); err != nil {
		t.Fatal(err)
	}
	other := make([]byte, 32)
	if _, err := rand.Read(other); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PARLEY_MASTER_KEY": base64.StdEncoding.EncodeToString(other)}
	_, _, err := run(t, env, "keys", "rotate", "--data", data, "--purpose", "kek", "--force")
	if err == nil || !strings.Contains(err.Error(), "from PARLEY_MASTER_KEY") {
		t.Fatalf("wrong key from the environment: %v", err)
	}
	if err := os.WriteFile(filepath.Join(data, "master.key"), []byte(base64.StdEncoding.EncodeToString(other)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = run(t, nil, "keys", "rotate", "--data", data, "--purpose", "kek", "--force")
	if err == nil || !strings.Contains(err.Error(), filepath.Join(data, "master.key")) {
		t.Fatalf("wrong key from the file: %v", err)
	}
}
