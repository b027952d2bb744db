package store

import (
	"testing"
	"time"
)

func TestParsePeriod(t *testing.T) {
	day := 24 * time.Hour
	for in, want := range map[string]time.Duration{
		"30m": 30 * time.Minute, "12h": 12 * time.Hour, "90d": 90 * day, "2y": 2 * 365 * day, "1m": time.Minute, "10y": MaxRetention,
	} {
		got, err := ParsePeriod(in)
		if err != nil || got != want {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, _ := ParsePeriod(FormatPeriod(got)); back != got {
			t.Errorf("FormatPeriod(%v) = %q does not parse back", got, FormatPeriod(got))
		}
	}
	for _, in := range []string{"", "0m", "0d", "-1d", "+1d", "1.5d", "30", "30s", "1w", "d", "11y", "87601h", "99999999999999999999y", "9223372036854775807m"} {
		if d, err := ParsePeriod(in); err == nil {
			t.Errorf("ParsePeriod(%q) = %v, want an error", in, d)
		}
	}
}
