package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-gw/parley/internal/config"
)

// A configuration file's mistakes are reported by setting, with the line,
// in an operator's words: not "field x not found in type config.Config"
// or "cannot unmarshal !!str into int".
func TestLoadNamesTheSettingOfYAMLErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.yaml")
	src := "listen: 127.0.0.1:8443\nbogus: 1\ndirectline:\n  tokenttl: 1h\nsecurity:\n  alerts:\n    - name: x\n      threshold: many\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path, func(string) (string, bool) { return "", false })
	if err == nil {
		t.Fatal("Load accepted the file")
	}
	msg := err.Error()
	for _, want := range []string{
		"bogus (line 2): unknown setting",
		"directline.tokenttl (line 4): unknown setting",
		"security.alerts[0].threshold (line 8): cannot read `many`: want a whole number",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	for _, jargon := range []string{"config.Config", "!!str", "unmarshal"} {
		if strings.Contains(msg, jargon) {
			t.Errorf("%q in:\n%s", jargon, msg)
		}
	}
	// A flow mapping names the value's own setting, and a tag without a
	// value is no jargon either.
	for src, want := range map[string]string{
		"directline: {token_ttl: 5}\n":            "directline.token_ttl (line 1)",
		"security:\n  alerts:\n    - name: [x]\n": "security.alerts[0].name (line 3): cannot read: want a text value",
	} {
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(path, func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "!!") {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
	if err := os.WriteFile(path, []byte("directline:\n  token_ttl: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path, func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "directline.token_ttl (line 2)") {
		t.Errorf("a bad duration: %v", err)
	}
}
