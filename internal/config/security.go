package config

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"
)

// Security tunes threat detection (internal/threat): authentication
// failures counted per minute by site, pseudonymized client address and
// user-agent family, and the alert rules.
type Security struct {
	// FlushEvery is how often the counts go to the store (where `parley
	// security report` reads them) and the alert rules are checked.
	FlushEvery Duration `yaml:"flush_every"`
	// Retain is how long the per-minute counts are kept.
	Retain Duration `yaml:"retain"`
	// MaxKeysPerMinute caps the distinct (site, client, user agent, status,
	// reason) keys of one minute, across flushes, and those held in memory
	// between flushes; failures past it are counted under client "other",
	// so an attacker rotating addresses can grow neither memory nor the
	// store by more than this many rows a minute.
	MaxKeysPerMinute int `yaml:"max_keys_per_minute"`
	// Alerts are the alert rules.
	Alerts []SecurityAlert `yaml:"alerts"`
}

// SecurityAlert is one alert rule: Threshold failures or more within
// Window, per By, fire one warn log event and (when WebhookURL is set) one
// signed webhook per key and window.
type SecurityAlert struct {
	Name      string   `yaml:"name"`
	Threshold int64    `yaml:"threshold"`
	Window    Duration `yaml:"window"`
	// By is client (one pseudonymized client address), site, user_agent
	// (one user-agent family) or total.
	By string `yaml:"by"`
	// WebhookURL receives the alert as a JSON POST: https, or http on a
	// loopback address only. Private and metadata addresses are refused
	// unless in bots.allow_private_networks.
	WebhookURL string `yaml:"webhook_url"`
	// WebhookSecretFile holds the HMAC-SHA256 key (at least 16 bytes) that
	// signs the webhook (header X-Parley-Signature); required with
	// WebhookURL.
	WebhookSecretFile string `yaml:"webhook_secret_file"`
}

// DefaultSecurity is Security before the file and environment apply.
func DefaultSecurity() Security {
	return Security{FlushEvery: Duration(10 * time.Second), Retain: Duration(7 * 24 * time.Hour), MaxKeysPerMinute: 10_000}
}

func (s *Security) applyEnv(env func(string) (string, bool)) error {
	for name, dst := range map[string]*Duration{
		"PARLEY_SECURITY_FLUSH_EVERY": &s.FlushEvery,
		"PARLEY_SECURITY_RETAIN":      &s.Retain,
	} {
		if v, ok := env(name); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration", name, v)
			}
			*dst = Duration(d)
		}
	}
	return nil
}

func (s Security) validate() []error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("security."+field+": "+format, a...))
	}
	if f := time.Duration(s.FlushEvery); f < time.Second || f > 5*time.Minute {
		bad("flush_every", "%v is outside 1s..5m", f)
	}
	if r := time.Duration(s.Retain); r < time.Hour || r > 366*24*time.Hour {
		bad("retain", "%v is outside 1h..8784h (a year)", r)
	}
	if s.MaxKeysPerMinute < 100 || s.MaxKeysPerMinute > 1_000_000 {
		bad("max_keys_per_minute", "%d is outside 100..1000000", s.MaxKeysPerMinute)
	}
	seen := map[string]bool{}
	for i, a := range s.Alerts {
		f := fmt.Sprintf("alerts[%d].", i)
		if a.Name == "" || len(a.Name) > 64 || strings.Trim(a.Name, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			bad(f+"name", "%q must be 1..64 of a-z, 0-9, - and _", a.Name)
		} else if seen[a.Name] {
			bad(f+"name", "%q is used by another rule", a.Name)
		}
		seen[a.Name] = true
		if a.Threshold < 1 {
			bad(f+"threshold", "%d must be at least 1", a.Threshold)
		}
		if w := time.Duration(a.Window); w < time.Minute || w > 24*time.Hour || w > time.Duration(s.Retain) {
			bad(f+"window", "%v is outside 1m..24h (and at most security.retain)", w)
		}
		switch a.By {
		case "client", "site", "user_agent", "total":
		default:
			bad(f+"by", "%q is not one of client, site, user_agent, total", a.By)
		}
		if a.WebhookURL == "" {
			if a.WebhookSecretFile != "" {
				bad(f+"webhook_secret_file", "is set without webhook_url")
			}
			continue
		}
		if err := checkWebhookURL(a.WebhookURL); err != nil {
			bad(f+"webhook_url", "%v", err)
		}
		if a.WebhookSecretFile == "" {
			bad(f+"webhook_secret_file", "is required with webhook_url (a file holding the HMAC key that signs the webhook, at least 16 bytes)")
		}
	}
	return errs
}

// checkWebhookURL accepts https URLs, and http on a loopback address.
func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL such as https://alerts.example.com/parley", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q holds credentials; sign with webhook_secret_file instead", u.Redacted())
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if a, err := netip.ParseAddr(host); (err == nil && a.IsLoopback()) || strings.EqualFold(host, "localhost") {
			return nil
		}
		return fmt.Errorf("%q is plain http off loopback; use https", u.Redacted())
	}
	return fmt.Errorf("%q must be https", u.Redacted())
}

// WebhookSecret reads the rule's webhook secret file.
func (a SecurityAlert) WebhookSecret() ([]byte, error) {
	if err := regularFile(a.WebhookSecretFile); err != nil {
		return nil, fmt.Errorf("read webhook_secret_file of alert %s: %w", a.Name, err)
	}
	f, err := os.Open(a.WebhookSecretFile)
	if err != nil {
		return nil, fmt.Errorf("read webhook_secret_file of alert %s: %w", a.Name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read webhook_secret_file of alert %s: %w", a.Name, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("webhook_secret_file of alert %s: %s is readable by others (mode %v); chmod 600 it", a.Name, a.WebhookSecretFile, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("read webhook_secret_file of alert %s: %w", a.Name, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < 16 {
		return nil, fmt.Errorf("webhook_secret_file of alert %s (%s): %d bytes, want at least 16 (e.g. openssl rand -hex 32 > %s)", a.Name, a.WebhookSecretFile, len(b), a.WebhookSecretFile)
	}
	return b, nil
}
