package config

import (
	"strings"
	"testing"
)

func TestStoreDurability(t *testing.T) {
	base := "public_url: https://x.example\ntls: {cert_file: a, key_file: b}\n"
	c, err := Load(write(t, base), env(nil))
	if err != nil || c.Store.Durability != DurabilityFull {
		t.Fatalf("default durability = %q, %v; want full", c.Store.Durability, err)
	}
	c, err = Load(write(t, base+"store: {durability: normal}\n"), env(nil))
	if err != nil || c.Store.Durability != DurabilityNormal {
		t.Fatalf("durability from the file = %q, %v", c.Store.Durability, err)
	}
	c, err = Load(write(t, base+"store: {durability: normal}\n"), env(map[string]string{"PARLEY_STORE_DURABILITY": "full"}))
	if err != nil || c.Store.Durability != DurabilityFull {
		t.Fatalf("durability from the environment = %q, %v", c.Store.Durability, err)
	}
	for _, bad := range []string{"off", "FULL", ""} {
		_, err := Load(write(t, base+"store: {durability: \""+bad+"\"}\n"), env(nil))
		if err == nil || !strings.Contains(err.Error(), "store.durability") || !strings.Contains(err.Error(), "power cut") {
			t.Errorf("durability %q: %v; want a refusal naming store.durability and what each level means", bad, err)
		}
	}
}
