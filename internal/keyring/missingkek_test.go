package keyring_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/keyring"
)

// A KEK file missing from keys/ (a restore of parley.db without its keys
// directory) is not a key Parley destroyed: the error says which file is
// missing and what to do, and still reads as a destroyed key to callers.
func TestMissingKEKFileSaysWhatToDo(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	if err := v.e.Prepare(ctx, "test:a"); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(v.dir, "keys", "kek-*.tink"))
	for _, f := range files {
		if err := os.Rename(f, f+".away"); err != nil {
			t.Fatal(err)
		}
	}
	prov, err := keyring.NewLocalProvider(filepath.Join(v.dir, "keys"), make([]byte, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	_, err = openEnvelope(ctx, v.st, prov, 8, nil)
	if err == nil || !errors.Is(err, keyring.ErrKeyDestroyed) {
		t.Fatalf("open with the KEK files missing = %v, want ErrKeyDestroyed", err)
	}
	for _, want := range []string{"missing", "restore", "keys"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
