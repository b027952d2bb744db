package server_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// tmpfsDataDir is a 4 MB tmpfs for a test's data directory, unmounted at
// cleanup; the test is skipped where tmpfs cannot be mounted (not root).
func tmpfsDataDir(t *testing.T, skipNote string) string {
	t.Helper()
	dir := t.TempDir()
	unmount, err := mountTmpfs(dir, "size=4m,mode=0700")
	if err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); %s", err, skipNote)
	}
	t.Cleanup(func() {
		if err := unmount(); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes a filler file into dir until the file system is full,
// and returns its path (remove it to give the space back).
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			return filler
		}
	}
}
