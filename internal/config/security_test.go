package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSecurityAlertsValidated(t *testing.T) {
	ok := SecurityAlert{Name: "stuffing", Threshold: 50, Window: Duration(10 * time.Minute), By: "client",
		WebhookURL: "https://alerts.example.com/parley", WebhookSecretFile: "/etc/parley/alert.key"}
	for name, c := range map[string]struct {
		mod  func(*Security)
		want string
	}{
		"ok":                 {func(*Security) {}, ""},
		"loopback http":      {func(s *Security) { s.Alerts[0].WebhookURL = "http://127.0.0.1:9000/hook" }, ""},
		"log only":           {func(s *Security) { s.Alerts[0].WebhookURL, s.Alerts[0].WebhookSecretFile = "", "" }, ""},
		"plain http remote":  {func(s *Security) { s.Alerts[0].WebhookURL = "http://alerts.example.com/x" }, "alerts[0].webhook_url"},
		"metadata over http": {func(s *Security) { s.Alerts[0].WebhookURL = "http://169.254.169.254/x" }, "use https"},
		"credentials in URL": {func(s *Security) { s.Alerts[0].WebhookURL = "https://u:p@alerts.example.com/x" }, "credentials"},
		"ftp":                {func(s *Security) { s.Alerts[0].WebhookURL = "ftp://alerts.example.com/x" }, "must be https"},
		"no secret":          {func(s *Security) { s.Alerts[0].WebhookSecretFile = "" }, "alerts[0].webhook_secret_file"},
		"secret without url": {func(s *Security) { s.Alerts[0].WebhookURL = "" }, "without webhook_url"},
		"bad by":             {func(s *Security) { s.Alerts[0].By = "CLIENT" }, "alerts[0].by"},
		"zero threshold":     {func(s *Security) { s.Alerts[0].Threshold = 0 }, "alerts[0].threshold"},
		"short window":       {func(s *Security) { s.Alerts[0].Window = Duration(time.Second) }, "alerts[0].window"},
		"bad name":           {func(s *Security) { s.Alerts[0].Name = "Bad Name" }, "alerts[0].name"},
		"duplicate name":     {func(s *Security) { s.Alerts = append(s.Alerts, s.Alerts[0]) }, "alerts[1].name"},
		"flush too slow":     {func(s *Security) { s.FlushEvery = Duration(time.Hour) }, "security.flush_every"},
		"retain too short":   {func(s *Security) { s.Retain = Duration(time.Minute) }, "security.retain"},
		"tiny key cap":       {func(s *Security) { s.MaxKeysPerMinute = 1 }, "security.max_keys_per_minute"},
	} {
		s := DefaultSecurity()
		s.Alerts = []SecurityAlert{ok}
		c.mod(&s)
		errs := s.validate()
		switch {
		case c.want == "" && len(errs) > 0:
			t.Errorf("%s: %v", name, errs)
		case c.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), c.want)):
			t.Errorf("%s: %v; want an error naming %q", name, errs, c.want)
		}
	}
}

func TestWebhookSecret(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	_ = os.WriteFile(short, []byte("abc\n"), 0o600)
	if _, err := (SecurityAlert{Name: "x", WebhookSecretFile: short}).WebhookSecret(); err == nil || !strings.Contains(err.Error(), "openssl rand") {
		t.Fatalf("short secret: %v", err)
	}
	good := filepath.Join(dir, "good")
	_ = os.WriteFile(good, []byte("0123456789abcdef0123\n"), 0o600)
	if b, err := (SecurityAlert{Name: "x", WebhookSecretFile: good}).WebhookSecret(); err != nil || string(b) != "0123456789abcdef0123" {
		t.Fatalf("secret = %q, %v", b, err)
	}
	if _, err := (SecurityAlert{Name: "x", WebhookSecretFile: filepath.Join(dir, "none")}).WebhookSecret(); err == nil {
		t.Fatal("missing secret file accepted")
	}
}

func TestSecurityFromYAMLAndEnv(t *testing.T) {
	p := filepath.Join(t.TempDir(), "parley.yaml")
	y := "public_url: http://127.0.0.1:8080\ninsecure_http: true\ndata_dir: /tmp/x\nsecurity:\n  alerts:\n    - name: stuffing\n      threshold: 50\n      window: 10m\n      by: client\n"
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, env(map[string]string{"PARLEY_SECURITY_RETAIN": "48h"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Security.Alerts) != 1 || c.Security.Alerts[0].Threshold != 50 || time.Duration(c.Security.Alerts[0].Window) != 10*time.Minute ||
		time.Duration(c.Security.Retain) != 48*time.Hour || time.Duration(c.Security.FlushEvery) != 10*time.Second {
		t.Fatalf("security = %+v", c.Security)
	}
	if _, err := Load(p, env(map[string]string{"PARLEY_SECURITY_RETAIN": "a week"})); err == nil || !strings.Contains(err.Error(), "PARLEY_SECURITY_RETAIN") {
		t.Fatalf("bad PARLEY_SECURITY_RETAIN: %v", err)
	}
}
