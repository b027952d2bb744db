package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func write(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "parley.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadValid(t *testing.T) {
	p := write(t, "listen: 0.0.0.0:8443\npublic_url: https://chat.example.com\ndata_dir: /var/lib/parley\ntls:\n  cert_file: /c.pem\n  key_file: /k.pem\ndirectline:\n  token_ttl: 30m\n")
	c, err := Load(p, env(map[string]string{"PARLEY_DIRECTLINE_MAX_UPLOAD_BYTES": "1048576"}))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.DirectLine.TokenTTL) != 30*time.Minute || c.DirectLine.MaxUploadBytes != 1<<20 || c.MasterKeyFile != "/var/lib/parley/master.key" {
		t.Fatalf("config = %+v", c)
	}
}

func TestLoadRefusesNamingTheField(t *testing.T) {
	for name, c := range map[string]struct {
		yaml string
		env  map[string]string
		want string
	}{
		"no public_url":         {"tls: {cert_file: a, key_file: b}\n", nil, "public_url"},
		"http public_url":       {"public_url: http://x.example\ntls: {cert_file: a, key_file: b}\n", nil, "public_url"},
		"public_url with path":  {"public_url: https://x.example/chat\ntls: {cert_file: a, key_file: b}\n", nil, "public_url"},
		"no tls":                {"public_url: https://x.example\n", nil, "tls"},
		"insecure off loopback": {"listen: 0.0.0.0:80\npublic_url: http://x.example\ninsecure_http: true\n", nil, "insecure_http"},
		"unknown field":         {"public_url: https://x.example\nlisten_adress: x\n", nil, "listen_adress"},
		"bad duration":          {"public_url: https://x.example\ndirectline: {token_ttl: soon}\n", nil, "soon"},
		"ttl too short":         {"public_url: https://x.example\ntls: {cert_file: a, key_file: b}\ndirectline: {token_ttl: 10s}\n", nil, "directline.token_ttl"},
		"bad listen":            {"listen: nope\npublic_url: https://x.example\ntls: {cert_file: a, key_file: b}\n", nil, "listen"},
		"bad env bool":          {"public_url: https://x.example\n", map[string]string{"PARLEY_INSECURE_HTTP": "maybe"}, "PARLEY_INSECURE_HTTP"},
		"bad env number":        {"public_url: https://x.example\n", map[string]string{"PARLEY_DIRECTLINE_MAX_ATTACHMENTS": "ten"}, "PARLEY_DIRECTLINE_MAX_ATTACHMENTS"},
		"too many attachments":  {"public_url: https://x.example\ntls: {cert_file: a, key_file: b}\ndirectline: {max_attachments: 1000}\n", nil, "directline.max_attachments"},
		"log level":             {"public_url: https://x.example\ntls: {cert_file: a, key_file: b}\nlog_level: loud\n", nil, "log_level"},
	} {
		_, err := Load(write(t, c.yaml), env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want mention of %q", name, err, c.want)
		}
	}
}

func TestEnvOverridesFile(t *testing.T) {
	p := write(t, "public_url: https://x.example\ntls: {cert_file: a, key_file: b}\n")
	c, err := Load(p, env(map[string]string{"PARLEY_PUBLIC_URL": "http://127.0.0.1:9000", "PARLEY_INSECURE_HTTP": "true", "PARLEY_LISTEN": "127.0.0.1:9000"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "http://127.0.0.1:9000" || !c.InsecureHTTP {
		t.Fatalf("env not applied: %+v", c)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), env(nil)); err == nil {
		t.Fatal("missing file accepted")
	}
}
