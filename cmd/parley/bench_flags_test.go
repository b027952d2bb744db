package main

import (
	"strings"
	"testing"
)

// demo --durability takes the store's levels only, and says what each means.
func TestDemoDurabilityRefused(t *testing.T) {
	for _, v := range []string{"fast", "FULL", "", "off"} {
		_, _, err := run(t, nil, "demo", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--durability", v)
		if err == nil || !strings.Contains(err.Error(), "store.durability") || !strings.Contains(err.Error(), "power cut") {
			t.Errorf("--durability %q: %v", v, err)
		}
	}
}

// The relay floor refuses a negative preallocation and says what it takes.
func TestBenchRelayPreallocRefused(t *testing.T) {
	_, _, err := run(t, nil, "bench", "relay", "--journal", t.TempDir()+"/j", "--journal-prealloc", "-1")
	if err == nil || !strings.Contains(err.Error(), "--journal-prealloc") {
		t.Errorf("negative prealloc: %v", err)
	}
}
